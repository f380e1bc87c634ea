"""What a leader (or an admin of the ward) does to a group's members, written once for the chat
(``handlers.leader``, ``handlers.assisted``) and the web dashboard (``bot.dashboard.groups``):
who is behind, the nudge, recording an assisted completion and undoing one.

Each function works inside the caller's transaction and writes the audit row itself, so the
chat and the page leave the same trace. Authorisation stays with the caller (asked of the
database when the action runs); :func:`may_undo` is the one rule for undoing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog
from bot.core.messages import Option
from bot.curriculum import LessonLibrary
from bot.delivery.transport import OutboundMessage
from bot.leading import is_behind
from bot.reminders import ReminderPolicy, schedule_reminder
from storage import audit
from storage.members import before_assist, nudge_targets, stalled_since, undo_assist
from storage.models import LessonProgress, Person, ProgressStatus, ResidentGroup
from storage.outbox import enqueue, outbox_row
from storage.roles import administers, leads
from storage.stats import MemberProgress, members_progress

NUDGE_EVERY = timedelta(days=3)  # at most one nudge per resident in this time


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The start of ``now``'s day in the ward's time."""
    return now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


async def behind(
    session: AsyncSession, *, group_id: int, viewer_id: int | None, lessons: LessonLibrary, zone: ZoneInfo,
    now: datetime, members: Sequence[MemberProgress] | None = None,
) -> tuple[list[MemberProgress], list[MemberProgress]]:
    """Who needs a nudge, leaving out the person looking (a leader is often a member too):
    (not active for ``BEHIND_AFTER`` and not finished, stalled inside a lesson today)."""
    programme = lessons.curriculum_at(now, zone)  # "học xong" counts against the programme of the day
    if members is None or len(programme) != len(lessons):  # a lesson not yet published: count without it
        members = await members_progress(session, group_id=group_id, lesson_ids=programme)
    total = len(programme)
    idle = [m for m in members if m.person_id != viewer_id and is_behind(m, total=total, now=now)]
    stalled_ids = await stalled_since(session, group_id=group_id, since=day_start(now, zone),
                                      lesson_ids=[lesson.id for lesson in lessons])
    idle_ids = {m.person_id for m in idle}
    stalled = [m for m in members if m.person_id in stalled_ids and m.person_id not in idle_ids
               and m.person_id != viewer_id]
    return idle, stalled


@dataclass(frozen=True)
class Nudged:
    """What a nudge did: messages queued, people nudged in the last ``NUDGE_EVERY`` (skipped),
    people the bot cannot reach (no account, reminders off)."""

    sent: int
    recent: int
    unreachable: int


async def nudge(
    session: AsyncSession, *, group: ResidentGroup, sender: Person, lessons: LessonLibrary, zone: ZoneInfo,
    catalog: Catalog, now: datetime, only_id: int | None = None, as_admin: bool = False,
) -> Nudged:
    """A kind reminder to every member who is behind (or to the member ``only_id``), through
    the outbox (due now; the sender keeps the quiet hours), at most once per resident every
    ``NUDGE_EVERY`` and once a day by its dedupe key: pressing twice queues nothing more.
    The message carries the sender's name (``about_person_id``). Audited like the chat."""
    assert group.id is not None and sender.id is not None
    total = len(lessons.curriculum_at(now, zone))
    members = await members_progress(session, group_id=group.id, lesson_ids=[lesson.id for lesson in lessons])
    if only_id is not None:
        targets = [m for m in members if m.person_id == only_id and m.person_id != sender.id]
    else:
        idle, stalled = await behind(session, group_id=group.id, viewer_id=sender.id, lessons=lessons, zone=zone,
                                     now=now, members=members)
        targets = [*idle, *stalled]
    # Looked up in chunks (storage.members.nudge_targets): a big group binds no parameter per person.
    found = await nudge_targets(session, person_ids=[m.person_id for m in targets], kind="nudge",
                                since=now - NUDGE_EVERY)
    recent = {i for i, f in found.items() if f.recent}
    day = now.astimezone(zone).date().isoformat()
    key = "leader.nudge_message_ward" if as_admin else "leader.nudge_message"
    rows = []
    for member in targets:
        reach = found.get(member.person_id)
        if reach is None or reach.recent or reach.identity is None:
            continue
        person, identity = reach.person, reach.identity
        rt = catalog.translator(person.locale)
        message = OutboundMessage(
            text=rt(key, name=person.display_name or "", leader=sender.display_name or "",
                    group=group.name, done=member.completed, total=total),
            options=(Option(rt("menu.continue"), "next"), Option(rt("reminders.stop_button"), "reminders:off")),
        )
        rows.append(outbox_row(kind="nudge", identity_id=identity.id, channel=identity.channel,  # type: ignore[arg-type]
                               payload=message.to_payload(), due_at=now, dedupe_key=f"nudge:{person.id}:{day}",
                               now=now, about_person_id=sender.id, group_id=group.id))
    sent = await enqueue(session, rows) if rows else 0
    skipped_recent = sum(1 for m in targets if m.person_id in recent)
    unreachable = len(targets) - sent - skipped_recent
    action = "admin.nudge" if as_admin else ("leader.nudge_one" if only_id is not None else "leader.nudge")
    target = f"person:{only_id}" if only_id is not None else f"group:{group.id}"
    audit.record(session, actor=f"person:{sender.id}", action=action, target=target, now=now,
                 details={"queued": sent, "recent": skipped_recent, "unreachable": unreachable})
    return Nudged(sent, skipped_recent, unreachable)


