"""The figures of a ward's report for a period — every number the report document, the
workbook, the charts and the chat's report caption show, computed here once with SQL
aggregates (never a list of people's ids).

Definitions (the same words in docs/architecture.md §Numbers; ``storage.stats`` computes the
live view of the same definitions for the chat):

- **member** of a group at a moment T: a person whose group it is now, created by T —
  anonymous tombstones of people who erased their data included (their completions stay
  counted). A person who changed group counts in the group they are in now.
- **participant**: a member with at least one lesson started (self or assisted) by T.
- **new participant** in [start, end]: a participant whose first lesson started in it.
- **started** (a lesson): the member has its progress row, started by T.
- **completed** (a lesson): its first completion, by T. A re-pass on a newer lesson version
  records the version but never moves the completion date. **Assisted** when a leader recorded
  it (``assisted_by``), **self** otherwise; reports keep the two apart.
- **curriculum at T**: the lessons published (``published`` in the lesson file) by T, local
  date. Adding a lesson never rewrites a past period.
- **programme completed** at T: every lesson of the curriculum at T completed by T.
- **rate**: members who completed the programme ÷ members, against the group's target.
- **coverage**: residents who completed the programme ÷ the group's adult population
  (``resident_group.adults``); unknown (None) while the adults are not set.
- **behind**: a named member who has not completed the programme and was not active in the
  last 7 days (``bot.leading.is_behind``).

"In the period" numbers count what happened in [start, end]; state numbers are as of end.
The previous period is the period of the same length just before ``start``: its end is the
last moment before ``start`` ("before" numbers count what stood strictly before ``start``).

How each number is read (``read_period_figures``), where the words above leave a choice:

- **participants** and **new participants** count the lessons of the curriculum at end; a
  participant's first start is their earliest ``started_at`` among those lessons.
- **completions in the period** (self / assisted) are first completions, of the lessons of
  the curriculum at end, with ``completed_at`` in [start, end].
- **finished in the period**: members who completed the programme at end (curriculum at
  end) and whose last needed lesson was completed in [start, end]; a month's ``finished``
  is the same in that month, so the months add up to the period.
- **leaders**: people holding a leader role now on a group of the ward (an erased person
  holds none). ``assisted``: completions they recorded (``assisted_by``), of the lessons of
  the curriculum at end, completed in the period — whoever the resident is now.
  ``nudges``: the people their nudges reached the outbox for (audit ``leader.nudge``,
  ``leader.nudge_one``, ``admin.nudge``: the ``queued`` count; a person nudged twice counts
  twice). ``answered``: the residents' questions they answered, from the audit log
  (``help.reply``, one per question): the help request itself is deleted when its asker
  erases their data, the audit entry is not.
- **months**: each calendar month (local) overlapping the period, clipped to it; from the
  beginning (``start`` None): from the month the ward's first member joined.
- the ward's **target** (``total.target_percent``) is the groups' targets weighted by their
  members (the rate the ward reaches when every group just meets its own); the plain mean
  while the ward has no member.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.curriculum.schema import Competence
from storage.figure_queries import (
    TICK, Month, as_int, completions_by_month, finished_by, lesson_counts, members_at, months_of, people_counts, within,
)
from storage.models import AuditLog, LessonProgress, Person, ProgressStatus, ResidentGroup, Role, RoleKind, Ward
from storage.planner import unindexed
from storage.report_data import WardBroadcast, ward_broadcasts

if TYPE_CHECKING:
    from bot.curriculum import LessonLibrary

NUDGE_ACTIONS = ("leader.nudge", "leader.nudge_one", "admin.nudge")
ANSWER_ACTION = "help.reply"


@dataclass(frozen=True)
class GroupFigures:
    """One group (or, in ``PeriodFigures.total``, the whole ward: group_id 0)."""

    group_id: int
    code: str
    name: str
    target_percent: int
    adults: int | None  # the group's adult population; None: not set
    members: int  # as of end
    participants: int  # as of end
    finished: int  # programme completed, as of end
    new_participants: int  # in the period
    completed_self: int  # lesson completions in the period, self
    completed_assisted: int  # lesson completions in the period, recorded by a leader
    finished_in_period: int  # people whose programme completion fell in the period
    members_before: int  # as of the end of the previous period
    finished_before: int  # as of the end of the previous period

    @property
    def rate(self) -> float | None:
        """Share of members who completed the programme, in percent; None for an empty group."""
        return 100.0 * self.finished / self.members if self.members else None

    @property
    def coverage(self) -> float | None:
        """Share of the adult population who completed the programme, in percent; None if unknown."""
        return 100.0 * self.finished / self.adults if self.adults else None

    @property
    def rate_before(self) -> float | None:
        return 100.0 * self.finished_before / self.members_before if self.members_before else None

    @property
    def change(self) -> float | None:
        """Percentage points of rate gained against the previous period's end."""
        if self.rate is None:
            return None
        return self.rate - (self.rate_before or 0.0)

    @property
    def meets_target(self) -> bool:
        return self.rate is not None and self.rate >= self.target_percent

    @property
    def meets_target_adults(self) -> bool | None:
        return None if self.coverage is None else self.coverage >= self.target_percent


