"""Reminders: a gentle nudge to a resident who left a lesson unfinished.

A resident is reminded when all hold: reminders are on; they have a lesson in progress;
they have been inactive for ``inactive_days``; it is their chosen hour (or up to
``catch_up`` later, so a restart at 19:20 still sends the 19:00 reminder); they were not
reminded today; and fewer than ``max_unanswered`` reminders went unanswered (any message
from them resets the count, so reminders pause until they come back).

Who is read: ``person.next_reminder_at``, indexed, is when the planner looks at a person next.
:func:`next_reminder_at` is its one definition — the first moment the rules of time (inactive
long enough, their hour's window, not twice a day) allow, or NULL when reminders are off or
paused until they write — and :func:`schedule_reminder` applies it whenever the person is
saved after a message (activity, the reminder settings, consent: ``bot.core.conversation``) or
an in-person lesson. A tick reads only the rows whose moment has come, checks every rule in
SQL for them, queues the due and moves each row read to its hour's next window (or NULL: no
lesson in progress, reminders off, the unanswered limit reached) in the same short
transaction; sending a reminder that reaches the limit sets NULL too. The value may be early
(a row read too soon is moved on), never late — except after a change of
``REMINDER_INACTIVE_DAYS`` or ``REMINDER_MAX_UNANSWERED``, which applies to a resident from
their next message or reminder.

Planning is idempotent (one dedupe key per person and local day), so it can run on every
tick and after any restart. A reminder is due when it is planned; the sender keeps the quiet
hours (a catch-up planned at 21:30 goes out at the end of them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, false, literal, null, or_, tuple_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog
from bot.core.messages import Option
from bot.curriculum import LessonLibrary
from bot.delivery.transport import OutboundMessage
from storage import outbox
from storage.db import SessionFactory
from storage.models import Identity, LessonProgress, Person, ProgressStatus
from storage.planner import fixed
from storage.reach import reachable_accounts
from storage.types import UTCDateTime


@dataclass(frozen=True)
class ReminderPolicy:
    zone: ZoneInfo
    inactive_days: int = 2
    max_unanswered: int = 3
    catch_up: timedelta = timedelta(hours=2)


# Residents planned per transaction: the event loop answers others between two batches, and the
# longest batch of the 19:00 wave must stay under 100 ms (docs/benchmarks.md).
BATCH = 500
STEP = 100  # reminders built, then inserted, between two turns of the event loop within a batch
DEDUPE_PREFIX = "reminder:"


def due_hours(local_now: datetime, policy: ReminderPolicy) -> list[int]:
    """The reminder hours whose window — from that hour today to ``catch_up`` later — holds
    ``local_now`` (18 and 19 at 19:05 with the default two hours)."""
    today = local_now.date()
    return [hour for hour in range(24)
            if (at := datetime.combine(today, time(hour), policy.zone)) <= local_now < at + policy.catch_up]


def next_window(hour: int, after: datetime, policy: ReminderPolicy) -> datetime:
    """The start of the first window of ``hour`` later than ``after``: today's if it is still to
    come, else tomorrow's (UTC)."""
    day = after.astimezone(policy.zone).date()
    start = datetime.combine(day, time(hour), policy.zone)
    if start <= after:
        start = datetime.combine(day + timedelta(days=1), time(hour), policy.zone)
    return start.astimezone(UTC)


def _first_in_window(hour: int, earliest: datetime, policy: ReminderPolicy) -> datetime:
    """``earliest`` when its day's window of ``hour`` holds it (as :func:`due_hours` says), else
    the start of the next window of ``hour``."""
    local = earliest.astimezone(policy.zone)
    start = datetime.combine(local.date(), time(hour), policy.zone)
    if start <= local < start + policy.catch_up:
        return earliest.astimezone(UTC)
    return next_window(hour, earliest, policy)


