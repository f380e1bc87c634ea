"""``hocvuso lessons check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli import context
from bot.core.i18n import Catalog
from bot.curriculum import check_directory, default_lessons_dir

commands = typer.Typer(help="Bài học.", no_args_is_help=True)


@commands.command("check")
def lessons_check(
    directory: Annotated[Path | None, typer.Argument(help="Thư mục bài học (mặc định: bài học đi kèm)")] = None,
) -> None:
    """Kiểm tra mọi tệp bài học; báo tên tệp và trường có lỗi (mã thoát 1 nếu có lỗi)."""
    catalog = Catalog.load()
    folder = directory or default_lessons_dir()
    lessons, errors = check_directory(folder)
    for error in errors:
        typer.echo(str(error), err=True)
    if errors:
        raise context.fail(catalog.text("cli.lessons_failed", count=len(errors), folder=str(folder)))
    typer.echo(catalog.text("cli.lessons_ok", count=len(lessons), folder=str(folder)))