@dataclass(frozen=True)
class MonthFigures:
    """One calendar month (local time) of the period, clipped to the period."""

    month: date  # its first day
    new_participants: int
    completed_self: int
    completed_assisted: int
    finished: int  # programme completions that fell in the month
    members_end: int  # members at the month's end (or the period's end)
    finished_end: int  # programme completed at the month's end (curriculum then)


@dataclass(frozen=True)
class LessonFigures:
    lesson_id: str
    started: int  # as of end
    completed_self: int  # as of end
    completed_assisted: int  # as of end
    period_self: int  # in the period
    period_assisted: int  # in the period


@dataclass(frozen=True)
class AreaFigures:
    """One competence area (the six areas of the lessons): its lessons added up."""

    competence: str  # bot.curriculum.schema.Competence value
    lesson_ids: tuple[str, ...]
    started: int
    completed_self: int
    completed_assisted: int
    period_self: int
    period_assisted: int


@dataclass(frozen=True)
class LeaderFigures:
    """A leader of the ward's groups (roles held now) and what they did in the period."""

    person_id: int
    name: str | None  # None: erased their data
    groups: tuple[str, ...]  # names of the groups they lead, in code order
    assisted: int  # assisted completions they recorded in the period
    nudges: int  # people they nudged in the period
    answered: int  # residents' questions they answered in the period


@dataclass(frozen=True)
class PeriodFigures:
    ward: Ward
    start: datetime | None  # None: from the beginning
    end: datetime
    previous_start: datetime | None  # the previous period (None when start is None)
    previous_end: datetime | None
    curriculum: tuple[str, ...]  # lesson ids of the curriculum at end, in lesson order
    groups: list[GroupFigures]  # in code order
    total: GroupFigures  # the ward (adults: the sum where every group has it, else None)
    months: list[MonthFigures] = field(default_factory=list)
    lessons: list[LessonFigures] = field(default_factory=list)  # the curriculum at end, in order
    areas: list[AreaFigures] = field(default_factory=list)  # in Competence order, areas with lessons only
    leaders: list[LeaderFigures] = field(default_factory=list)  # by name
    broadcasts: list[WardBroadcast] = field(default_factory=list)  # sent or due in the period


