"""Progress statistics per residential group and ward: the one source for the leader's
dashboard, the admin's overview and thi đua ranking, the digest and the XLSX report.

Definitions (also in docs/architecture.md):
- a group's **members** are the people whose group it is, including anonymous tombstones of
  people who deleted their data (their completions stay counted, anonymously);
- a lesson counts as **completed** when its progress row is ``completed``; it is
  **assisted** when a leader recorded it (``assisted_by``), **self** otherwise — reports keep
  the two apart;
- a member **completed the programme** when every lesson of the library is completed;
- the group's **completion rate** is the share of members who completed the programme, set
  against the group's ``target_percent``;
- "this week's change" compares the rate now with the rate at ``since`` (7 days earlier),
  counting only completions and members that existed then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import LessonProgress, Person, ProgressStatus, ResidentGroup, Ward


@dataclass
class LessonCounts:
    started: int = 0  # members with a progress row (in progress or completed)
    completed_self: int = 0
    completed_assisted: int = 0

    @property
    def completed(self) -> int:
        return self.completed_self + self.completed_assisted


@dataclass
class GroupStats:
    group_id: int
    code: str
    name: str
    ward_id: int
    target_percent: int
    members: int = 0
    started: int = 0  # members who opened at least one lesson
    finished: int = 0  # members who completed the programme
    finished_before: int = 0  # the same, counting only completions up to ``since``
    members_before: int = 0
    lessons: dict[str, LessonCounts] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Share of members who completed the programme, in percent."""
        return 100.0 * self.finished / self.members if self.members else 0.0

    @property
    def rate_before(self) -> float:
        return 100.0 * self.finished_before / self.members_before if self.members_before else 0.0

    @property
    def change(self) -> float:
        """Percentage points gained since ``since`` (this week)."""
        return self.rate - self.rate_before

    @property
    def meets_target(self) -> bool:
        return self.rate >= self.target_percent

    @property
    def completions(self) -> int:
        return sum(c.completed for c in self.lessons.values())

    @property
    def assisted(self) -> int:
        return sum(c.completed_assisted for c in self.lessons.values())


@dataclass(frozen=True)
class MemberProgress:
    person_id: int
    display_name: str | None  # None for an anonymous tombstone
    last_active_at: datetime | None
    completed: int
    assisted: int
    in_progress: int
    added_by_leader: bool


async def group_stats(
    session: AsyncSession,
    *,
    lesson_ids: Sequence[str],
    since: datetime,
    until: datetime | None = None,
    ward_id: int | None = None,
    group_ids: Sequence[int] | None = None,
) -> list[GroupStats]:
    """Statistics of every group (of a ward, or the given groups), in code order.

    ``until`` limits the count to completions up to that time (a period's report)."""
    groups_query = select(ResidentGroup).order_by(col(ResidentGroup.code))
    if ward_id is not None:
        groups_query = groups_query.where(ResidentGroup.ward_id == ward_id)
    if group_ids is not None:
        groups_query = groups_query.where(col(ResidentGroup.id).in_(list(group_ids)))
    groups = (await session.exec(groups_query)).all()
    result = {
        g.id: GroupStats(g.id, g.code, g.name, g.ward_id, g.target_percent,  # type: ignore[arg-type]
                         lessons={lid: LessonCounts() for lid in lesson_ids})
        for g in groups
    }
    if not result:
        return []
    people = (await session.exec(
        select(Person.id, Person.group_id, Person.created_at).where(col(Person.group_id).in_(list(result)))
    )).all()
    group_of: dict[int, int] = {}
    for person_id, group_id, created_at in people:
        if until is not None and created_at is not None and created_at > until:
            continue
        group_of[person_id] = group_id
        stats = result[group_id]
        stats.members += 1
        if created_at is None or created_at <= since:
            stats.members_before += 1
    rows = (await session.exec(
        select(LessonProgress.person_id, LessonProgress.lesson_id, LessonProgress.status,
               LessonProgress.completed_at, LessonProgress.assisted_by, LessonProgress.started_at)
        .where(col(LessonProgress.person_id).in_(list(group_of)))
    )).all()
    done_now: dict[int, set[str]] = defaultdict(set)
    done_before: dict[int, set[str]] = defaultdict(set)
    started_people: set[int] = set()
    wanted = set(lesson_ids)
    for person_id, lesson_id, status, completed_at, assisted_by, started_at in rows:
        if lesson_id not in wanted or (until is not None and started_at and started_at > until):
            continue
        stats = result[group_of[person_id]]
        counts = stats.lessons[lesson_id]
        counts.started += 1
        started_people.add(person_id)
        completed = status == ProgressStatus.COMPLETED and (until is None or (completed_at and completed_at <= until))
        if completed:
            if assisted_by is None:
                counts.completed_self += 1
            else:
                counts.completed_assisted += 1
            done_now[person_id].add(lesson_id)
            if completed_at is not None and completed_at <= since:
                done_before[person_id].add(lesson_id)
    for person_id in started_people:
        result[group_of[person_id]].started += 1
    for person_id, group_id in group_of.items():
        if wanted and done_now[person_id] >= wanted:
            result[group_id].finished += 1
        if wanted and done_before[person_id] >= wanted:
            result[group_id].finished_before += 1
    return list(result.values())


def ranking(stats: Sequence[GroupStats]) -> list[GroupStats]:
    """Thi đua order: completion rate, then progress against target, then completions."""
    return sorted(stats, key=lambda s: (-s.rate, -(s.rate - s.target_percent), -s.completions, s.code))


async def members_progress(
    session: AsyncSession, *, group_id: int, lesson_ids: Sequence[str]
) -> list[MemberProgress]:
    """Every named member of a group with their counts (tombstones are left out: no name)."""
    people = (await session.exec(
        select(Person).where(Person.group_id == group_id, col(Person.deleted_at).is_(None))
        .order_by(col(Person.display_name), col(Person.id))
    )).all()
    ids = [p.id for p in people]
    rows = (await session.exec(
        select(LessonProgress).where(col(LessonProgress.person_id).in_(ids))
    )).all() if ids else []
    wanted = set(lesson_ids)
    per: dict[int, list[LessonProgress]] = defaultdict(list)
    for row in rows:
        if row.lesson_id in wanted:
            per[row.person_id].append(row)
    result = []
    for person in people:
        mine = per[person.id]  # type: ignore[index]
        completed = [r for r in mine if r.status == ProgressStatus.COMPLETED]
        result.append(MemberProgress(
            person_id=person.id,  # type: ignore[arg-type]
            display_name=person.display_name,
            last_active_at=person.last_active_at,
            completed=len(completed),
            assisted=sum(1 for r in completed if r.assisted_by is not None),
            in_progress=len(mine) - len(completed),
            added_by_leader=person.added_by is not None,
        ))
    return result


async def wards(session: AsyncSession) -> Sequence[Ward]:
    return (await session.exec(select(Ward).order_by(col(Ward.code)))).all()
