"""Progress statistics per residential group and ward: the one source for the leader's
dashboard, the admin's overview and thi đua ranking, the digest and the XLSX report.

The definitions (member, started, completed, assisted, curriculum at T, programme completed,
rate, coverage) are written once in ``storage.figures`` and docs/architecture.md §Numbers;
this module computes the live view of them for the chat. "This week's change" compares the
rate now with the rate at ``since`` (7 days earlier), with the members, the completions and
the curriculum as they stood then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, literal, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import LessonProgress, Person, ProgressStatus, ResidentGroup, Role, RoleKind, Ward
from storage.planner import unindexed


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
    completed_self: int = 0  # completions of the counted lessons, by the member alone
    completed_assisted: int = 0  # … and recorded by a leader for them
    lessons: dict[str, LessonCounts] = field(default_factory=dict)  # per lesson, when asked (by_lesson)
    adults: int | None = None  # the group's adult population; None: not set

    @property
    def coverage(self) -> float | None:
        """Share of the adult population who completed the programme, in percent; None if unknown."""
        return 100.0 * self.finished / self.adults if self.adults else None

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
        """Completions of the counted lessons by the members (self and assisted)."""
        return self.completed_self + self.completed_assisted

    @property
    def assisted(self) -> int:
        return self.completed_assisted


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
    curriculum: Sequence[str] | None = None,
    curriculum_before: Sequence[str] | None = None,
    by_lesson: bool = False,
) -> list[GroupStats]:
    """Statistics of every group (of a ward, or the given groups), in code order.

    ``lesson_ids``: the lessons whose completions are counted (and, with ``by_lesson``, counted
    one by one in ``GroupStats.lessons``: the leader's page). ``curriculum``: the lessons a
    member must have completed to have completed the programme at ``until`` (or now), and
    ``curriculum_before`` the same at ``since`` (``LessonLibrary.curriculum_at``; both default
    to ``lesson_ids``). ``until`` limits the count to completions up to that time (a period's
    report). Computed with SQL aggregates: never a list of people's ids."""
    groups_query = select(ResidentGroup).order_by(col(ResidentGroup.code))
    chosen = select(ResidentGroup.id)
    if ward_id is not None:
        groups_query = groups_query.where(ResidentGroup.ward_id == ward_id)
        chosen = chosen.where(ResidentGroup.ward_id == ward_id)
    if group_ids is not None:
        groups_query = groups_query.where(col(ResidentGroup.id).in_(list(group_ids)))
        chosen = chosen.where(col(ResidentGroup.id).in_(list(group_ids)))
    groups = (await session.exec(groups_query)).all()
    result = {
        g.id: GroupStats(g.id, g.code, g.name, g.ward_id, g.target_percent,  # type: ignore[arg-type]
                         lessons={lid: LessonCounts() for lid in lesson_ids} if by_lesson else {}, adults=g.adults)
        for g in groups
    }
    if not result:
        return []
    wanted = set(lesson_ids)
    now_set = set(lesson_ids if curriculum is None else curriculum)
    before_set = set(now_set if curriculum_before is None else curriculum_before)
    counted = wanted | now_set | before_set
    # A whole ward is read person by person in the table's order (SQLite then groups each
    # person's rows as they come, with no sort); one group through its index.
    group_of = col(Person.group_id) if group_ids is not None else unindexed(Person.group_id)
    members_of = [group_of.in_(chosen)]
    if until is not None:
        members_of.append(col(Person.created_at) <= until)
    # The person's rows of the counted lessons, reached through the covering index
    # ix_progress_person_cover (person, lesson, status, moments, assistance): the lesson test
    # must not make SQLite read the rows through the lesson's index instead.
    rows_of = [col(LessonProgress.person_id) == Person.id, unindexed(LessonProgress.lesson_id).in_(sorted(counted))]
    completed = LessonProgress.status == ProgressStatus.COMPLETED
    if until is not None:
        rows_of.append(col(LessonProgress.started_at) <= until)
        completed = and_(completed, col(LessonProgress.completed_at) <= until)

    def of(lessons: set[str]) -> ColumnElement[bool]:
        """The row's lesson is one of ``lessons``, tested as "none of the (few) other counted
        lessons": a short NOT IN, or nothing at all when the sets are the same (the usual case)."""
        others = counted - lessons
        return col(LessonProgress.lesson_id).not_in(sorted(others)) if others else true()

    def number(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    # One pass over the ward: a row per person (members without progress too), then per group.
    per_person = (
        select(col(Person.group_id).label("group_id"),
               func.max(case((col(Person.created_at) <= since, 1), else_=0)).label("old"),  # one person
               func.count(case((of(now_set), LessonProgress.person_id))).label("rows"),
               number(and_(of(now_set), completed)).label("done"),
               number(and_(of(before_set), completed, col(LessonProgress.completed_at) <= since)).label("before"),
               number(and_(of(wanted), completed, col(LessonProgress.assisted_by).is_(None))).label("self"),
               number(and_(of(wanted), completed, col(LessonProgress.assisted_by).is_not(None))).label("assisted"))
        .select_from(Person)
        .outerjoin(LessonProgress, and_(*rows_of))
        .where(*members_of).group_by(col(Person.id))
        .subquery()
    )

    def everyone(column: Any, lessons: set[str]) -> Any:
        """People who completed every lesson of ``lessons`` (nobody, if it is empty)."""
        return number(column == len(lessons)) if lessons else literal(0)

    per_group = await session.exec(
        select(per_person.c.group_id, func.count(), func.sum(per_person.c.old),
               number(per_person.c.rows > 0), everyone(per_person.c.done, now_set),
               everyone(per_person.c.before, before_set), func.sum(per_person.c.self),
               func.sum(per_person.c.assisted))
        .group_by(per_person.c.group_id)
    )
    for group_id, members, old, started, finished, finished_before, own, assisted in per_group.all():
        stats = result[group_id]
        stats.members, stats.members_before, stats.started = int(members), int(old or 0), int(started or 0)
        stats.finished, stats.finished_before = int(finished or 0), int(finished_before or 0)
        stats.completed_self, stats.completed_assisted = int(own or 0), int(assisted or 0)
    if by_lesson and wanted:
        await _count_lessons(session, result, members_of=members_of, until=until, completed=completed)
    return list(result.values())


async def _count_lessons(session: AsyncSession, result: dict[int, GroupStats], *, members_of: list[Any],
                         until: datetime | None, completed: ColumnElement[bool]) -> None:
    """Each lesson's started / completed (self, assisted) per group, into ``GroupStats.lessons``."""
    rows_of = list(members_of)
    if until is not None:
        rows_of.append(col(LessonProgress.started_at) <= until)
    # Grouped by lesson, a row's lesson is picked after the query (below): the sums test only
    # the status, the moment and who assisted, all in the covering index ix_progress_person_cover.
    per_lesson = await session.exec(
        select(Person.group_id, LessonProgress.lesson_id, func.count(),
               func.sum(case((and_(completed, col(LessonProgress.assisted_by).is_(None)), 1), else_=0)),
               func.sum(case((and_(completed, col(LessonProgress.assisted_by).is_not(None)), 1), else_=0)))
        .select_from(Person)
        .join(LessonProgress, col(LessonProgress.person_id) == Person.id)
        .where(*rows_of).group_by(col(Person.group_id), col(LessonProgress.lesson_id))
    )
    for group_id, lesson_id, started, completed_self, completed_assisted in per_lesson.all():
        counts = result[group_id].lessons.get(lesson_id)
        if counts is None:
            continue  # a lesson no longer in the curriculum
        counts.started, counts.completed_self = int(started), int(completed_self or 0)
        counts.completed_assisted = int(completed_assisted or 0)


def ranking(stats: Sequence[GroupStats]) -> list[GroupStats]:
    """Thi đua order: groups with members first (an empty group has nothing to rank), then
    completion rate, progress against target, completions."""
    return sorted(stats, key=lambda s: (s.members == 0, -s.rate, -(s.rate - s.target_percent), -s.completions,
                                        s.code))


async def members_progress(
    session: AsyncSession, *, group_id: int, lesson_ids: Sequence[str]
) -> list[MemberProgress]:
    """Every named member of a group with their counts (tombstones are left out: no name).
    One query: the person's progress rows are counted in SQL."""
    done = LessonProgress.status == ProgressStatus.COMPLETED
    joined = and_(col(LessonProgress.person_id) == Person.id,
                  col(LessonProgress.lesson_id).in_(sorted(set(lesson_ids))))
    query = (
        select(Person.id, Person.display_name, Person.last_active_at, Person.added_by,
               func.count(LessonProgress.person_id),  # not .id: the covering index holds person_id
               func.sum(case((done, 1), else_=0)),
               func.sum(case((and_(done, col(LessonProgress.assisted_by).is_not(None)), 1), else_=0)))
        .select_from(Person)
        .outerjoin(LessonProgress, joined if lesson_ids else false())
        .where(Person.group_id == group_id, col(Person.deleted_at).is_(None))
        .group_by(col(Person.id), col(Person.display_name), col(Person.last_active_at), col(Person.added_by))
        .order_by(col(Person.display_name), col(Person.id))
    )
    return [
        MemberProgress(person_id=person_id, display_name=name, last_active_at=last_active,
                       completed=int(completed or 0), assisted=int(assisted or 0),
                       in_progress=int(rows) - int(completed or 0), added_by_leader=added_by is not None)
        for person_id, name, last_active, added_by, rows, completed, assisted in (await session.exec(query)).all()
    ]


async def behind_counts(
    session: AsyncSession, *, group_ids: Sequence[int], lesson_ids: Sequence[str], inactive_since: datetime,
) -> tuple[dict[int, int], set[tuple[int, int]]]:
    """How many named members of each group are behind (as ``bot.leading.is_behind`` says:
    fewer than every lesson completed, not active since ``inactive_since``), counted in SQL;
    and which of them lead the group ((group, person) pairs), so a leader's own count can
    leave them out."""
    done = and_(col(LessonProgress.person_id) == Person.id, LessonProgress.status == ProgressStatus.COMPLETED,
                col(LessonProgress.lesson_id).in_(sorted(set(lesson_ids))))
    idle = and_(col(Person.group_id).in_(list(group_ids)), col(Person.deleted_at).is_(None),
                or_(col(Person.last_active_at).is_(None), col(Person.last_active_at) <= inactive_since))
    # A correlated count per person, answered from the covering index (person, lesson, status).
    # (A join grouped by person is faster only when SQLite has statistics to plan a full scan.)
    completed = select(func.count(LessonProgress.person_id)).where(done).correlate(Person).scalar_subquery()
    behind = and_(idle, completed < len(set(lesson_ids)))
    counts = {group_id: 0 for group_id in group_ids}
    for group_id, count in (await session.exec(
        select(Person.group_id, func.count()).where(behind).group_by(col(Person.group_id))
    )).all():
        counts[group_id] = int(count)
    # The leaders among them: read from the roles, each checked on their own (joined from the
    # people, SQLite would count every member's lessons again before looking at the roles).
    leader_behind = exists().where(col(Person.id) == Role.person_id, col(Person.group_id) == Role.group_id, behind)
    leaders = (await session.exec(
        select(Role.group_id, Role.person_id)
        .where(Role.kind == RoleKind.LEADER, col(Role.group_id).in_(list(group_ids)), leader_behind)
    )).all()
    return counts, {(g, p) for g, p in leaders}  # type: ignore[misc]


async def wards(session: AsyncSession) -> Sequence[Ward]:
    return (await session.exec(select(Ward).order_by(col(Ward.code)))).all()


async def leader_counts(session: AsyncSession, *, ward_id: int) -> tuple[int, int]:
    """(leaders, groups led) in the ward: people holding a leader role who have not erased
    their data, and the groups they lead (the admin's overview)."""
    row = (await session.exec(
        select(func.count(func.distinct(Role.person_id)), func.count(func.distinct(Role.group_id)))
        .join(ResidentGroup, col(ResidentGroup.id) == Role.group_id)
        .join(Person, col(Person.id) == Role.person_id)
        .where(Role.kind == RoleKind.LEADER, ResidentGroup.ward_id == ward_id, col(Person.deleted_at).is_(None))
    )).one()
    return int(row[0]), int(row[1])
