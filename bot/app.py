"""The composition root: the only place where objects are built.

Settings → engine → lesson library → catalogue → services → conversation → channel adapters,
outbox senders and the scheduler. The clock is not built here: ``bot.__main__.main()`` builds
the one :class:`~bot.core.conversation.SystemClock` and every builder below takes it as an
argument, so tests give a ``ManualClock`` instead and nothing falls back to the wall clock.
Nothing runs at import time; the commands in ``bot/cli`` call these builders.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.accounts import Account, AccountDirectory, AccountInfo, AccountKind, load_accounts, secrets_of
from bot.config import JsonFormatter, SecretFilter, Settings, parse_proxies
from bot.core.conversation import Clock, Conversation, Services
from bot.core.i18n import Catalog
from bot.curriculum import LessonLibrary, load_library
from bot.delivery.quiet import QuietHours
from bot.reminders import ReminderPolicy
from storage.db import SessionFactory, create_engine, immediate_session_factory, session_factory

if TYPE_CHECKING:
    from aiohttp.web import AppRunner

    from bot.dashboard import Dashboard

log = logging.getLogger("bot")
DEFAULT_FILES_DIR = Path("data/files")  # generated reports, charts, certificates, QR codes; admins' photos
T = TypeVar("T")


@dataclass
class App:
    """Everything a running bot needs, built once."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    catalog: Catalog
    lessons: LessonLibrary
    conversation: Conversation

    @property
    def clock(self) -> Clock:
        return self.conversation.services.clock

    async def close(self) -> None:
        await self.engine.dispose()


def build_app(
    settings: Settings, *, clock: Clock, lessons: LessonLibrary | None = None, files_dir: Path | None = None,
) -> App:
    from handlers import build_router

    catalog = Catalog.load()
    library = lessons or load_library()
    # Connections in use at once: the updates in flight, a sender's stores, the scheduler and a
    # few reads (a photo's step, a report after its update); more wait in the pool.
    engine = create_engine(settings.database_url,
                           connections=settings.updates_in_flight + settings.sender_concurrency + 4)
    sessions = session_factory(engine)
    quiet = quiet_hours(settings)
    services = Services(
        lessons=library, catalog=catalog, clock=clock, reminder_hours=reminder_hours(quiet, clock.now()),
        zone=settings.zone, quiet=quiet, files_dir=files_dir or DEFAULT_FILES_DIR,
        reminders=ReminderPolicy(zone=settings.zone, inactive_days=settings.reminder_inactive_days,
                                 max_unanswered=settings.reminder_max_unanswered),
        telegram_username=settings.telegram_bot_username,
        report_signer=(settings.report_signer_title, settings.report_signer_name),
        send_rates={"telegram": settings.telegram_rate, "zalo": settings.zalo_rate, "zalo_oa": settings.zalo_rate},
        web_url=web_url(settings),
    )
    conversation = Conversation(router=build_router(), engine=engine, sessions=immediate_session_factory(engine),
                                read_sessions=sessions, services=services, in_flight=settings.updates_in_flight,
                                one_writer=engine.dialect.name == "sqlite")
    return App(settings, engine, sessions, catalog, library, conversation)


def web_url(settings: Settings) -> str:
    """Where people open the web dashboard: PUBLIC_BASE_URL, or this machine's loopback at
    WEB_PORT (``make run`` on a laptop)."""
    if settings.public_base_url is not None:
        return str(settings.public_base_url).rstrip("/")
    return f"http://127.0.0.1:{settings.web_port}"


def dashboard(app: App) -> Dashboard:
    """What the web dashboard's pages need (``bot.dashboard``)."""
    from bot.dashboard import Dashboard

    services = app.conversation.services
    return Dashboard(reads=app.sessions, writes=app.conversation.sessions, clock=app.clock, catalog=app.catalog,
                     lessons=app.lessons,
                     zone=app.settings.zone, secure=web_url(app.settings).startswith("https://"),
                     quiet=services.quiet, send_rates=services.send_rates, files_dir=services.files_dir,
                     report_signer=(app.settings.report_signer_title, app.settings.report_signer_name),
                     services=app.conversation.services,
                     trusted_proxies=parse_proxies(app.settings.web_trusted_proxies),
                     client_secret=client_secret(app.settings))