async def read_period_figures(
    session: AsyncSession, *, ward_id: int, lessons: LessonLibrary, start: datetime | None, end: datetime,
    zone: ZoneInfo,
) -> PeriodFigures:
    """Every figure of the ward's report for [start, end] (start None: from the beginning), as
    the module's docstring defines them. A handful of aggregate queries over the ward's groups
    (person → group; the months and moments are columns of the same queries): never a list of
    people's ids, never a query per group."""
    ward = await session.get(Ward, ward_id)
    assert ward is not None, f"no ward {ward_id}"
    groups = (await session.exec(
        select(ResidentGroup).where(ResidentGroup.ward_id == ward_id).order_by(col(ResidentGroup.code))
    )).all()
    previous_start = start - (end - start) if start is not None else None
    previous_end = start - TICK if start is not None else None
    curriculum = lessons.curriculum_at(end, zone)
    # The ward's people in the table's order, each person's rows from the covering index (storage.planner).
    in_ward = unindexed(Person.group_id).in_(select(ResidentGroup.id).where(ResidentGroup.ward_id == ward_id))
    first = None
    if start is None:
        first = (await session.exec(
            select(func.min(Person.created_at)).where(in_ward, col(Person.created_at) <= end)
        )).one()
    months = months_of(start, first, end, zone)

    members = await members_at(session, in_ward, [end, previous_end, *(m.high for m in months)])
    # "Programme completed at T" for the moments the report needs, grouped by the curriculum then:
    # those under the end's curriculum come with the per-person query, others cost one query each.
    moments: dict[tuple[str, ...], list[datetime]] = defaultdict(list)
    if previous_end is not None:
        moments[lessons.curriculum_at(previous_end, zone)].append(previous_end)
    for month in months:
        moments[lessons.curriculum_at(month.high, zone)].append(month.high)
    at_end = sorted(set(moments.pop(curriculum, [])))
    people = await people_counts(session, in_ward, curriculum, start, end, months, at_end)
    finished_at = {at: {g: counts[f"at:{i}"] for g, counts in people.items()} for i, at in enumerate(at_end)}
    for programme, ats in moments.items():
        finished_at.update(await finished_by(session, in_ward, programme, ats))
    per_lesson = await lesson_counts(session, in_ward, curriculum, start, end)
    by_month = await completions_by_month(session, in_ward, curriculum, end, months)

    def group_figures(g: ResidentGroup) -> GroupFigures:
        assert g.id is not None
        counts, mine = people.get(g.id, {}), [row for (group_id, _), row in per_lesson.items() if group_id == g.id]
        return GroupFigures(
            group_id=g.id, code=g.code, name=g.name, target_percent=g.target_percent, adults=g.adults,
            members=members.get(g.id, {}).get(end, 0), participants=counts.get("participants", 0),
            finished=counts.get("finished", 0), new_participants=counts.get("new", 0),
            completed_self=sum(r["period_self"] for r in mine), completed_assisted=sum(r["period_assisted"] for r in mine),
            finished_in_period=counts.get("finished_in_period", 0),
            members_before=members.get(g.id, {}).get(previous_end, 0) if previous_end else 0,
            finished_before=finished_at.get(previous_end, {}).get(g.id, 0) if previous_end else 0,
        )

    group_rows = [group_figures(g) for g in groups]
    lesson_rows = [_lesson_figures(lesson_id, per_lesson) for lesson_id in curriculum]
    return PeriodFigures(
        ward=ward, start=start, end=end, previous_start=previous_start, previous_end=previous_end,
        curriculum=curriculum, groups=group_rows, total=_total(ward, group_rows),
        months=[_month_figures(k, m, members, people, by_month, finished_at) for k, m in enumerate(months)],
        lessons=lesson_rows, areas=_areas(lessons, lesson_rows),
        leaders=await _leaders(session, ward_id=ward_id, curriculum=curriculum, start=start, end=end),
        broadcasts=await ward_broadcasts(session, ward_id=ward_id, start=start, end=end),
    )


def _month_figures(k: int, month: Month, members: dict[int, dict[datetime, int]],
                   people: dict[int, dict[str, int]], by_month: dict[tuple[int, bool], int],
                   finished_at: dict[datetime, dict[int, int]]) -> MonthFigures:
    return MonthFigures(
        month=month.month,
        new_participants=sum(p.get(f"new:{k}", 0) for p in people.values()),
        completed_self=by_month.get((k, False), 0),
        completed_assisted=by_month.get((k, True), 0),
        finished=sum(p.get(f"finished:{k}", 0) for p in people.values()),
        members_end=sum(m.get(month.high, 0) for m in members.values()),
        finished_end=sum(finished_at.get(month.high, {}).values()),
    )


def _lesson_figures(lesson_id: str, per_lesson: dict[tuple[int, str], dict[str, int]]) -> LessonFigures:
    rows = [row for (_, lid), row in per_lesson.items() if lid == lesson_id]
    return LessonFigures(
        lesson_id=lesson_id, started=sum(r["started"] for r in rows), completed_self=sum(r["self"] for r in rows),
        completed_assisted=sum(r["assisted"] for r in rows), period_self=sum(r["period_self"] for r in rows),
        period_assisted=sum(r["period_assisted"] for r in rows),
    )


