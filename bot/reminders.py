"""Reminders: a gentle nudge to a resident who left a lesson unfinished.

A resident is reminded when all hold: reminders are on; they have a lesson in progress;
they have been inactive for ``inactive_days``; it is their chosen hour (or up to
``catch_up`` later, so a restart at 19:20 still sends the 19:00 reminder); they were not
reminded today; and fewer than ``max_unanswered`` reminders went unanswered (any message
from them resets the count, so reminders pause until they come back).

Planning is idempotent (one dedupe key per person and local day), so it can run on every
tick and after any restart. A reminder is due when it is planned; the sender keeps the quiet
hours (a catch-up planned at 21:30 goes out at the end of them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, exists, literal, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog
from bot.curriculum import LessonLibrary
from bot.delivery.transport import OutboundMessage
from bot.core.messages import Option
from storage import outbox
from storage.planner import fixed
from storage.reach import reachable
from storage.models import Identity, LessonProgress, Outbox, Person, ProgressStatus


@dataclass(frozen=True)
class ReminderPolicy:
    zone: ZoneInfo
    inactive_days: int = 2
    max_unanswered: int = 3
    catch_up: timedelta = timedelta(hours=2)


BATCH = 1000  # residents planned per statement: the event loop answers others between two batches


def due_hours(local_now: datetime, policy: ReminderPolicy) -> list[int]:
    """The reminder hours whose window — from that hour today to ``catch_up`` later — holds
    ``local_now`` (18 and 19 at 19:05 with the default two hours)."""
    today = local_now.date()
    return [hour for hour in range(24)
            if (at := datetime.combine(today, time(hour), policy.zone)) <= local_now < at + policy.catch_up]


async def plan_reminders(
    session: AsyncSession, *, now: datetime, policy: ReminderPolicy, lessons: LessonLibrary, catalog: Catalog,
    batch: int = BATCH,
) -> int:
    """Queue today's reminders that are due; returns how many rows were added.

    The database picks who is due (their hour's window holds now, inactive long enough,
    reminders on, not over the unanswered limit, a lesson in progress, no reminder queued for
    them today), through the index of reminder hours: a tick at an hour nobody chose reads
    nothing. The due are read and queued ``batch`` at a time (by person id, each batch a short
    statement), handing the event loop back between batches."""
    local_now = now.astimezone(policy.zone)
    today = local_now.date()
    hours = due_hours(local_now, policy)
    if not hours:
        return 0
    start_of_day = datetime.combine(today, time(0), policy.zone)
    dedupe_prefix = "reminder:"
    planned_today = exists().where(
        Outbox.dedupe_key == literal(dedupe_prefix) + cast(Person.id, String) + literal(f":{today.isoformat()}"))
    unfinished = (
        select(LessonProgress.lesson_id)
        .where(col(LessonProgress.person_id) == Person.id, LessonProgress.status == ProgressStatus.IN_PROGRESS)
        .order_by(col(LessonProgress.started_at), col(LessonProgress.id)).limit(fixed(1))
        .correlate(Person).scalar_subquery()
    )
    due = [
        col(Person.reminders_on).is_(True),
        col(Person.deleted_at).is_(None),
        col(Person.consent_at).is_not(None),
        Person.reminders_unanswered < policy.max_unanswered,
        col(Person.last_active_at) <= now - timedelta(days=policy.inactive_days),
        or_(col(Person.last_reminded_at).is_(None), col(Person.last_reminded_at) < start_of_day),
        unfinished.is_not(None),
        ~planned_today,
    ]
    queued = 0
    for hour in hours:
        after = 0
        while True:
            people = (await session.exec(
                select(Person.id, Person.display_name, Person.locale, Person.group_id, unfinished)
                .where(Person.reminder_hour == hour, col(Person.id) > after, *due)
                .order_by(col(Person.id)).limit(fixed(batch))  # storage.planner: not a generic plan's guess
            )).all()
            if not people:
                break
            after = people[-1][0]
            accounts = await reachable(session, person_ids=[person_id for person_id, *_ in people])
            rows = []
            for person_id, name, locale, group_id, lesson_id in people:
                identity, lesson = accounts.get(person_id), lessons.get(lesson_id)
                if identity is None or lesson is None:
                    continue
                message = reminder_message(catalog, name=name, locale=locale, title=lesson.title)
                rows.append(outbox.outbox_row(
                    kind="reminder", identity_id=identity.id, channel=identity.channel,  # type: ignore[arg-type]
                    payload=message.to_payload(), due_at=now,
                    dedupe_key=f"{dedupe_prefix}{person_id}:{today.isoformat()}", now=now, group_id=group_id,
                ))
            queued += await outbox.enqueue(session, rows) if rows else 0
            if len(people) < batch:
                break
            await asyncio.sleep(0)  # the loop answers residents between two batches
    return queued


def reminder_message(catalog: Catalog, *, name: str | None, locale: str | None, title: str) -> OutboundMessage:
    t = catalog.translator(locale)
    return OutboundMessage(
        text=t("reminders.message", name=name or "", title=title),
        options=(Option(t("menu.continue"), "next"), Option(t("reminders.stop_button"), "reminders:off")),
    )


async def record_reminder_sent(session: AsyncSession, row: outbox.Claimed, now: datetime) -> None:
    """After a reminder went out: count it as unanswered until the resident writes back."""
    person_id = select(Identity.person_id).where(Identity.id == row.identity_id).scalar_subquery()
    await session.exec(  # type: ignore[call-overload]
        update(Person)
        .where(Person.id == person_id)
        .values(reminders_unanswered=Person.reminders_unanswered + 1, last_reminded_at=now)
    )
