"""``hocvuso report`` (the ward's XLSX report and chart for a period) and ``hocvuso audit``
(the log of admins' and leaders' actions, staff by name); :func:`record_export` audits a file
the command line wrote."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cli import context
from bot.core.i18n import Catalog
from bot.curriculum import load_library
from storage.audit import ActorName, is_staff_action

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.reports.exports import WardReportData
    from storage.models import AuditLog


def report(
    ctx: typer.Context,
    ward: Annotated[str, typer.Option("--ward", help="Mã phường/xã (như trong tệp nhập tổ)")],
    out: Annotated[Path, typer.Option("--out", help="Tệp báo cáo .xlsx sẽ ghi")],
    chart: Annotated[Path | None, typer.Option("--chart", help="Tệp biểu đồ .png sẽ ghi")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Ngày bắt đầu, NĂM-THÁNG-NGÀY")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Ngày kết thúc, NĂM-THÁNG-NGÀY (mặc định: hôm nay)")] = None,
    period: Annotated[str | None, typer.Option("--period", help="6m (nửa năm chứa --to) | year | month | all")] = None,
) -> None:
    """Xuất báo cáo XLSX (và biểu đồ PNG) của một phường/xã cho một kỳ (báo cáo 6 tháng, năm)."""
    from bot.reports.exports import UnknownWard, read_ward_report, render_ward_report
    from bot.reports.period import PeriodError, Span, parse_day, report_period

    settings = context.settings()
    catalog = Catalog.load()
    now = context.now(ctx)
    try:
        span = Span(period) if period is not None else None
    except ValueError:
        raise context.fail(catalog.text("cli.period_unknown", value=period)) from None
    try:
        first = parse_day(date_from) if date_from else None
        last = parse_day(date_to) if date_to else None
        chosen = report_period(span=span, first=first, last=last, now=now, zone=settings.zone)
    except PeriodError as exc:
        raise context.fail(catalog.text(exc.key, **exc.values)) from None
    for target in [out, chart] if chart else [out]:
        if target.is_dir() or not target.parent.is_dir():
            raise context.fail(catalog.text("cli.path_no_folder", file=str(target)))
    lessons = load_library()

    async def work(session: AsyncSession) -> WardReportData:
        return await read_ward_report(session, ward_code=ward, lessons=lessons, start=chosen.start, end=chosen.end)

    try:
        data = context.run_work(settings, work)
    except UnknownWard as exc:
        raise context.fail(catalog.text("cli.ward_unknown", code=exc.code, codes=", ".join(exc.known) or "—")) from None
    # Drawn after the transaction has ended.
    made = render_ward_report(data, lessons=lessons, start=chosen.start, end=chosen.end, zone=settings.zone,
                              chart=chart is not None, now=now)
    for target, data in [(out, made.workbook), (chart, made.chart)]:
        if target is not None and data is not None:
            try:
                target.write_bytes(data)
            except OSError as exc:
                error = exc.strerror or str(exc)
                raise context.fail(catalog.text("cli.path_unwritable", file=str(target), error=error)) from None
    end = f"{chosen.end.astimezone(settings.zone):%d/%m/%Y}"
    shown = (catalog.text("cli.period_range", start=f"{chosen.start.astimezone(settings.zone):%d/%m/%Y}", end=end)
             if chosen.start else catalog.text("cli.period_up_to", end=end))
    summary = catalog.text(
        "cli.report_written", ward=made.ward.name, period=shown,
        groups=len(made.stats), members=made.members, finished=made.finished, rate=f"{made.rate:.1f}", file=str(out),
    )
    typer.echo(summary + (catalog.text("cli.report_chart_written", file=str(chart)) if chart is not None else ""))


def record_export(ctx: typer.Context, settings: Settings, *, action: str, target: str = "", **details: Any) -> None:
    """Audit a file the command line wrote (actor ``cli``), in a short transaction of its own
    once the file is written: ``audit`` records itself, and the report and the QR codes call
    this after writing theirs."""
    from storage import audit as log

    now = context.now(ctx)

    async def work(session: AsyncSession) -> None:
        log.record(session, actor="cli", action=action, target=target, now=now, details=details)

    context.run_work(settings, work)


def _local(value: Any, zone: ZoneInfo) -> Any:
    """``value`` with every ISO time it holds (a detail's ``completed_at``…) in local time."""
    if isinstance(value, dict):
        return {k: _local(v, zone) for k, v in value.items()}
    if isinstance(value, list):
        return [_local(v, zone) for v in value]
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}"
    return value


def _actor_label(actor: str, action: str, names: dict[str, ActorName], erased: str) -> str:
    """"Nguyễn Văn A (person:12)" for staff (or a staff action); "person:12 (đã xoá dữ liệu)"
    once they erased their data; residents stay ids."""
    person = names.get(actor)
    if person is None or not (person.staff or is_staff_action(action)):
        return actor
    return f"{person.name} ({actor})" if person.name else f"{actor} {erased}"


def audit(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Từ ngày, NĂM-THÁNG-NGÀY (giờ địa phương)")],
    until: Annotated[str | None, typer.Option("--until", help="Đến hết ngày, NĂM-THÁNG-NGÀY")] = None,
) -> None:
    """In nhật ký thao tác của quản trị viên và tổ trưởng, cũ nhất trước, giờ địa phương; cán bộ
    có tên, người dân chỉ có mã. Lần xuất này cũng được ghi vào nhật ký."""
    from bot.reports.period import PeriodError, day_end, day_start, parse_day
    from storage import audit as log
    from storage.report_data import audit_entries

    settings = context.settings()
    catalog = Catalog.load()
    zone = settings.zone
    try:
        first = parse_day(since)
        last = parse_day(until) if until else None
    except PeriodError as exc:
        raise context.fail(catalog.text(exc.key, **exc.values)) from None
    start = day_start(first, zone)
    now = context.now(ctx)
    end = day_end(last, zone) if last else now

    async def work(session: AsyncSession) -> tuple[list[AuditLog], dict[str, ActorName]]:
        entries = list(await audit_entries(session, since=start, until=end))
        names = await log.actor_names(session, actors={e.actor for e in entries})
        log.record(session, actor="cli", action="export.audit", now=now,
                   details={"since": start.isoformat(), "until": end.isoformat(), "entries": len(entries)})
        return entries, names

    entries, names = context.run_work(settings, work)
    shown = {"since": f"{first:%d/%m/%Y}", "until": f"{end.astimezone(zone):%H:%M %d/%m/%Y}"}
    if not entries:
        typer.echo(catalog.text("cli.audit_empty", **shown))
        return
    typer.echo(catalog.text("cli.audit_head", zone=zone.key, count=len(entries), **shown))
    erased = catalog.text("cli.audit_erased")
    for entry in entries:
        details = json.dumps(_local(entry.details, zone), ensure_ascii=False, sort_keys=True) if entry.details else ""
        actor = _actor_label(entry.actor, entry.action, names, erased)
        typer.echo(f"{entry.at.astimezone(zone):%Y-%m-%d %H:%M:%S}  {actor}  {entry.action}  "
                   f"{entry.target or '-'}  {details}".rstrip())
