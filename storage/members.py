"""What a leader or a ward admin needs about the people of a group, beyond the statistics
of ``storage.stats``: one member's lessons, who stalled inside a lesson today, undoing an
assisted completion, and the ward-wide lists of the admin (groups without a leader, open
questions, people who blocked the bot).

Every count is an SQL aggregate over joins: no query binds one parameter per person.
Keyword-only functions; none commits (the caller owns the transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    AuditLog,
    HelpRequest,
    Identity,
    LessonProgress,
    Person,
    ProgressStatus,
    ResidentGroup,
    Role,
    RoleKind,
    Ward,
)
from storage.planner import fixed
from storage.reach import reachable, sent_since

ASSIST_ACTION = "leader.assist"  # the audit action of an assisted completion (its ``before`` state)
# People looked up per query when a list of people is in hand (a group's behind members):
# far below the ~32,700 bind parameters a statement may carry.
LOOKUP_CHUNK = 1000


async def member_of(session: AsyncSession, *, group_id: int, person_id: int) -> Person | None:
    """A named (not erased) person whose group it is, or None."""
    person = await session.get(Person, person_id)
    if person is None or person.group_id != group_id or person.deleted_at is not None:
        return None
    return person


async def lessons_of(session: AsyncSession, *, person_id: int) -> dict[str, LessonProgress]:
    """One person's progress rows by lesson id."""
    query = select(LessonProgress).where(LessonProgress.person_id == person_id)
    return {row.lesson_id: row for row in (await session.exec(query)).all()}


async def stalled_since(
    session: AsyncSession, *, group_id: int, since: datetime, lesson_ids: Sequence[str]
) -> set[int]:
    """Named members of the group who opened a lesson at or after ``since`` (the start of the
    local day) and have not finished it."""
    query = (
        select(LessonProgress.person_id)
        .join(Person, col(Person.id) == LessonProgress.person_id)
        .where(Person.group_id == group_id, col(Person.deleted_at).is_(None),
               LessonProgress.status == ProgressStatus.IN_PROGRESS,
               col(LessonProgress.updated_at) >= since,
               col(LessonProgress.lesson_id).in_(list(lesson_ids)))
        .distinct()
    )
    return set((await session.exec(query)).all())


def before_assist(row: LessonProgress | None) -> dict[str, Any] | None:
    """What an assisted completion replaces (kept in the audit details, so it can be undone):
    None when the resident had no progress on the lesson."""
    if row is None:
        return None
    return {"status": str(row.status), "lesson_version": row.lesson_version,
            "completed_at": row.completed_at.isoformat() if row.completed_at else None,
            "updated_at": row.updated_at.isoformat() if row.updated_at else None}


async def undo_assist(session: AsyncSession, *, row: LessonProgress) -> str:
    """Put an assisted completion back to what it was before: the row is deleted when the
    resident had no progress on the lesson, else it is in progress again as it was.

    The state before is read from the latest audit record of the completion; a completion
    recorded before it was kept there is judged from the row (never opened: deleted).
    Returns ``deleted`` or ``restored``."""
    target = f"person:{row.person_id}"
    records = (await session.exec(
        select(AuditLog).where(AuditLog.action == ASSIST_ACTION, AuditLog.target == target)
        .order_by(col(AuditLog.id).desc())
    )).all()
    record = next((r for r in records if (r.details or {}).get("lesson") == row.lesson_id), None)
    details = record.details if record is not None else {}
    if "before" in details:
        before = details["before"]
    else:
        before = None if row.attempts == 0 and row.card == 0 else {"lesson_version": row.lesson_version}
    if before is None:
        await session.exec(delete(LessonProgress).where(LessonProgress.id == row.id))  # type: ignore[call-overload]
        return "deleted"
    row.status = ProgressStatus.IN_PROGRESS
    row.assisted_by = None
    row.completed_at = None
    row.lesson_version = int(before.get("lesson_version") or row.lesson_version)
    if before.get("updated_at"):
        row.updated_at = datetime.fromisoformat(before["updated_at"])
    session.add(row)
    await session.flush()
    return "restored"


# -- the ward admin's lists -------------------------------------------------------------

@dataclass(frozen=True)
class GroupCount:
    group_id: int
    name: str
    count: int


async def groups_without_leader(session: AsyncSession, *, ward_id: int) -> Sequence[ResidentGroup]:
    """Groups of the ward that no (not erased) person leads, in code order."""
    led = (
        select(Role.id)
        .join(Person, col(Person.id) == Role.person_id)
        .where(Role.kind == RoleKind.LEADER, Role.group_id == ResidentGroup.id, col(Person.deleted_at).is_(None))
    )
    query = (select(ResidentGroup).where(ResidentGroup.ward_id == ward_id, ~exists(led))
             .order_by(col(ResidentGroup.code)))
    return (await session.exec(query)).all()


async def open_questions_per_group(session: AsyncSession, *, ward_id: int) -> list[GroupCount]:
    """Unanswered help requests of the ward, counted per group (groups with none left out)."""
    query = (
        select(ResidentGroup.id, ResidentGroup.name, func.count(col(HelpRequest.id)))
        .join(HelpRequest, col(HelpRequest.group_id) == ResidentGroup.id)
        .where(ResidentGroup.ward_id == ward_id, col(HelpRequest.answered_at).is_(None))
        .group_by(col(ResidentGroup.id), col(ResidentGroup.name), col(ResidentGroup.code))
        .order_by(col(ResidentGroup.code))
    )
    return [GroupCount(g, n, c) for g, n, c in (await session.exec(query)).all()]  # type: ignore[arg-type]


