"""``hocvuso db upgrade``, ``db backup``, ``db restore`` and ``db revision``."""

from __future__ import annotations

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


def _sqlite_file(settings_url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    url = make_url(settings_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


@commands.command("backup")
def db_backup(target: Annotated[Path, typer.Argument(help="tệp sao lưu mới, ví dụ backups/hocvuso-2026-12-02.db")]) -> None:
    """Sao lưu cơ sở dữ liệu SQLite ra một tệp (làm được cả khi bot đang chạy)."""
    from storage.backup import BackupError, backup_sqlite

    settings = context.settings()
    catalog = Catalog.load()
    database = _sqlite_file(settings.database_url)
    if database is None:
        raise context.fail(catalog.text("cli.backup_postgres"))
    try:
        revision = backup_sqlite(database, target)
    except BackupError as exc:
        raise context.fail(catalog.text("cli.backup_failed", reason=str(exc))) from None
    typer.echo(catalog.text("cli.backup_done", target=str(target), revision=revision or "?"))


@commands.command("restore")
def db_restore(backup: Annotated[Path, typer.Argument(help="tệp sao lưu đã tạo bằng hocvuso db backup")]) -> None:
    """Khôi phục cơ sở dữ liệu SQLite từ tệp sao lưu (hãy dừng bot trước)."""
    from storage.backup import BackupError, restore_sqlite

    settings = context.settings()
    catalog = Catalog.load()
    database = _sqlite_file(settings.database_url)
    if database is None:
        raise context.fail(catalog.text("cli.backup_postgres"))
    try:
        revision = restore_sqlite(backup, database)
    except BackupError as exc:
        raise context.fail(catalog.text("cli.backup_failed", reason=str(exc))) from None
    typer.echo(catalog.text("cli.restore_done", database=str(database), revision=revision or "?"))


@commands.command("revision")
def db_revision(message: Annotated[str, typer.Option("--message", "-m")]) -> None:
    """(Cho lập trình viên) Tạo bản nâng cấp mới từ thay đổi của các bảng."""
    from storage.migrate import revision

    revision(context.settings().database_url, message)
