"""Run Alembic from code, so operators need no ``alembic.ini``: ``hocvuso db upgrade``."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import ensure_sqlite_directory


class SchemaNotCurrentError(Exception):
    """The database lacks migrations: run ``hocvuso db upgrade`` first."""


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


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def schema_is_current(engine: AsyncEngine) -> bool:
    """Whether the database has every migration applied (checked before CLI commands on
    PostgreSQL, where upgrading is a deliberate deployment step)."""
    try:
        async with engine.connect() as connection:
            current = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except DBAPIError:
        return False
    return current == head_revision()
