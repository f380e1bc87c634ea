"""``python -m bot`` and the ``hocvuso`` command: the composition root.

This is the only place where objects are built: settings → engine → lesson library →
catalogue → conversation → channel adapters. Nothing runs at import time.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import SecretFilter, Settings, SettingsError, load_settings
from bot.core.conversation import Clock, Conversation, Services, SystemClock
from bot.core.i18n import Catalog
from bot.curriculum import LessonLibrary, LessonLibraryError, check_directory, default_lessons_dir, load_library
from bot.delivery.quiet import QuietHours
from storage.db import SessionFactory, create_engine, immediate_session_factory, session_factory

log = logging.getLogger("bot")
DEFAULT_FILES_DIR = Path("data/files")  # generated reports, charts, certificates, QR codes; admins' photos

cli = typer.Typer(
    name="hocvuso",
    help="Học vụ số: bài học kỹ năng số ngắn qua Telegram, Zalo và cửa sổ dòng lệnh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Cơ sở dữ liệu.", no_args_is_help=True)
groups_cli = typer.Typer(help="Tổ dân phố / thôn.", no_args_is_help=True)
lessons_cli = typer.Typer(help="Bài học.", no_args_is_help=True)
broadcast_cli = typer.Typer(help="Thông báo tới người dân (gửi qua hàng đợi, ngoài giờ yên lặng).", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(groups_cli, name="groups")
cli.add_typer(lessons_cli, name="lessons")
cli.add_typer(broadcast_cli, name="broadcast")
admin_cli = typer.Typer(help="Cán bộ quản trị phường/xã.", no_args_is_help=True)
cli.add_typer(admin_cli, name="admin")


@dataclass
class App:
    """Everything a running bot needs, built once."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    catalog: Catalog
    lessons: LessonLibrary
    conversation: Conversation

    async def close(self) -> None:
        await self.engine.dispose()


def build_app(
    settings: Settings, *, clock: Clock | None = None, lessons: LessonLibrary | None = None,
    files_dir: Path | None = None,
) -> App:
    from handlers import build_router

    catalog = Catalog.load()
    library = lessons or load_library()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    quiet = quiet_hours(settings)
    # Offer only reminder hours outside the quiet hours.
    hours = tuple(h for h in Services.reminder_hours if not quiet.contains(_today_at(settings, h)))
    services = Services(
        lessons=library, catalog=catalog, clock=clock or SystemClock(), reminder_hours=hours, zone=settings.zone,
        quiet=quiet, files_dir=files_dir or DEFAULT_FILES_DIR, telegram_username=settings.telegram_bot_username,
    )
    conversation = Conversation(router=build_router(), sessions=immediate_session_factory(engine),
                                read_sessions=sessions, services=services)
    return App(settings, engine, sessions, catalog, library, conversation)


def quiet_hours(settings: Settings) -> QuietHours:
    start, end = settings.quiet
    return QuietHours(settings.zone, start, end)