def client_secret(settings: Settings) -> bytes:
    """The key of the HMAC a refused dashboard sign-in's client address is stored as: derived
    (one way) from the deployment's secrets — tokens, webhook secrets, the database password —,
    which every replica shares; with none (a laptop's terminal chat), random for this process."""
    found = sorted(settings.secrets())
    if not found:
        return secrets.token_bytes(32)
    return hmac.new(b"hocvuso web client addresses", "\0".join(found).encode("utf-8"), hashlib.sha256).digest()


async def start_dashboard(app: App, **web: object) -> AppRunner | None:
    """The web endpoint on 127.0.0.1:WEB_PORT, for the dashboard alone (``make run`` on a laptop,
    where nothing else needs it): if the port is taken, the bot runs without it (a warning)."""
    from bot.web import create_web_app, start_web

    try:
        return await start_web(create_web_app(dashboard=dashboard(app), **web),  # type: ignore[arg-type]
                               host="127.0.0.1", port=app.settings.web_port)
    except OSError as exc:
        log.warning("the web dashboard is not served: port %s: %s", app.settings.web_port, exc.strerror or exc)
        return None


def quiet_hours(settings: Settings) -> QuietHours:
    start, end = settings.quiet
    return QuietHours(settings.zone, start, end)


def reminder_hours(quiet: QuietHours, now: datetime) -> tuple[int, ...]:
    """The reminder hours a resident may choose: those outside the quiet hours (on the day
    of ``now``; the ward's zone has no daylight saving, so any day gives the same hours)."""
    local = now.astimezone(quiet.zone)
    return tuple(
        hour for hour in Services.reminder_hours
        if not quiet.contains(local.replace(hour=hour, minute=0, second=0, microsecond=0))
    )