def _areas(lessons: LessonLibrary, rows: Sequence[LessonFigures]) -> list[AreaFigures]:
    competence = {lesson.id: lesson.competence for lesson in lessons}
    areas = []
    for area in Competence:
        mine = [r for r in rows if competence[r.lesson_id] == area]
        if mine:
            areas.append(AreaFigures(
                competence=area.value, lesson_ids=tuple(r.lesson_id for r in mine),
                started=sum(r.started for r in mine), completed_self=sum(r.completed_self for r in mine),
                completed_assisted=sum(r.completed_assisted for r in mine),
                period_self=sum(r.period_self for r in mine), period_assisted=sum(r.period_assisted for r in mine),
            ))
    return areas


def _total(ward: Ward, groups: Sequence[GroupFigures]) -> GroupFigures:
    members = sum(g.members for g in groups)
    if members:
        target = round(sum(g.target_percent * g.members for g in groups) / members)
    else:
        target = round(sum(g.target_percent for g in groups) / len(groups)) if groups else 0
    adults = sum(g.adults or 0 for g in groups) if groups and all(g.adults is not None for g in groups) else None
    return GroupFigures(
        group_id=0, code=ward.code, name=ward.name, target_percent=target, adults=adults, members=members,
        **{name: sum(getattr(g, name) for g in groups) for name in (
            "participants", "finished", "new_participants", "completed_self", "completed_assisted",
            "finished_in_period", "members_before", "finished_before")},
    )


async def _leaders(session: AsyncSession, *, ward_id: int, curriculum: Sequence[str], start: datetime | None,
                   end: datetime) -> list[LeaderFigures]:
    """The ward's leaders (roles held now) and what they did in [start, end]."""
    held = (await session.exec(
        select(Role.person_id, Person.display_name, Person.deleted_at, ResidentGroup.name)
        .join(ResidentGroup, col(ResidentGroup.id) == Role.group_id)
        .join(Person, col(Person.id) == Role.person_id)
        .where(Role.kind == RoleKind.LEADER, ResidentGroup.ward_id == ward_id)
        .order_by(col(ResidentGroup.code))
    )).all()
    if not held:
        return []
    leaders_of_ward = (
        select(Role.person_id).join(ResidentGroup, col(ResidentGroup.id) == Role.group_id)
        .where(Role.kind == RoleKind.LEADER, ResidentGroup.ward_id == ward_id)
    )
    assisted = dict((await session.exec(
        select(LessonProgress.assisted_by, func.count())
        .where(col(LessonProgress.assisted_by).is_not(None),  # the partial index ix_progress_assisted
               col(LessonProgress.assisted_by).in_(leaders_of_ward), LessonProgress.status == ProgressStatus.COMPLETED,
               unindexed(LessonProgress.lesson_id).in_(list(curriculum)),
               within(col(LessonProgress.completed_at), start, end))
        .group_by(col(LessonProgress.assisted_by))
    )).all())
    # The audit log names actors as "person:<id>"; one row per actor, mapped back below.
    in_period = within(col(AuditLog.at), start, end)
    nudges = dict((await session.exec(
        select(AuditLog.actor, func.sum(col(AuditLog.details)["queued"].as_integer()))
        .where(col(AuditLog.action).in_(NUDGE_ACTIONS), in_period).group_by(col(AuditLog.actor))
    )).all())
    answered = dict((await session.exec(
        select(AuditLog.actor, func.count(func.distinct(AuditLog.target)))
        .where(AuditLog.action == ANSWER_ACTION, in_period).group_by(col(AuditLog.actor))
    )).all())
    names: dict[int, str | None] = {}
    groups: dict[int, list[str]] = defaultdict(list)
    for person_id, name, deleted_at, group_name in held:
        names[person_id] = None if deleted_at is not None else name
        groups[person_id].append(group_name)
    leaders = [
        LeaderFigures(person_id=person_id, name=name, groups=tuple(groups[person_id]),
                      assisted=as_int(assisted.get(person_id)), nudges=as_int(nudges.get(f"person:{person_id}")),
                      answered=as_int(answered.get(f"person:{person_id}")))
        for person_id, name in names.items()
    ]
    return sorted(leaders, key=lambda leader: (leader.name is None, leader.name or "", leader.person_id))