def next_reminder_at(person: Person, policy: ReminderPolicy) -> datetime | None:
    """When the planner should look at ``person`` next: the first moment their hour's window
    holds once they have been inactive ``inactive_days`` and the local day of their last
    reminder is over; None when no reminder can fall due before they write again (reminders
    off, erased, no consent, or the unanswered limit reached). Whether a lesson is in progress
    is left to the planner (it reads it with the rest)."""
    if (not person.reminders_on or person.deleted_at is not None or person.consent_at is None
            or person.last_active_at is None or person.reminders_unanswered >= policy.max_unanswered):
        return None
    earliest = person.last_active_at + timedelta(days=policy.inactive_days)
    if person.last_reminded_at is not None:
        reminded_on = person.last_reminded_at.astimezone(policy.zone).date()
        earliest = max(earliest, datetime.combine(reminded_on + timedelta(days=1), time(0), policy.zone))
    return _first_in_window(person.reminder_hour, earliest, policy)


def schedule_reminder(person: Person, policy: ReminderPolicy) -> None:
    """Set ``person.next_reminder_at`` from their activity, settings and last reminder (call it
    after changing any of them; the caller saves the person). Left untouched when it does not
    move, so that a person whose moment stays is not written again."""
    moment = next_reminder_at(person, policy)
    if moment != person.next_reminder_at:
        person.next_reminder_at = moment


def _may_be_reminded(policy: ReminderPolicy) -> list[Any]:
    """The rules of :func:`next_reminder_at` that are not about time, in SQL."""
    return [
        col(Person.reminders_on).is_(True),
        col(Person.deleted_at).is_(None),
        col(Person.consent_at).is_not(None),
        Person.reminders_unanswered < policy.max_unanswered,
    ]


async def plan_reminders(
    sessions: SessionFactory, *, now: datetime, policy: ReminderPolicy, lessons: LessonLibrary, catalog: Catalog,
    batch: int = BATCH,
) -> int:
    """Queue the reminders that are due; returns how many rows were added.

    Reads only the people whose ``next_reminder_at`` has come, through ``ix_person_next_reminder``
    in its order (a tick when nobody's moment has come reads one index entry), ``batch`` at a
    time, each batch in a transaction of its own, handing the event loop back between batches.
    For each person read the database says whether every rule holds (their hour's window holds
    now, inactive long enough, reminders on, under the unanswered limit, a lesson in progress,
    not reminded today); the due are queued — one a local day: the dedupe key skips a second —
    and the same transaction moves everyone read to their hour's next window — or NULL when
    nothing but their own message could make a reminder due — with one UPDATE over the batch
    (a bind per hour of the day, none per person). Whoever was queued today has moved on, so
    the read no longer probes the outbox for each person: on PostgreSQL, a prepared statement's
    generic plan, made while the outbox was empty, scanned it for every person (3 s a batch)."""
    local_now = now.astimezone(policy.zone)
    today = local_now.date()
    hours = due_hours(local_now, policy)
    start_of_day = datetime.combine(today, time(0), policy.zone)
    # A scalar subquery, not EXISTS: PostgreSQL may answer an EXISTS by hashing every lesson row
    # once per statement instead of a probe per person.
    unfinished = (
        select(LessonProgress.lesson_id)
        .where(col(LessonProgress.person_id) == Person.id, LessonProgress.status == ProgressStatus.IN_PROGRESS)
        .order_by(col(LessonProgress.started_at), col(LessonProgress.id)).limit(fixed(1))
        .correlate(Person).scalar_subquery()
    )
    may = _may_be_reminded(policy)
    due = and_(
        *may,
        col(Person.reminder_hour).in_(hours) if hours else false(),
        col(Person.last_active_at) <= now - timedelta(days=policy.inactive_days),
        or_(col(Person.last_reminded_at).is_(None), col(Person.last_reminded_at) < start_of_day),
    )
    # Everyone read moves on to the next window of their hour, or to NULL: a bind per hour of the day.
    moved_to = case(
        (and_(*may, unfinished.is_not(None)),
         case({hour: literal(next_window(hour, now, policy), UTCDateTime) for hour in range(24)},
              value=Person.reminder_hour, else_=None)),
        else_=None,
    )
    order = (col(Person.next_reminder_at), col(Person.id))
    key = tuple_(*order)
    queued = 0
    last: tuple[datetime, int] | None = None
    while True:
        async with sessions() as session, session.begin():
            came = [col(Person.next_reminder_at) <= now]
            if last is not None:  # the rows read before were moved on; this keeps it so
                came.append(key > tuple_(literal(last[0], UTCDateTime), last[1]))
            people = (await session.exec(
                select(Person.id, Person.next_reminder_at, Person.display_name, Person.locale, Person.group_id,
                       unfinished, case((due, True), else_=False))
                .where(*came).order_by(*order)
                .limit(fixed(batch))  # storage.planner: not a generic plan's guess
            )).all()
            if not people:
                break
            last = (people[-1][1], people[-1][0])
            # The batch again, as the same walk of the index stopped after as many rows (a bound on
            # the moment alone would walk every row due at 19:00 for each batch of the wave) and
            # never past the last row read (one that left meanwhile is not replaced by one unread).
            batch_ids = select(Person.id).where(*came).order_by(*order).limit(fixed(batch))
            in_batch = [col(Person.id).in_(batch_ids), *came, key <= tuple_(literal(last[0], UTCDateTime), last[1])]
            queued += await _queue(session, people, now=now, today=today.isoformat(), lessons=lessons,
                                   catalog=catalog, batch_ids=batch_ids)
            await session.exec(update(Person).where(*in_batch).values(next_reminder_at=moved_to))  # type: ignore[call-overload]
        if len(people) < batch:
            break
        await asyncio.sleep(0)  # the loop answers residents between two batches
    return queued


