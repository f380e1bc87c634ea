"""``hocvuso db upgrade``, ``db backup``, ``db restore`` and ``db revision``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from bot.app import migrate
from bot.cli import context
from bot.core.i18n import Catalog

commands = typer.Typer(help="Cơ sở dữ liệu.", no_args_is_help=True)


@commands.command("upgrade")
def db_upgrade() -> None:
    """Áp dụng các bản nâng cấp cấu trúc cơ sở dữ liệu còn thiếu."""
    settings = context.settings()
    migrate(settings)
    typer.echo(Catalog.load().text("cli.db_upgraded"))


def _sqlite_database(catalog: Catalog) -> Path:
    """The SQLite file of ``DATABASE_URL``; exits with one clear line for PostgreSQL (its own tools)."""
    from sqlalchemy.engine import make_url

    url = make_url(context.settings().database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise context.fail(catalog.text("cli.backup_postgres"))
    return Path(url.database)


@contextmanager
def _refusal_explained(catalog: Catalog) -> Iterator[None]:
    """A refused backup or restore (``storage.backup.BackupError``) ends with one clear line."""
    from storage.backup import BackupError

    try:
        yield
    except BackupError as exc:
        raise context.fail(catalog.text("cli.backup_failed", reason=str(exc))) from None


@commands.command("backup")
def db_backup(target: Annotated[Path, typer.Argument(help="tệp sao lưu mới, ví dụ backups/hocvuso-2026-12-02.db")]) -> None:
    """Sao lưu cơ sở dữ liệu SQLite ra một tệp (làm được cả khi bot đang chạy)."""
    from storage.backup import backup_sqlite

    catalog = Catalog.load()
    database = _sqlite_database(catalog)
    with _refusal_explained(catalog):
        revision = backup_sqlite(database, target)
    typer.echo(catalog.text("cli.backup_done", target=str(target), revision=revision or "?"))


@commands.command("restore")
def db_restore(backup: Annotated[Path, typer.Argument(help="tệp sao lưu đã tạo bằng hocvuso db backup")]) -> None:
    """Khôi phục cơ sở dữ liệu SQLite từ tệp sao lưu (hãy dừng bot trước)."""
    from storage.backup import restore_sqlite

    catalog = Catalog.load()
    database = _sqlite_database(catalog)
    with _refusal_explained(catalog):
        revision = restore_sqlite(backup, database)
    typer.echo(catalog.text("cli.restore_done", database=str(database), revision=revision or "?"))


@commands.command("revision")
def db_revision(message: Annotated[str, typer.Option("--message", "-m")]) -> None:
    """(Cho lập trình viên) Tạo bản nâng cấp mới từ thay đổi của các bảng."""
    from storage.migrate import revision

    revision(context.settings().database_url, message)