async def blocked_per_group(session: AsyncSession, *, ward_id: int) -> list[GroupCount]:
    """Named people of each group of the ward who blocked the bot: they have an account that
    is blocked and none that is not (groups with none left out)."""
    unblocked = select(Identity.id).where(Identity.person_id == Person.id, col(Identity.blocked_at).is_(None))
    blocked = select(Identity.id).where(Identity.person_id == Person.id, col(Identity.blocked_at).is_not(None))
    query = (
        select(ResidentGroup.id, ResidentGroup.name, func.count(col(Person.id)))
        .join(Person, col(Person.group_id) == ResidentGroup.id)
        .where(and_(ResidentGroup.ward_id == ward_id, col(Person.deleted_at).is_(None),
                    exists(blocked), ~exists(unblocked)))
        .group_by(col(ResidentGroup.id), col(ResidentGroup.name), col(ResidentGroup.code))
        .order_by(col(ResidentGroup.code))
    )
    return [GroupCount(g, n, c) for g, n, c in (await session.exec(query)).all()]  # type: ignore[arg-type]


async def open_questions(session: AsyncSession, *, ward_id: int, limit: int) -> Sequence[tuple[HelpRequest, str, str]]:
    """The ward's oldest unanswered help requests: (request, asker's name, group's name)."""
    query = (
        select(HelpRequest, Person.display_name, ResidentGroup.name)
        .join(ResidentGroup, col(ResidentGroup.id) == HelpRequest.group_id)
        .join(Person, col(Person.id) == HelpRequest.person_id)
        .where(ResidentGroup.ward_id == ward_id, col(HelpRequest.answered_at).is_(None))
        .order_by(col(HelpRequest.created_at), col(HelpRequest.id))
        .limit(fixed(limit))  # storage.planner: never a generic plan's guess
    )
    return [(r, n or "", g) for r, n, g in (await session.exec(query)).all()]  # type: ignore[misc]


@dataclass(frozen=True)
class NudgeTarget:
    """A member a nudge may go to: who, through which account (None: no unblocked account
    or reminders turned off), and whether a message of this kind went to them lately."""

    person: Person
    identity: Identity | None
    recent: bool


async def nudge_targets(
    session: AsyncSession, *, person_ids: Sequence[int], kind: str, since: datetime
) -> dict[int, NudgeTarget]:
    """For each named, not erased person of ``person_ids``: their :class:`NudgeTarget`.
    Looked up ``LOOKUP_CHUNK`` people per query, so a group of any size never binds one
    parameter per person in one statement."""
    found: dict[int, NudgeTarget] = {}
    ids = list(dict.fromkeys(person_ids))
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        people = (await session.exec(
            select(Person).where(col(Person.id).in_(chunk), col(Person.deleted_at).is_(None))
        )).all()
        recent = await sent_since(session, kind=kind, person_ids=chunk, since=since)
        accounts = await reachable(session, person_ids=[p.id for p in people if p.reminders_on and p.id is not None])
        for person in people:
            assert person.id is not None
            found[person.id] = NudgeTarget(person, accounts.get(person.id), person.id in recent)
    return found


@dataclass(frozen=True)
class LeaderRole:
    """A leader role found by account and group, with what telling its holder needs."""

    role: Role
    person: Person
    group: ResidentGroup
    ward: Ward


async def leader_role(session: AsyncSession, *, channel: str, external_id: str, group_code: str) -> LeaderRole | str:
    """The leader role of the person behind a channel account over the group ``group_code``;
    or why there is none: ``group_unknown``, ``account_unknown`` or ``not_leader``."""
    group = (await session.exec(select(ResidentGroup).where(ResidentGroup.code == group_code))).first()
    if group is None or group.id is None:
        return "group_unknown"
    identity = (await session.exec(
        select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
    )).first()
    person = await session.get(Person, identity.person_id) if identity and identity.person_id else None
    if person is None or person.deleted_at is not None:
        return "account_unknown"
    role = (await session.exec(select(Role).where(
        Role.person_id == person.id, Role.kind == RoleKind.LEADER, Role.group_id == group.id))).first()
    ward = await session.get(Ward, group.ward_id)
    if role is None or ward is None:
        return "not_leader"
    return LeaderRole(role, person, group, ward)


async def lessons_of_group(
    session: AsyncSession, *, group_id: int, lesson_ids: Sequence[str]
) -> dict[int, dict[str, LessonProgress]]:
    """Every named member's progress rows on ``lesson_ids``: person id → lesson id → row
    (:func:`lessons_of` for a whole group, in one query; the web dashboard's group page)."""
    if not lesson_ids:
        return {}
    rows = (await session.exec(
        select(LessonProgress).join(Person, col(Person.id) == LessonProgress.person_id)
        .where(Person.group_id == group_id, col(Person.deleted_at).is_(None),
               col(LessonProgress.lesson_id).in_(sorted(set(lesson_ids))))
    )).all()
    found: dict[int, dict[str, LessonProgress]] = {}
    for row in rows:
        found.setdefault(row.person_id, {})[row.lesson_id] = row
    return found