async def _queue(session: AsyncSession, people: Any, *, now: datetime, today: str, lessons: LessonLibrary,
                 catalog: Catalog, batch_ids: Any) -> int:
    """The outbox rows of the due among ``people`` who can be reached and whose lesson exists.

    Built ``STEP`` at a time with the event loop handed back between two — before the first
    write, so no lock is held meanwhile — then inserted ``STEP`` rows per statement."""
    if not any(is_due and lesson_id is not None for *_, lesson_id, is_due in people):
        return 0
    accounts = await reachable_accounts(session, person_ids=batch_ids)
    rows = []
    for person_id, _, name, locale, group_id, lesson_id, is_due in people:
        account, lesson = accounts.get(person_id), lessons.get(lesson_id) if lesson_id is not None else None
        if not is_due or account is None or lesson is None:
            continue
        message = reminder_message(catalog, name=name, locale=locale, title=lesson.title)
        rows.append(outbox.outbox_row(
            kind="reminder", identity_id=account.identity_id, channel=account.channel,
            payload=message.to_payload(), due_at=now,
            dedupe_key=f"{DEDUPE_PREFIX}{person_id}:{today}", now=now, group_id=group_id,
        ))
        if len(rows) % STEP == 0:
            await asyncio.sleep(0)
    queued = 0
    for start in range(0, len(rows), STEP):
        queued += await outbox.enqueue(session, rows[start:start + STEP])
    return queued


def reminder_message(catalog: Catalog, *, name: str | None, locale: str | None, title: str) -> OutboundMessage:
    # Catalog.text falls back to the default language as a translator does.
    return OutboundMessage(text=catalog.text("reminders.message", locale, name=name or "", title=title),
                           options=_options(catalog, locale))


@lru_cache(maxsize=16)
def _options(catalog: Catalog, locale: str | None) -> tuple[Option, ...]:
    """The reminder's two buttons in ``locale``: the same for every reminder of a wave."""
    t = catalog.translator(locale)
    return (Option(t("menu.continue"), "next"), Option(t("reminders.stop_button"), "reminders:off"))


async def record_reminder_sent(session: AsyncSession, row: outbox.Claimed, now: datetime, *,
                               policy: ReminderPolicy) -> None:
    """After a reminder went out: count it as unanswered until the resident writes back; the one
    that reaches the limit leaves nothing for the planner to read until then."""
    person_id = select(Identity.person_id).where(Identity.id == row.identity_id).scalar_subquery()
    await session.exec(  # type: ignore[call-overload]
        update(Person)
        .where(Person.id == person_id)
        .values(reminders_unanswered=Person.reminders_unanswered + 1, last_reminded_at=now,
                next_reminder_at=case((Person.reminders_unanswered + 1 >= policy.max_unanswered, null()),
                                      else_=Person.next_reminder_at))
    )
