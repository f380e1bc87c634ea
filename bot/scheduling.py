"""APScheduler 3.11, in memory: the clock that turns due work into outbox rows.

The database holds all state; jobs are idempotent (dedupe keys), so a restart, a missed
tick or a tick run twice loses and duplicates nothing. APScheduler's persistent job stores
are not used: they block the event loop and cannot be shared between processes.

Jobs: ``outbox-tick`` every few seconds queues due broadcasts and plans reminders;
``leader-digest`` every Monday at 08:00 (``TIMEZONE``) queues the leaders' weekly digest, and
the tick catches it up once after a restart within a day of that time; ``outbox-prune``
every hour deletes outbox rows finished longer ago than the retention (a broadcast's counted
into its kept outcomes first), forgets handled events older than theirs and deletes the
dashboard's photos of broadcast drafts never sent (``bot.media``); ``report-deadlines`` every day at 08:00 queues the
ward admins' report-deadline reminders (``bot.deadlines``) on their days, and the tick catches
it up once a day after a restart.

Producers set ``due_at`` to the intended time; the senders keep the quiet hours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncio

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot import metrics
from bot.broadcasting import message_for
from bot.core.conversation import Clock
from bot.core.i18n import Catalog
from bot.curriculum import LessonLibrary
from bot.deadlines import REMIND_HOUR, Deadline, remind_deadlines
from bot.digest import DIGEST_HOUR, digest_due, plan_digests, week_of
from bot.media import prune_draft_photos
from bot.reminders import ReminderPolicy, plan_reminders
from storage import outbox, web_access
from storage.broadcasts import due_broadcasts, queue_broadcast
from storage.db import SessionFactory
from storage.events import prune_handled

log = logging.getLogger(__name__)

# Late jobs still run, once: no misfire window (the default of 1 s silently skips a job that
# is late because the loop was busy), coalesce missed runs, never two runs of one job at once.
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
# Zalo retries a webhook for about an hour and Telegram keeps an update for 24 hours: an event
# id older than this is never delivered again.
HANDLED_EVENTS_KEPT = timedelta(days=7)
PRUNE_BATCH = 500  # outbox rows per transaction, so pruning never holds the write lock long
PRUNE_EVERY = timedelta(hours=1)


@dataclass
class Producers:
    """What the jobs need; built by the composition root."""

    sessions: SessionFactory
    clock: Clock
    policy: ReminderPolicy
    lessons: LessonLibrary
    catalog: Catalog
    on_queued: Callable[[], None] = lambda: None
    digest_week: str | None = None  # the ISO week whose digest this process has planned
    outbox_retention: timedelta = timedelta(days=30)  # OUTBOX_RETENTION_DAYS
    events_retention: timedelta = HANDLED_EVENTS_KEPT
    deadlines: list[Deadline] = field(default_factory=list)  # REPORT_DEADLINES (none: no reminders)
    remind_days: int = 7  # REPORT_REMIND_DAYS
    files_dir: Path | None = None  # where the reminders' documents are written (needed for any)
    report_signer: tuple[str, str] = ("CHỦ TỊCH", "")  # REPORT_SIGNER_TITLE, REPORT_SIGNER_NAME
    deadline_day: date | None = None  # the local day whose deadline reminders this process has planned


async def tick(producers: Producers) -> dict[str, int]:
    """Queue due broadcasts and today's due reminders; wake the senders if anything came."""
    with metrics.TICK_SECONDS.time():
        return await _tick(producers)


async def _tick(producers: Producers) -> dict[str, int]:
    now = producers.clock.now()
    counts = {"broadcast_rows": 0, "reminders": 0}
    async with producers.sessions() as session, session.begin():
        for broadcast in await due_broadcasts(session, now=now):
            assert broadcast.id is not None
            counts["broadcast_rows"] += await queue_broadcast(
                session, broadcast_id=broadcast.id, now=now, message=message_for(producers.catalog)) or 0
    counts["reminders"] = await plan_reminders(  # a transaction per batch
        producers.sessions, now=now, policy=producers.policy, lessons=producers.lessons, catalog=producers.catalog
    )
    zone = producers.policy.zone
    if producers.digest_week != week_of(now, zone) and digest_due(now, zone):
        counts["digests"] = await send_digests(producers, wake=False)
    local = now.astimezone(zone)
    if producers.deadlines and producers.deadline_day != local.date() and local.hour >= REMIND_HOUR:
        counts["deadlines"] = await send_deadline_reminders(producers, wake=False)
    if any(counts.values()):
        log.info("queued %s broadcast rows and %s reminders", counts["broadcast_rows"], counts["reminders"])
        producers.on_queued()
    return counts


