"""``hocvuso lessons check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli import context
from bot.core.i18n import Catalog
from bot.curriculum import default_lessons_dir, inspect_directory

commands = typer.Typer(help="Bài học.", no_args_is_help=True)


@commands.command("check")
def lessons_check(
    directory: Annotated[Path | None, typer.Argument(help="Thư mục bài học (mặc định: bài học đi kèm)")] = None,
) -> None:
    """Kiểm tra mọi tệp bài học và bảng thuật ngữ; báo tên tệp và trường có lỗi (mã thoát 1 nếu có
    lỗi). Cảnh báo (như câu quá dài) được in ra nhưng không làm lệnh thất bại."""
    catalog = Catalog.load()
    folder = directory or default_lessons_dir()
    report = inspect_directory(folder)
    for problem in [*report.errors, *report.warnings]:
        typer.echo(str(problem), err=True)
    if report.warnings:
        typer.echo(catalog.text("cli.lessons_warnings", count=len(report.warnings)), err=True)
    if report.errors:
        raise context.fail(catalog.text("cli.lessons_failed", count=len(report.errors), folder=str(folder)))
    typer.echo(catalog.text("cli.lessons_ok", count=len(report.lessons), folder=str(folder)))
