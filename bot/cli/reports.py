"""``hocvuso report`` (the ward's report of a period: the Word report, the XLSX workbook, the
thi đua annex and the charts) and ``hocvuso audit`` (the log of admins' and leaders' actions,
staff by name); :func:`record_export` audits a file the command line wrote."""

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
    from bot.reports.exports import ReportData
    from storage.models import AuditLog

OUT_SUFFIXES = (".docx", ".xlsx")


def report(
    ctx: typer.Context,
    ward: Annotated[str, typer.Option("--ward", help="Mã phường/xã (như trong tệp nhập tổ)")],
    out: Annotated[list[Path], typer.Option(
        "--out", help="Tệp sẽ ghi: .docx là báo cáo (văn bản Word), .xlsx là bảng số liệu; dùng được nhiều lần")],
    annex: Annotated[Path | None, typer.Option("--annex", help="Tệp .docx danh sách đề xuất khen thưởng")] = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="Tệp .png biểu đồ tỷ lệ hoàn thành theo tổ")] = None,
    charts: Annotated[Path | None, typer.Option("--charts", help="Thư mục sẽ ghi cả ba biểu đồ .png")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Ngày bắt đầu, NĂM-THÁNG-NGÀY")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Ngày kết thúc, NĂM-THÁNG-NGÀY (mặc định: hôm nay)")] = None,
    period: Annotated[str | None, typer.Option("--period", help="6m (nửa năm chứa --to) | year | month | all")] = None,
) -> None:
    """Xuất báo cáo của một phường/xã cho một kỳ: văn bản Word (.docx), bảng số liệu (.xlsx),
    danh sách đề xuất khen thưởng và biểu đồ."""
    from bot.reports.docx import Signer
    from bot.reports.exports import CHARTS, UnknownWard, read_report, render_report
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
    for target in [*out, *[p for p in (annex, chart) if p is not None]]:
        if target.is_dir() or not target.parent.is_dir():
            raise context.fail(catalog.text("cli.path_no_folder", file=str(target)))
    for target in out:
        if target.suffix.lower() not in OUT_SUFFIXES:
            raise context.fail(catalog.text("cli.report_suffix", file=str(target)))
    if annex is not None and annex.suffix.lower() != ".docx":
        raise context.fail(catalog.text("cli.report_annex_suffix", file=str(annex)))
    if charts is not None and not charts.is_dir():
        raise context.fail(catalog.text("cli.charts_no_folder", folder=str(charts)))
    lessons = load_library()

    async def work(session: AsyncSession) -> ReportData:
        return await read_report(session, ward_code=ward, lessons=lessons, start=chosen.start, end=chosen.end,
                                 zone=settings.zone)

    try:
        data = context.run_work(settings, work)
    except UnknownWard as exc:
        raise context.fail(catalog.text("cli.ward_unknown", code=exc.code, codes=", ".join(exc.known) or "—")) from None
    # Drawn after the transaction has ended: the very files the chat sends for the same period.
    made = render_report(data, lessons=lessons, span=span.value if span else None, zone=settings.zone, now=now,
                         signer=Signer(settings.report_signer_title, settings.report_signer_name),
                         charts=chart is not None or charts is not None)
    writes = [(target, made.report if target.suffix.lower() == ".docx" else made.workbook) for target in out]
    if annex is not None:
        writes.append((annex, made.annex))
    if chart is not None:
        writes.append((chart, made.charts["nhom"]))
    if charts is not None:
        writes += [(charts / f"bieu-do-{name}.png", made.charts[name]) for name in CHARTS]
    for target, content in writes:
        try:
            target.write_bytes(content)
        except OSError as exc:
            error = exc.strerror or str(exc)
            raise context.fail(catalog.text("cli.path_unwritable", file=str(target), error=error)) from None
    record_export(ctx, settings, action="export.report", target=f"ward:{made.figures.ward.id}",
                  period=span.value if span else None, start=chosen.start.isoformat() if chosen.start else None,
                  end=chosen.end.isoformat(), files=[target.name for target, _ in writes])
    end = f"{chosen.end.astimezone(settings.zone):%d/%m/%Y}"
    shown = (catalog.text("cli.period_range", start=f"{chosen.start.astimezone(settings.zone):%d/%m/%Y}", end=end)
             if chosen.start else catalog.text("cli.period_up_to", end=end))
    total = made.figures.total
    summary = catalog.text(
        "cli.report_written", ward=made.figures.ward.name, period=shown, groups=len(made.figures.groups),
        members=total.members, finished=total.finished, rate=f"{total.rate or 0.0:.1f}",
        file=", ".join(str(target) for target in out),
    )
    if annex is not None:
        summary += catalog.text("cli.report_annex_written", file=str(annex))
    if chart is not None:
        summary += catalog.text("cli.report_chart_written", file=str(chart))
    if charts is not None:
        summary += catalog.text("cli.report_charts_written", folder=str(charts))
    typer.echo(summary)


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
