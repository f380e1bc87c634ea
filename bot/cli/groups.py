"""``hocvuso groups import`` (the groups from a CSV file) and ``hocvuso groups qr`` (a join
QR code per group)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import telegram_username
from bot.cli import context
from bot.core.i18n import Catalog

commands = typer.Typer(help="Tổ dân phố / thôn.", no_args_is_help=True)


@commands.command("import")
def groups_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Tệp CSV: ward_code,ward_name,group_code,group_name[,kind,target_percent]")],
) -> None:
    """Nhập hoặc cập nhật danh sách tổ dân phố / thôn từ tệp CSV (không bao giờ nhập dở dang)."""
    from bot.group_import import GroupImportError, ImportSummary, import_groups, parse_groups_csv

    settings = context.settings()
    catalog = Catalog.load()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise context.fail(catalog.text("cli.file_unreadable", file=str(file), error=exc.strerror or str(exc))) from None
    rows, errors = parse_groups_csv(data)

    async def work(session: AsyncSession) -> ImportSummary:
        if errors:
            raise GroupImportError(errors)
        return await import_groups(session, rows=rows, actor="cli", now=context.now(ctx), source=file.name)

    try:
        summary = context.run_work(settings, work)
    except GroupImportError as exc:
        lines = [catalog.text("cli.import_failed", file=file.name, count=len(exc.errors))]
        lines += [f"  {error}" for error in exc.errors]
        raise context.fail("\n".join(lines)) from None
    typer.echo(
        catalog.text(
            "cli.import_done",
            wards=summary.wards_created,
            created=summary.groups["created"],
            updated=summary.groups["updated"],
            unchanged=summary.groups["unchanged"],
        )
    )


@commands.command("qr")
def groups_qr(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Thư mục ghi các tệp <mã tổ>.png")],
    ward: Annotated[str | None, typer.Option("--ward", help="Chỉ các tổ của phường/xã này")] = None,
) -> None:
    """Tạo mã QR tham gia cho từng tổ (in dán ở bảng tin tổ dân phố / thôn)."""
    from bot.cli.reports import record_export
    from bot.reports.exports import UnknownWard, group_links
    from bot.reports.qr import write_group_qr_codes

    settings = context.settings()
    catalog = Catalog.load()
    try:
        username = asyncio.run(telegram_username(settings))
    except LookupError:
        raise context.fail(catalog.text("cli.qr_no_username")) from None
    except Exception as exc:  # the network or the Bot API: say so, and how to avoid asking
        raise context.fail(catalog.text("cli.qr_getme_failed", error=type(exc).__name__)) from None

    async def work(session: AsyncSession) -> list[tuple[str, str, str]]:
        return await group_links(session, ward_code=ward, telegram_username=username)

    try:
        links = context.run_work(settings, work)
    except UnknownWard as exc:
        raise context.fail(catalog.text("cli.ward_unknown", code=exc.code, codes=", ".join(exc.known) or "—")) from None
    if not links:
        raise context.fail(catalog.text("cli.qr_no_groups"))
    try:
        written = write_group_qr_codes(links, out)
    except OSError as exc:
        raise context.fail(catalog.text("cli.path_unwritable", file=str(out), error=exc.strerror or str(exc))) from None
    record_export(ctx, settings, action="export.qr", ward=ward, groups=len(written))
    typer.echo(catalog.text("cli.qr_written", count=len(written), folder=str(out)))