async def record_assisted(
    session: AsyncSession, *, group: ResidentGroup, person: Person, lesson_id: str, lesson_version: int,
    leader_id: int, reminders: ReminderPolicy, now: datetime, row: LessonProgress | None,
) -> str:
    """Completed in person with ``leader_id``: a new completion marked as assisted. A lesson the
    resident completed themselves (``already_self``) or that is already recorded
    (``already_assisted``) stays as it is; else ``recorded`` (audited ``leader.assist`` with
    the row as it was, so it can be undone). ``row``: the person's progress on the lesson."""
    assert person.id is not None
    if row is not None and row.status == ProgressStatus.COMPLETED:
        return "already_self" if row.assisted_by is None else "already_assisted"
    before = before_assist(row)
    if row is None:
        row = LessonProgress(person_id=person.id, lesson_id=lesson_id, lesson_version=lesson_version,
                             started_at=now, updated_at=now)
    row.status = ProgressStatus.COMPLETED
    row.assisted_by = leader_id
    row.lesson_version = lesson_version
    row.completed_at = now
    row.updated_at = now
    session.add(row)
    person.last_active_at = now  # learning in person is activity: not "behind" today
    schedule_reminder(person, reminders)
    session.add(person)
    audit.record(session, actor=f"person:{leader_id}", action="leader.assist", target=f"person:{person.id}", now=now,
                 details={"group": group.id, "lesson": lesson_id, "before": before})
    return "recorded"


async def may_undo(session: AsyncSession, *, row: LessonProgress | None, actor_id: int, group: ResidentGroup) -> bool:
    """An assisted completion may be undone by the leader who recorded it while they lead the
    group, or by an admin of its ward; a completion the resident earned is never undone."""
    if group.id is None or row is None or row.status != ProgressStatus.COMPLETED or row.assisted_by is None:
        return False
    return (row.assisted_by == actor_id and await leads(session, person_id=actor_id, group_id=group.id)
            or await administers(session, person_id=actor_id, ward_id=group.ward_id))


async def undo_assisted(
    session: AsyncSession, *, group: ResidentGroup, person: Person, row: LessonProgress, actor_id: int, now: datetime,
) -> str:
    """Undo an assisted completion (the caller asked :func:`may_undo`): the row goes back to
    what it was (``storage.members.undo_assist``); audited ``leader.undo_assist``."""
    recorded_by = row.assisted_by
    lesson_id = row.lesson_id
    outcome = await undo_assist(session, row=row)
    audit.record(session, actor=f"person:{actor_id}", action="leader.undo_assist", target=f"person:{person.id}",
                 now=now, details={"group": group.id, "lesson": lesson_id, "recorded_by": recorded_by,
                                   "outcome": outcome})
    return outcome
