"""Queries behind the ward's XLSX report and the audit log, beyond the group numbers of
``storage.stats`` (which every group number of the report comes from).

"As of ``end``" follows ``storage.stats.group_stats(until=end)`` exactly: a progress row
counts once it was started by ``end``, a completion once it was completed by ``end``, a
person once created by ``end``. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, false, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    AuditLog, Broadcast, LessonProgress, Outbox, OutboxStatus, Person, ProgressStatus, ResidentGroup, Ward,
)
from storage.outbox import REPORT_STATUSES, DeliveryReport, delivery_reports
from storage.planner import unindexed


class Mark(StrEnum):
    """Where a resident stands on one lesson."""

    SELF = "self"  # completed on their own
    ASSISTED = "assisted"  # completed in person with a leader, who recorded it
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class ResidentRow:
    person_id: int
    name: str
    group_code: str
    group_name: str
    last_active_at: datetime | None
    added_by_leader: bool
    letters: str = ""  # each lesson's mark as the database wrote it, "sb01-x,pb02-y" (compact to send)

    @cached_property
    def marks(self) -> dict[str, Mark]:
        """Lesson id → mark; absent = not started."""
        return _marks(self.letters)

    def count(self, mark: Mark) -> int:
        return sum(1 for m in self.marks.values() if m == mark)


@dataclass(frozen=True)
class AssistedRow:
    person_name: str | None  # None: the resident has since deleted their data
    group_code: str
    group_name: str
    lesson_id: str
    leader_name: str | None  # None: the leader has since deleted their data
    completed_at: datetime


async def find_ward(session: AsyncSession, *, code: str) -> Ward | None:
    return (await session.exec(select(Ward).where(Ward.code == code))).first()


# A progress row's mark as one letter, decided in SQL (see ``_marks``): the per-row work of
# 400,000 rows stays in the database, Python reads one short string per resident.
_LETTERS = {"s": Mark.SELF, "a": Mark.ASSISTED, "p": Mark.IN_PROGRESS}
_SEPARATOR = ","  # never in a lesson id (a slug: letters, digits and dashes)
PARTITION = 1_000  # residents read (and turned into rows on the event loop) at a time: a few ms each


def _marks(letters: str | None) -> dict[str, Mark]:
    """``"sb01-x,pb02-y"`` → ``{"b01-x": Mark.SELF, "b02-y": Mark.IN_PROGRESS}``."""
    if not letters:
        return {}
    return {item[1:]: _LETTERS[item[0]] for item in letters.split(_SEPARATOR)}


async def residents_progress(
    session: AsyncSession, *, ward_id: int, lesson_ids: Sequence[str], end: datetime
) -> list[ResidentRow]:
    """Every named resident of the ward's groups (anonymous tombstones left out) with their
    mark on each lesson as of ``end``, ordered by group code, then name. One query joined on
    the ward's groups (never a list of people's ids), one row per resident: the database
    decides each lesson's mark (``Mark``: completed by ``end``, by a leader or not; else in
    progress) and, for whoever was last active after ``end`` (or never), the last progress
    moment up to ``end``; the rows stream in."""
    named = and_(ResidentGroup.ward_id == ward_id, col(Person.deleted_at).is_(None),
                 col(Person.display_name).is_not(None), col(Person.created_at) <= end)
    # The ward's people in the table's order, each one's rows of the lessons from the covering
    # index (storage.planner: SQLite must use neither the group's index, which would make it sort
    # every progress row to group them, nor the lesson's); grouped by the person as they come.
    wanted = unindexed(LessonProgress.lesson_id).in_(sorted(set(lesson_ids))) if lesson_ids else false()
    rows_of = and_(col(LessonProgress.person_id) == Person.id, col(LessonProgress.started_at) <= end, wanted)
    completed = and_(LessonProgress.status == ProgressStatus.COMPLETED, col(LessonProgress.completed_at) <= end)
    letter = case((and_(completed, col(LessonProgress.assisted_by).is_(None)), "s"), (completed, "a"), else_="p")
    after_end = or_(col(Person.last_active_at).is_(None), col(Person.last_active_at) > end)

    def latest(moment: Any) -> Any:
        """The person's last ``moment`` up to ``end``, only when ``_last_active`` needs it."""
        return case((after_end, func.max(case((moment <= end, moment)))))

    query = (
        select(Person.id, Person.display_name, Person.last_active_at, Person.added_by, ResidentGroup.code,
               ResidentGroup.name,
               func.aggregate_strings(letter.concat(LessonProgress.lesson_id), _SEPARATOR),
               latest(col(LessonProgress.started_at)), latest(col(LessonProgress.completed_at)),
               latest(col(LessonProgress.updated_at)))
        .join(ResidentGroup, col(ResidentGroup.id) == unindexed(Person.group_id))
        .outerjoin(LessonProgress, rows_of)
        .where(named)
        .group_by(col(Person.id), col(ResidentGroup.id))  # the other columns follow from these keys
        .order_by(col(ResidentGroup.code), col(Person.display_name), col(Person.id))
        .execution_options(yield_per=PARTITION)
    )
    result = []
    same: dict[str, str] = {}  # one string object per group's code and name: the rows pickle small
    # A partition at a time: the event loop runs other work (a resident's reply) between two.
    async for partition in (await session.stream(query)).partitions():
        for person_id, name, last_active, added_by, code, group_name, letters, *moments in partition:
            progress = max((m for m in moments if m is not None), default=None)
            result.append(ResidentRow(person_id=person_id, name=name or "", group_code=same.setdefault(code, code),
                                      group_name=same.setdefault(group_name, group_name),
                                      last_active_at=_last_active(last_active, progress, end),
                                      added_by_leader=added_by is not None, letters=letters or ""))
    return result