def _today_at(settings: Settings, hour: int) -> datetime:
    return datetime.now(settings.zone).replace(hour=hour, minute=0, second=0, microsecond=0)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise _fail(Catalog.load().text("cli.settings_invalid", error=str(exc)), 2) from None
    _configure_logging(settings)
    return settings


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(settings.secrets()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        # Libraries narrate every step at INFO; operators need their warnings only.
        for name in ("alembic", "aiosqlite", "asyncio", "apscheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _migrate(settings: Settings) -> None:
    from storage.migrate import upgrade

    upgrade(settings.database_url)


def _app(settings: Settings) -> App:
    try:
        return build_app(settings)
    except LessonLibraryError as exc:
        raise _fail(Catalog.load().text("cli.lessons_invalid", errors=str(exc))) from None


class ProcessRole(StrEnum):
    ALL = "all"  # receive, handle, send, schedule: one process does everything
    WORKER = "worker"  # only the outbox senders and the scheduler


@cli.command()
def run(
    role: Annotated[ProcessRole, typer.Option(help="all: mọi việc trong một tiến trình; worker: chỉ gửi tin và lập lịch")] = ProcessRole.ALL,
) -> None:
    """Chạy bot: Telegram nếu có TELEGRAM_BOT_TOKEN, nếu không thì trò chuyện trong cửa sổ dòng lệnh."""
    settings = _settings()
    if settings.is_sqlite:
        _migrate(settings)  # one machine, one file: keep the schema current on every start
    app = _app(settings)
    has_zalo = settings.zalo_bot_token is not None or settings.zalo_oa_id is not None
    if settings.telegram_bot_token is None and not has_zalo:
        if role == ProcessRole.WORKER:
            raise _fail(app.catalog.text("cli.worker_needs_channel"))
        typer.echo(app.catalog.text("cli.no_token", database=settings.database_url))
        asyncio.run(_chat(app))
        return
    if role == ProcessRole.ALL and settings.telegram_bot_token is not None:
        typer.echo(app.catalog.text("cli.telegram_polling", api=str(settings.telegram_api_url).rstrip("/")))
    if role == ProcessRole.ALL and has_zalo:
        typer.echo(app.catalog.text("cli.zalo_receiving"))
    asyncio.run(_serve(app, role=role))


@cli.command()
def chat() -> None:
    """Trò chuyện với bot trong cửa sổ dòng lệnh (gõ số để chọn; dùng được cả với dữ liệu đưa vào qua ống)."""
    settings = _settings()
    if settings.is_sqlite:
        _migrate(settings)
    asyncio.run(_chat(_app(settings)))


async def _chat(app: App) -> None:
    from bot.channels.console import ConsoleChannel, offer_demo_data

    channel = ConsoleChannel(
        conversation=app.conversation, catalog=app.catalog, stdin=sys.stdin, stdout=sys.stdout
    )
    try:
        await offer_demo_data(channel, app.sessions)
        await channel.run()
    finally:
        await app.close()


async def _serve(app: App, *, role: ProcessRole) -> None:
    """The configured channels (role all), one outbox sender per channel, the scheduler and,
    when Zalo needs it, the web endpoint — until SIGINT/SIGTERM."""
    from bot.channels.zalo import build_zalo_channels
    from bot.delivery.sender import Sender
    from bot.delivery.transport import Pacing, Transport
    from bot.reminders import ReminderPolicy, record_reminder_sent
    from bot.scheduling import Producers, build_scheduler
    from bot.web import start_web
    from handlers import COMMANDS

    settings = app.settings
    clock = app.conversation.services.clock
    quiet = quiet_hours(settings)
    transports: list[Transport] = []
    telegram = None
    if settings.telegram_bot_token is not None:
        from bot.channels.telegram import TelegramChannel
        from bot.channels.telegram.transport import TelegramTransport

        telegram = TelegramChannel(
            token=settings.telegram_bot_token.get_secret_value(), api_url=str(settings.telegram_api_url),
            conversation=app.conversation, catalog=app.catalog, commands=COMMANDS,
            files_dir=app.conversation.services.files_dir,
        )
        if app.conversation.services.telegram_username is None:
            # Join and invitation links need the bot's username; ask Telegram once.
            me = await telegram.bot.me()
            app.conversation.services = replace(app.conversation.services, telegram_username=me.username)
        transports.append(
            TelegramTransport(telegram.bot, pacing=Pacing(settings.telegram_rate, settings.telegram_chat_interval))
        )
    zalo = build_zalo_channels(settings, conversation=app.conversation, catalog=app.catalog,
                               sessions=app.sessions, clock=clock, files_dir=app.conversation.services.files_dir)
    transports.extend(zalo.transports)
    senders = [
        Sender(
            sessions=app.sessions, transport=t, clock=clock, quiet=quiet,
            lease_seconds=settings.outbox_lease_seconds, concurrency=settings.sender_concurrency,
            after_sent={"reminder": record_reminder_sent},
        )
        for t in transports
    ]
    producers = Producers(
        sessions=app.sessions, clock=clock, quiet=quiet, lessons=app.lessons, catalog=app.catalog,
        policy=ReminderPolicy(zone=settings.zone, quiet=quiet, inactive_days=settings.reminder_inactive_days,
                              max_unanswered=settings.reminder_max_unanswered),
        on_queued=lambda: [s.wake() for s in senders],
    )
    scheduler = build_scheduler(producers, zone=settings.zone)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    web = None
    receiving: list[asyncio.Task] = []  # type: ignore[type-arg]
    if role == ProcessRole.ALL:
        if zalo.needs_web:
            web = await start_web(zalo.web_app(), host=settings.web_host, port=settings.web_port)
        if telegram is not None:
            receiving.append(asyncio.create_task(telegram.run_polling(), name="telegram"))
        if zalo:
            receiving.append(asyncio.create_task(zalo.run(), name="zalo"))
    sending = [asyncio.create_task(s.run(), name=f"sender-{s.channel}") for s in senders]
    scheduler.start()
    try:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *receiving, *sending], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        # Stop receiving first (answers in hand are finished), then sending, then close clients.
        scheduler.shutdown(wait=False)
        if telegram is not None:
            await telegram.stop()
        await zalo.stop()
        await asyncio.gather(*receiving, return_exceptions=True)
        for sender in senders:
            sender.stop()
        await asyncio.gather(*sending, return_exceptions=True)
        if telegram is not None:
            await telegram.close()
        await zalo.close()
        if web is not None:
            await web.cleanup()
        await app.close()


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Áp dụng các bản nâng cấp cấu trúc cơ sở dữ liệu còn thiếu."""
    settings = _settings()
    _migrate(settings)
    typer.echo(Catalog.load().text("cli.db_upgraded"))


@db_cli.command("revision")
def db_revision(message: Annotated[str, typer.Option("--message", "-m")]) -> None:
    """(Cho lập trình viên) Tạo bản nâng cấp mới từ thay đổi của các bảng."""
    from storage.migrate import revision

    revision(_settings().database_url, message)


@groups_cli.command("import")
def groups_import(file: Annotated[Path, typer.Argument(help="Tệp CSV: ward_code,ward_name,group_code,group_name[,kind,target_percent]")]) -> None:
    """Nhập hoặc cập nhật danh sách tổ dân phố / thôn từ tệp CSV (không bao giờ nhập dở dang)."""
    settings = _settings()
    catalog = Catalog.load()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(catalog.text("cli.file_unreadable", file=str(file), error=exc.strerror or str(exc))) from None
    from datetime import UTC

    from bot.group_import import GroupImportError, import_groups, parse_groups_csv

    rows, errors = parse_groups_csv(data)

    async def work(session):  # type: ignore[no-untyped-def]
        if errors:
            raise GroupImportError(errors)
        return await import_groups(session, rows=rows, actor="cli", now=datetime.now(UTC), source=file.name)

    try:
        summary = _run_work(settings, work)
    except GroupImportError as exc:
        lines = [catalog.text("cli.import_failed", file=file.name, count=len(exc.errors))]
        lines += [f"  {error}" for error in exc.errors]
        raise _fail("\n".join(lines)) from None
    typer.echo(
        catalog.text(
            "cli.import_done",
            wards=summary.wards_created,
            created=summary.groups["created"],
            updated=summary.groups["updated"],
            unchanged=summary.groups["unchanged"],
        )
    )


@lessons_cli.command("check")
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
        raise _fail(catalog.text("cli.lessons_failed", count=len(errors), folder=str(folder)))
    typer.echo(catalog.text("cli.lessons_ok", count=len(lessons), folder=str(folder)))


async def _with_session(settings: Settings, work):  # type: ignore[no-untyped-def]
    """Run ``work(session)`` in one transaction on a schema that is current."""
    from storage.migrate import SchemaNotCurrentError, schema_is_current

    engine = create_engine(settings.database_url)
    try:
        if not await schema_is_current(engine):
            raise SchemaNotCurrentError()
        async with session_factory(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def _run_work(settings: Settings, work):  # type: ignore[no-untyped-def]
    from storage.migrate import SchemaNotCurrentError

    if settings.is_sqlite:
        _migrate(settings)
    try:
        return asyncio.run(_with_session(settings, work))
    except SchemaNotCurrentError:
        raise _fail(Catalog.load().text("cli.schema_not_current")) from None


@broadcast_cli.command("send")
def broadcast_send(
    text: Annotated[str, typer.Option("--text", help="Nội dung thông báo")],
    to: Annotated[str, typer.Option("--to", help="all | group:MÃ_TỔ[,MÃ_TỔ] | not-completed:MÃ_BÀI | leaders[:MÃ_PHƯỜNG]")],
    at: Annotated[str | None, typer.Option("--at", help="Giờ gửi theo giờ địa phương, ví dụ '2026-11-25 08:00'")] = None,
    image: Annotated[str | None, typer.Option("--image", help="Ảnh .jpg/.png gửi kèm")] = None,
) -> None:
    """Lên lịch một thông báo: gửi ngay hoặc vào giờ đã chọn (tin chờ qua giờ yên lặng)."""
    from datetime import UTC

    from bot.broadcasting import BroadcastError, parse_time, schedule

    settings = _settings()
    catalog = Catalog.load()
    lessons = load_library()
    try:
        when = parse_time(at, zone=settings.zone) if at else None
    except BroadcastError as exc:
        raise _fail(catalog.text("cli.broadcast_invalid", error=str(exc))) from None

    async def work(session):  # type: ignore[no-untyped-def]
        return await schedule(
            session, author="cli", text=text, audience_text=to, lesson_ids={l.id for l in lessons},
            now=datetime.now(UTC), quiet=quiet_hours(settings), at=when, image=image,
        )

    try:
        done = _run_work(settings, work)
    except BroadcastError as exc:
        raise _fail(catalog.text("cli.broadcast_invalid", error=str(exc))) from None
    local = done.sends_at.astimezone(settings.zone).strftime("%H:%M %d/%m/%Y")
    key = "cli.broadcast_queued" if done.recipients is not None else "cli.broadcast_scheduled"
    typer.echo(catalog.text(key, id=done.broadcast.id, recipients=done.recipients or 0, when=local))


@broadcast_cli.command("status")
def broadcast_status(broadcast_id: Annotated[int, typer.Argument(help="Số thông báo")]) -> None:
    """Kết quả gửi: đã gửi / bị chặn / lỗi / đang chờ, tổng và theo từng tổ."""
    from bot.broadcasting import format_report
    from storage.models import Broadcast
    from storage.outbox import delivery_report

    settings = _settings()
    catalog = Catalog.load()

    async def work(session):  # type: ignore[no-untyped-def]
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            return None
        return format_report(catalog, broadcast, await delivery_report(session, broadcast_id=broadcast_id),
                             zone=settings.zone)

    text = _run_work(settings, work)
    if text is None:
        raise _fail(catalog.text("cli.broadcast_unknown", id=broadcast_id))
    typer.echo(text)


@broadcast_cli.command("cancel")
def broadcast_cancel(broadcast_id: Annotated[int, typer.Argument(help="Số thông báo")]) -> None:
    """Hủy một thông báo đã lên lịch (hoặc phần chưa gửi của nó)."""
    from datetime import UTC

    from storage import audit
    from storage.broadcasts import cancel_broadcast

    settings = _settings()
    catalog = Catalog.load()

    async def work(session):  # type: ignore[no-untyped-def]
        cancelled = await cancel_broadcast(session, broadcast_id=broadcast_id)
        if cancelled:
            audit.record(session, actor="cli", action="broadcast.cancel", target=f"broadcast:{broadcast_id}",
                         now=datetime.now(UTC))
        return cancelled

    if not _run_work(settings, work):
        raise _fail(catalog.text("cli.broadcast_unknown", id=broadcast_id))
    typer.echo(catalog.text("cli.broadcast_cancelled", id=broadcast_id))


@cli.command()
def report(
    ward: Annotated[str, typer.Option("--ward", help="Mã phường/xã (như trong tệp nhập tổ)")],
    out: Annotated[Path, typer.Option("--out", help="Tệp báo cáo .xlsx sẽ ghi")],
    chart: Annotated[Path | None, typer.Option("--chart", help="Tệp biểu đồ .png sẽ ghi")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Ngày bắt đầu, NĂM-THÁNG-NGÀY")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Ngày kết thúc, NĂM-THÁNG-NGÀY (mặc định: hôm nay)")] = None,
    period: Annotated[str | None, typer.Option("--period", help="6m (nửa năm chứa --to) | year | month | all")] = None,
) -> None:
    """Xuất báo cáo XLSX (và biểu đồ PNG) của một phường/xã cho một kỳ (báo cáo 6 tháng, năm)."""
    from datetime import UTC

    from bot.reports.exports import UnknownWard, ward_report
    from bot.reports.period import PeriodError, Span, parse_day, report_period

    settings = _settings()
    catalog = Catalog.load()
    try:
        span = Span(period) if period is not None else None
    except ValueError:
        raise _fail(catalog.text("cli.period_unknown", value=period)) from None
    try:
        first = parse_day(date_from) if date_from else None
        last = parse_day(date_to) if date_to else None
        chosen = report_period(span=span, first=first, last=last, now=datetime.now(UTC), zone=settings.zone)
    except PeriodError as exc:
        raise _fail(catalog.text(exc.key, **exc.values)) from None
    for target in [out, chart] if chart else [out]:
        if target.is_dir() or not target.parent.is_dir():
            raise _fail(catalog.text("cli.path_no_folder", file=str(target)))
    lessons = load_library()

    async def work(session):  # type: ignore[no-untyped-def]
        return await ward_report(session, ward_code=ward, lessons=lessons, start=chosen.start, end=chosen.end,
                                 zone=settings.zone, chart=chart is not None)

    try:
        made = _run_work(settings, work)
    except UnknownWard as exc:
        raise _fail(catalog.text("cli.ward_unknown", code=exc.code, codes=", ".join(exc.known) or "—")) from None
    for target, data in [(out, made.workbook), (chart, made.chart)]:
        if target is not None and data is not None:
            try:
                target.write_bytes(data)
            except OSError as exc:
                error = exc.strerror or str(exc)
                raise _fail(catalog.text("cli.path_unwritable", file=str(target), error=error)) from None
    end = f"{chosen.end.astimezone(settings.zone):%d/%m/%Y}"
    shown = (catalog.text("cli.period_range", start=f"{chosen.start.astimezone(settings.zone):%d/%m/%Y}", end=end)
             if chosen.start else catalog.text("cli.period_up_to", end=end))
    summary = catalog.text(
        "cli.report_written", ward=made.ward.name, period=shown,
        groups=len(made.stats), members=made.members, finished=made.finished, rate=f"{made.rate:.1f}", file=str(out),
    )
    typer.echo(summary + (catalog.text("cli.report_chart_written", file=str(chart)) if chart is not None else ""))


async def _telegram_username(settings: Settings) -> str:
    """TELEGRAM_BOT_USERNAME, or the bot's username from getMe (one call) when only the token is set."""
    if settings.telegram_bot_username:
        return settings.telegram_bot_username.lstrip("@")
    if settings.telegram_bot_token is None:
        raise LookupError("no username")
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    session = AiohttpSession(api=TelegramAPIServer.from_base(str(settings.telegram_api_url).rstrip("/")))
    async with Bot(settings.telegram_bot_token.get_secret_value(), session=session) as bot:
        me = await bot.get_me()
    if not me.username:
        raise LookupError("getMe gave no username")
    return me.username


@groups_cli.command("qr")
def groups_qr(
    out: Annotated[Path, typer.Option("--out", help="Thư mục ghi các tệp <mã tổ>.png")],
    ward: Annotated[str | None, typer.Option("--ward", help="Chỉ các tổ của phường/xã này")] = None,
) -> None:
    """Tạo mã QR tham gia cho từng tổ (in dán ở bảng tin tổ dân phố / thôn)."""
    from bot.reports.exports import UnknownWard, group_links
    from bot.reports.qr import write_group_qr_codes

    settings = _settings()
    catalog = Catalog.load()
    try:
        username = asyncio.run(_telegram_username(settings))
    except LookupError:
        raise _fail(catalog.text("cli.qr_no_username")) from None
    except Exception as exc:  # the network or the Bot API: say so, and how to avoid asking
        raise _fail(catalog.text("cli.qr_getme_failed", error=type(exc).__name__)) from None

    async def work(session):  # type: ignore[no-untyped-def]
        return await group_links(session, ward_code=ward, telegram_username=username)

    try:
        links = _run_work(settings, work)
    except UnknownWard as exc:
        raise _fail(catalog.text("cli.ward_unknown", code=exc.code, codes=", ".join(exc.known) or "—")) from None
    if not links:
        raise _fail(catalog.text("cli.qr_no_groups"))
    try:
        written = write_group_qr_codes(links, out)
    except OSError as exc:
        raise _fail(catalog.text("cli.path_unwritable", file=str(out), error=exc.strerror or str(exc))) from None
    typer.echo(catalog.text("cli.qr_written", count=len(written), folder=str(out)))


@cli.command()
def audit(
    since: Annotated[str, typer.Option("--since", help="Từ ngày, NĂM-THÁNG-NGÀY (giờ địa phương)")],
    until: Annotated[str | None, typer.Option("--until", help="Đến hết ngày, NĂM-THÁNG-NGÀY")] = None,
) -> None:
    """In nhật ký thao tác của quản trị viên và tổ trưởng, cũ nhất trước."""
    import json
    from datetime import UTC

    from bot.reports.period import PeriodError, day_end, day_start, parse_day
    from storage.report_data import audit_entries

    settings = _settings()
    catalog = Catalog.load()
    zone = settings.zone
    try:
        first = parse_day(since)
        last = parse_day(until) if until else None
    except PeriodError as exc:
        raise _fail(catalog.text(exc.key, **exc.values)) from None
    start = day_start(first, zone)
    end = day_end(last, zone) if last else datetime.now(UTC)

    async def work(session):  # type: ignore[no-untyped-def]
        return list(await audit_entries(session, since=start, until=end))

    entries = _run_work(settings, work)
    shown = {"since": f"{first:%d/%m/%Y}", "until": f"{end.astimezone(zone):%H:%M %d/%m/%Y}"}
    if not entries:
        typer.echo(catalog.text("cli.audit_empty", **shown))
        return
    typer.echo(catalog.text("cli.audit_head", zone=zone.key, count=len(entries), **shown))
    for entry in entries:
        details = json.dumps(entry.details, ensure_ascii=False, sort_keys=True) if entry.details else ""
        typer.echo(f"{entry.at.astimezone(zone):%Y-%m-%d %H:%M:%S}  {entry.actor}  {entry.action}  "
                   f"{entry.target or '-'}  {details}".rstrip())


ADMIN_REFUSALS = {
    "needs_start": "cli.admin_needs_start",
    "ward_unknown": "cli.admin_ward_unknown",
    "ward_required": "cli.admin_ward_required",
}


@admin_cli.command("add")
def admin_add(
    account: Annotated[str, typer.Argument(help="Tài khoản người đó đã dùng để mở bot, ví dụ telegram:123456789")],
    ward: Annotated[str | None, typer.Option("--ward", help="Mã phường/xã (bỏ trống nếu chỉ có một)")] = None,
) -> None:
    """Cấp quyền cán bộ quản trị phường/xã cho một người đã mở bot và đồng ý (việc đầu tiên khi triển khai)."""
    from datetime import UTC

    from storage import audit
    from storage.roles import RoleError, add_admin

    settings = _settings()
    catalog = Catalog.load()
    channel, _, external_id = account.partition(":")
    if not channel or not external_id:
        raise _fail(catalog.text("cli.admin_bad_account", account=account))

    async def work(session):  # type: ignore[no-untyped-def]
        now = datetime.now(UTC)
        person, chosen, new = await add_admin(session, channel=channel, external_id=external_id, ward_code=ward, now=now)
        if new:
            audit.record(session, actor="cli", action="role.grant", target=f"person:{person.id}", now=now,
                         details={"kind": "admin", "ward": chosen.id})
        return person.display_name or account, chosen.name, new

    try:
        name, ward_name, new = _run_work(settings, work)
    except RoleError as exc:
        raise _fail(catalog.text(ADMIN_REFUSALS[exc.reason], **exc.values)) from None
    typer.echo(catalog.text("cli.admin_added" if new else "cli.admin_already", name=name, ward=ward_name))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
