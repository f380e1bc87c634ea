"""``hocvuso db upgrade`` and ``hocvuso db revision``."""

from __future__ import annotations

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


@commands.command("revision")
def db_revision(message: Annotated[str, typer.Option("--message", "-m")]) -> None:
    """(Cho lập trình viên) Tạo bản nâng cấp mới từ thay đổi của các bảng."""
    from storage.migrate import revision

    revision(context.settings().database_url, message)