def configure_logging(settings: Settings, *, accounts: Sequence[Account] = ()) -> None:
    """Log lines to stderr (text or JSON), every secret of the settings and of the channel
    accounts scrubbed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter([*settings.secrets(), *secrets_of(accounts)]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        # Libraries narrate every step at INFO; operators need their warnings only.
        for name in ("alembic", "aiosqlite", "asyncio", "apscheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)


def migrate(settings: Settings) -> None:
    from storage.migrate import upgrade

    upgrade(settings.database_url)


async def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work(session)`` in one transaction on a schema that is current (one command's
    engine, disposed afterwards); raises ``SchemaNotCurrentError`` otherwise."""
    from storage.migrate import SchemaNotCurrentError, schema_is_current

    engine = create_engine(settings.database_url)
    try:
        if not await schema_is_current(engine):
            raise SchemaNotCurrentError()
        async with session_factory(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def telegram_username(settings: Settings) -> str:
    """TELEGRAM_BOT_USERNAME, or the bot's username from getMe (one call) when only the token is set."""
    if settings.telegram_bot_username:
        return settings.telegram_bot_username.lstrip("@")
    if settings.telegram_bot_token is None:
        raise LookupError("no username")
    from bot.channels.telegram.models import import_aiogram

    import_aiogram()  # as the adapter does, before the first import of aiogram
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    session = AiohttpSession(api=TelegramAPIServer.from_base(str(settings.telegram_api_url).rstrip("/")))
    async with Bot(settings.telegram_bot_token.get_secret_value(), session=session) as bot:
        me = await bot.get_me()
    if not me.username:
        raise LookupError("getMe gave no username")
    return me.username


class ProcessRole(StrEnum):
    ALL = "all"  # receive, handle, send, schedule: one process does everything
    WEB = "web"  # receive and handle by webhook only (any number of replicas): no sending, no scheduling
    WORKER = "worker"  # only the outbox senders and the scheduler


async def chat(app: App, *, stdin: TextIO, stdout: TextIO, with_dashboard: bool = False) -> None:
    """The terminal chat on ``stdin``/``stdout`` (offering the demo ward on an empty database);
    ``with_dashboard``: the web dashboard alongside, on 127.0.0.1:WEB_PORT (``hocvuso run``)."""
    from bot.channels.console import ConsoleChannel, offer_demo_data

    channel = ConsoleChannel(conversation=app.conversation, catalog=app.catalog, stdin=stdin, stdout=stdout)
    web = await start_dashboard(app) if with_dashboard else None
    try:
        await offer_demo_data(channel, app.sessions, clock=app.clock)
        await channel.run()
    finally:
        if web is not None:
            await web.cleanup()
        await app.close()


async def register(app: App, accounts: Sequence[Account]) -> AccountDirectory:
    """Register the channel accounts (``channel_account``: which ward each serves) and return
    the directory handlers ask; raises ``UnknownWardError`` for a ward not in the database."""
    from storage.accounts import Declared, register_accounts

    declared = [Declared(a.key, a.kind, a.ward) for a in accounts]
    async with app.sessions() as session, session.begin():
        wards = await register_accounts(session, declared=declared, now=app.clock.now())
    return AccountDirectory({a.key: AccountInfo(a.key, a.kind, wards[a.key], a.username) for a in accounts})


def with_accounts(services: Services, directory: AccountDirectory, accounts: Sequence[Account]) -> Services:
    """The handlers' services once the accounts are registered: the directory, and each
    account's pace for the composer's time estimate (a ward's bot may have its own rate)."""
    rates = {**services.send_rates, **{a.key: a.rate for a in accounts if a.rate}}
    return replace(services, accounts=directory, send_rates=rates)


async def serve(app: App, *, role: ProcessRole, accounts: Sequence[Account] | None = None) -> None:
    """Until SIGINT/SIGTERM: every channel account receiving (roles all and web), one outbox
    sender per account and the scheduler (roles all and worker), and the web endpoint when a
    webhook or Zalo's media need it (always in the web role: its ``/healthz``). ``accounts``:
    by default the settings' (``bot.accounts.load_accounts``)."""
    from bot.channels.zalo import build_zalo_channels
    from bot.deadlines import parse_deadlines
    from bot.delivery.limiter import RateLimiter
    from bot.delivery.sender import Sender
    from bot.delivery.transport import Pacing, Transport
    from bot.helpdesk import HelpCheck
    from bot import metrics
    from bot.leadership import worker_lock
    from bot.reminders import record_reminder_sent
    from bot.scheduling import JobsInFlight, Producers, build_scheduler, stop_scheduler
    from bot.web import create_web_app, start_web
    from handlers import COMMANDS

    settings = app.settings
    clock = app.clock
    quiet = quiet_hours(settings)
    accounts = load_accounts(settings) if accounts is None else accounts
    directory = await register(app, accounts)
    transports: list[Transport] = []
    telegrams = []
    limiters: dict[str, RateLimiter] = {}
    public = str(settings.public_base_url).rstrip("/") if settings.public_base_url else None
    for account in accounts:
        if account.kind != AccountKind.TELEGRAM or account.token is None:
            continue
        from bot.channels.telegram import TelegramChannel
        from bot.channels.telegram.transport import TelegramTransport

        path = account.webhook_path(TelegramChannel.webhook_path)
        hooked = public is not None and account.webhook_secret is not None
        # One pace per bot, for its replies and its outbox: replies spend first (see RateLimiter.spend).
        pacing = Pacing(account.rate or settings.telegram_rate, settings.telegram_chat_interval)
        pace = RateLimiter(pacing.per_second, burst=pacing.burst, per_key_interval=pacing.per_chat_interval)
        limiters[account.key] = pace
        telegram = TelegramChannel(
            token=account.token.get_secret_value(), api_url=account.api_url or str(settings.telegram_api_url),
            conversation=app.conversation, catalog=app.catalog, commands=COMMANDS,
            files_dir=app.conversation.services.files_dir, webhook_url=f"{public}{path}" if hooked else None,
            webhook_secret=account.webhook_secret.get_secret_value() if hooked and account.webhook_secret else None,
            channel=account.key, webhook_path=path, pace=pace,
        )
        telegrams.append(telegram)
        username = directory.get(account.key).username
        if username is None:
            # Join and invitation links need the bot's username; ask Telegram once.
            username = (await telegram.bot.me()).username
            directory = directory.with_username(account.key, username)
        if account.is_default and app.conversation.services.telegram_username is None:
            app.conversation.services = replace(app.conversation.services, telegram_username=username)
        transports.append(TelegramTransport(telegram.bot, pacing=pacing, channel=account.key))
    app.conversation.services = with_accounts(app.conversation.services, directory, accounts)
    zalo = build_zalo_channels(settings, conversation=app.conversation, catalog=app.catalog,
                               sessions=app.sessions, clock=clock, files_dir=app.conversation.services.files_dir,
                               accounts=accounts)
    transports.extend(zalo.transports)
    senders = [
        Sender(
            sessions=app.sessions, transport=t, clock=clock, quiet=quiet,
            lease_seconds=settings.outbox_lease_seconds, concurrency=settings.sender_concurrency,
            after_sent={"reminder": partial(record_reminder_sent, policy=app.conversation.services.reminders)},
            checks={"help": HelpCheck(app.catalog)}, limiter=limiters.get(t.channel),
        )
        for t in transports
    ]
    producers = Producers(
        sessions=app.sessions, clock=clock, lessons=app.lessons, catalog=app.catalog,
        policy=app.conversation.services.reminders,
        on_queued=lambda: [s.wake() for s in senders],
        outbox_retention=timedelta(days=settings.outbox_retention_days),
        deadlines=parse_deadlines(settings.report_deadlines), remind_days=settings.report_remind_days,
        files_dir=app.conversation.services.files_dir,
        report_signer=(settings.report_signer_title, settings.report_signer_name),
    )
    scheduler = build_scheduler(producers, zone=settings.zone)
    jobs = JobsInFlight(scheduler)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    web = None
    receiving: list[asyncio.Task] = []  # type: ignore[type-arg]
    if role in (ProcessRole.ALL, ProcessRole.WEB):
        hooked = [t for t in telegrams if t.uses_webhook]
        if zalo.needs_web or hooked or role == ProcessRole.WEB or public is not None:
            channels = [*hooked, *zalo]
            web = await start_web(create_web_app(channels=channels, media=zalo.media,  # type: ignore[list-item]
                                                 sessions=app.sessions, dashboard=dashboard(app)),
                                  host=settings.web_host, port=settings.web_port)
        else:  # polling on one machine: the dashboard alone, on this machine only
            web = await start_dashboard(app, sessions=app.sessions)
        receiving.extend(asyncio.create_task(t.run(), name=f"telegram-{t.channel}") for t in telegrams)
        if zalo:
            receiving.append(asyncio.create_task(zalo.run(), name="zalo"))
    if role == ProcessRole.WORKER:  # /healthz and /metrics: its sends, ticks and the worker lock
        web = await start_web(create_web_app(sessions=app.sessions), host=settings.web_host, port=settings.web_port)
    sending: list[asyncio.Task] = []  # type: ignore[type-arg]
    lock = worker_lock(settings.database_url) if role != ProcessRole.WEB else None

    async def lead() -> None:
        """Send and schedule once this process holds the worker lock (one active worker per
        database; a standby waits here); raises LeadershipLost if the lock is lost."""
        assert lock is not None
        await lock.acquire()
        metrics.WORKER_ACTIVE.set(1)
        log.info("worker active: sending and scheduling")
        sending.extend(asyncio.create_task(s.run(), name=f"sender-{s.channel}") for s in senders)
        scheduler.start()
        await lock.held()

    # Everything built so far (modules, the lesson library, catalogue, clients) lives as long as
    # the process: out of the collector's sight, a full collection in the middle of a reminder
    # wave no longer walks it (a 200-300 ms stall of the loop at 500,000 residents: docs/benchmarks.md).
    gc.freeze()
    leading = [asyncio.create_task(lead(), name="worker-lock")] if lock is not None else []
    try:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *receiving, *leading], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        # Start no scheduled job; stop receiving (answers in hand are finished); let a running job
        # end; then stop sending (sends in flight finish, waiting rows go back to pending); close.
        if scheduler.running:
            scheduler.pause()
        for telegram in telegrams:
            await telegram.stop()
        await zalo.stop()
        await asyncio.gather(*receiving, return_exceptions=True)
        await stop_scheduler(scheduler, jobs)
        for task in leading:
            task.cancel()
        await asyncio.gather(*leading, return_exceptions=True)
        for sender in senders:
            sender.stop()
        await asyncio.gather(*sending, return_exceptions=True)
        if lock is not None:
            await lock.release()
            metrics.WORKER_ACTIVE.set(0)
        for telegram in telegrams:
            await telegram.close()
        await zalo.close()
        if web is not None:
            await web.cleanup()
        await app.close()