async def send_digests(producers: Producers, *, wake: bool = True) -> int:
    """Queue this week's leader digests (idempotent: one per leader and ISO week)."""
    now = producers.clock.now()
    zone = producers.policy.zone
    async with producers.sessions() as session, session.begin():
        queued = await plan_digests(session, now=now, zone=zone, lessons=producers.lessons,
                                    catalog=producers.catalog)
    producers.digest_week = week_of(now, zone)
    if queued:
        log.info("queued %s leader digests", queued)
        if wake:
            producers.on_queued()
    return queued


async def send_deadline_reminders(producers: Producers, *, wake: bool = True) -> int:
    """Queue today's report-deadline reminders (idempotent: one per admin and deadline)."""
    if not producers.deadlines or producers.files_dir is None:
        return 0
    now = producers.clock.now()
    zone = producers.policy.zone
    queued = await remind_deadlines(sessions=producers.sessions, now=now, zone=zone, catalog=producers.catalog,
                                    lessons=producers.lessons, deadlines=producers.deadlines,
                                    days=producers.remind_days, files_dir=producers.files_dir,
                                    signer=producers.report_signer)
    producers.deadline_day = now.astimezone(zone).date()
    if queued and wake:
        producers.on_queued()
    return queued


async def prune(producers: Producers) -> dict[str, int]:
    """Retention: delete outbox rows finished before the retention (never less than
    ``outbox.KEEP_AT_LEAST``), in batches of ``PRUNE_BATCH``, one short transaction each, a
    broadcast's rows counted into its kept outcomes first (``outbox.prune_finished``: the
    delivery reports do not change), and delete handled events older than theirs; the web
    dashboard's sign-in rows no longer needed (``storage.web_access.prune``); with a files
    folder, the dashboard's photos of drafts never sent (``bot.media.prune_draft_photos``).
    Idempotent."""
    now = producers.clock.now()
    before = now - max(producers.outbox_retention, outbox.KEEP_AT_LEAST)
    deleted = 0
    while True:
        async with producers.sessions() as session, session.begin():
            batch = await outbox.prune_finished(session, before=before, limit=PRUNE_BATCH)
        deleted += batch
        if batch < PRUNE_BATCH:
            break
    async with producers.sessions() as session, session.begin():
        events = await prune_handled(session, before=now - producers.events_retention)
    async with producers.sessions() as session, session.begin():
        web = await web_access.prune(session, now=now)  # the dashboard's attempts, idle sessions, old links
    if deleted or events or web:
        log.info("retention: deleted %s finished outbox rows, forgot %s handled events and %s web sign-in rows",
                 deleted, events, web)
    done = {"outbox_rows": deleted, "events": events, "web_rows": web}
    if producers.files_dir is not None:  # the dashboard's photos of drafts never sent (bot.media)
        done["draft_photos"] = await prune_draft_photos(producers.sessions, producers.files_dir, now=now)
        if done["draft_photos"]:
            log.info("retention: deleted %s photos of broadcast drafts never sent", done["draft_photos"])
    return done


class JobsInFlight:
    """Counts the scheduler's jobs running now (its public job events), so a stopping process
    lets a tick in the middle of a reminder wave end instead of cutting it off."""

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        scheduler.add_listener(self._started, EVENT_JOB_SUBMITTED)
        scheduler.add_listener(self._ended, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def _started(self, _event: JobEvent) -> None:
        self.running += 1
        self._idle.clear()

    def _ended(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            return  # never started
        self.running = max(0, self.running - 1)
        if not self.running:
            self._idle.set()

    async def drained(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until no job runs; False if one still did."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def stop_scheduler(scheduler: AsyncIOScheduler, jobs: JobsInFlight, *, timeout: float = 15.0) -> None:
    """Start no job any more, let the running ones end (each is idempotent: one cut off by the
    timeout rolls back and is done again by the next worker), then shut the scheduler down."""
    if not scheduler.running:
        return
    scheduler.pause()
    if not await jobs.drained(timeout):
        log.warning("a scheduled job was still running after %.0f s; it is stopped and will run again", timeout)
    scheduler.shutdown(wait=False)


def build_scheduler(producers: Producers, *, zone: ZoneInfo, tick_seconds: float = 5.0) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=zone, job_defaults=JOB_DEFAULTS)
    scheduler.add_job(
        tick, "interval", seconds=tick_seconds, id="outbox-tick", args=[producers],
        # The first tick at once, on APScheduler's own clock (the wall clock), whatever clock the jobs use.
        next_run_time=DateTrigger(timezone=zone).run_date, replace_existing=True,
    )
    scheduler.add_job(
        send_digests, CronTrigger(day_of_week="mon", hour=DIGEST_HOUR, minute=0, timezone=zone),
        id="leader-digest", args=[producers], replace_existing=True,
    )
    scheduler.add_job(
        send_deadline_reminders, CronTrigger(hour=REMIND_HOUR, minute=0, timezone=zone),
        id="report-deadlines", args=[producers], replace_existing=True,
    )
    scheduler.add_job(
        prune, "interval", seconds=PRUNE_EVERY.total_seconds(), id="outbox-prune", args=[producers],
        replace_existing=True,
    )
    return scheduler