def _last_active(last_active: datetime | None, progress: datetime | None, end: datetime) -> datetime | None:
    """The last activity as of ``end``: a past period never shows a later date. When the person
    was active after ``end``, their last progress up to ``end`` stands in (None if none)."""
    if last_active is not None and last_active <= end:
        return last_active
    return progress


async def assisted_completions(
    session: AsyncSession, *, ward_id: int, start: datetime | None, end: datetime
) -> list[AssistedRow]:
    """Completions a leader recorded for residents of the ward, completed in [start, end],
    oldest first."""
    resident, leader = aliased(Person), aliased(Person)
    query = (
        select(resident.display_name, ResidentGroup.code, ResidentGroup.name, LessonProgress.lesson_id,
               leader.display_name, LessonProgress.completed_at)
        .select_from(LessonProgress)
        .join(resident, resident.id == LessonProgress.person_id)
        .join(ResidentGroup, col(ResidentGroup.id) == resident.group_id)
        .outerjoin(leader, leader.id == LessonProgress.assisted_by)
        .where(ResidentGroup.ward_id == ward_id, LessonProgress.status == ProgressStatus.COMPLETED,
               col(LessonProgress.assisted_by).is_not(None), col(LessonProgress.completed_at) <= end)
        .order_by(col(LessonProgress.completed_at), col(LessonProgress.id))
    )
    if start is not None:
        query = query.where(col(LessonProgress.completed_at) >= start)
    return [AssistedRow(*row) for row in (await session.exec(query)).all()]  # type: ignore[arg-type]


@dataclass(frozen=True)
class WardBroadcast:
    """A broadcast as the ward's report shows it: its delivery to this ward's residents only."""

    broadcast: Broadcast
    recipients: int | None  # this ward's recipients (the broadcast's own count until it is queued)
    report: DeliveryReport


async def ward_broadcasts(
    session: AsyncSession, *, ward_id: int, start: datetime | None, end: datetime
) -> list[WardBroadcast]:
    """The ward's broadcasts sent (or due) in [start, end], oldest first: those addressed to it
    (``audience["ward"]`` is its code, or a list of groups names one of its groups) and, for a
    broadcast without a ward, only if it reached residents of this ward — with the delivery
    counted for this ward's residents alone (never another ward's), by the group each outbox row
    was queued for (``outbox.group_id``): rows of residents who erased their data since stay
    counted, anonymously."""
    query = select(Broadcast).where(col(Broadcast.scheduled_at) <= end)
    if start is not None:
        query = query.where(col(Broadcast.scheduled_at) >= start)
    broadcasts = (await session.exec(query.order_by(col(Broadcast.scheduled_at), col(Broadcast.id)))).all()
    ward = await session.get(Ward, ward_id)
    codes = set((await session.exec(select(ResidentGroup.code).where(ResidentGroup.ward_id == ward_id))).all())
    ids = [b.id for b in broadcasts]
    # By the group each row was queued for: a recipient's erasure or move keeps the count.
    shares = await delivery_reports(session, broadcast_ids=ids, ward_id=ward_id) if ids else {}

    def addressed(audience: dict[str, object]) -> bool:
        if audience.get("ward"):
            return ward is not None and audience["ward"] == ward.code
        if audience.get("kind") == "groups":
            return bool(codes & set(audience.get("codes") or []))  # type: ignore[call-overload]
        return False

    result = []
    for b in broadcasts:
        share = shares.get(b.id)  # type: ignore[arg-type]
        if share is None and not addressed(b.audience):
            continue  # no ward named and nobody of this ward reached
        report = share or DeliveryReport(dict.fromkeys(REPORT_STATUSES, 0), {})
        recipients = report.total if share is not None or b.recipients is not None and b.queued_at else b.recipients
        result.append(WardBroadcast(b, recipients, report))
    return result


async def audit_entries(
    session: AsyncSession, *, since: datetime, until: datetime | None = None
) -> Sequence[AuditLog]:
    """The audit log from ``since`` (inclusive) to ``until`` (inclusive), oldest first."""
    query = select(AuditLog).where(col(AuditLog.at) >= since)
    if until is not None:
        query = query.where(col(AuditLog.at) <= until)
    return (await session.exec(query.order_by(col(AuditLog.at), col(AuditLog.id)))).all()
