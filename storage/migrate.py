"""Run Alembic from code, so operators need no ``alembic.ini``: ``hocvuso db upgrade``."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

from storage.db import ensure_sqlite_directory


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply pending migrations (synchronous: call it before the event loop starts)."""
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), revision)


def revision(database_url: str, message: str, *, autogenerate: bool = True) -> None:
    """For developers: write a new migration comparing the models with the database."""
    command.revision(alembic_config(database_url), message=message, autogenerate=autogenerate)
