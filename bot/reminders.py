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

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog
from bot.curriculum import LessonLibrary
from bot.delivery.transport import OutboundMessage
from bot.core.messages import Option
from storage import outbox
from storage.reach import reachable
from storage.models import Identity, LessonProgress, Person, ProgressStatus


@dataclass(frozen=True)
class ReminderPolicy:
    zone: ZoneInfo
    inactive_days: int = 2
    max_unanswered: int = 3
    catch_up: timedelta = timedelta(hours=2)


async def plan_reminders(
    session: AsyncSession, *, now: datetime, policy: ReminderPolicy, lessons: LessonLibrary, catalog: Catalog
) -> int:
    """Queue today's reminders that are due; returns how many rows were added."""
    local_now = now.astimezone(policy.zone)
    today = local_now.date()
    query = (
        select(Person, LessonProgress.lesson_id)
        .join(LessonProgress, col(LessonProgress.person_id) == Person.id)
        .where(
            col(Person.reminders_on).is_(True),
            col(Person.deleted_at).is_(None),
            col(Person.consent_at).is_not(None),
            Person.reminders_unanswered < policy.max_unanswered,
            col(Person.last_active_at) <= now - timedelta(days=policy.inactive_days),
            LessonProgress.status == ProgressStatus.IN_PROGRESS,
        )
        .order_by(col(Person.id), col(LessonProgress.started_at))
    )
    unfinished: dict[int, tuple[Person, str]] = {}
    for person, lesson_id in (await session.exec(query)).all():
        unfinished.setdefault(person.id, (person, lesson_id))  # type: ignore[arg-type]
    due: dict[int, tuple[Person, str]] = {}
    for person_id, (person, lesson_id) in unfinished.items():
        at = datetime.combine(today, datetime.min.time(), policy.zone).replace(hour=person.reminder_hour)
        if not at <= local_now < at + policy.catch_up:
            continue
        if person.last_reminded_at and person.last_reminded_at.astimezone(policy.zone).date() >= today:
            continue
        due[person_id] = (person, lesson_id)
    accounts = await reachable(session, person_ids=due)
    rows = []
    for person_id, (person, lesson_id) in due.items():
        identity = accounts.get(person_id)
        lesson = lessons.get(lesson_id)
        if identity is None or lesson is None:
            continue
        message = reminder_message(catalog, person=person, title=lesson.title)
        rows.append(outbox.outbox_row(
            kind="reminder", identity_id=identity.id, channel=identity.channel,  # type: ignore[arg-type]
            payload=message.to_payload(), due_at=now,
            dedupe_key=f"reminder:{person_id}:{today.isoformat()}", now=now, group_id=person.group_id,
        ))
    return await outbox.enqueue(session, rows) if rows else 0


def reminder_message(catalog: Catalog, *, person: Person, title: str) -> OutboundMessage:
    t = catalog.translator(person.locale)
    return OutboundMessage(
        text=t("reminders.message", name=person.display_name or "", title=title),
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
