"""The queries behind ``storage.figures.read_period_figures``: the ward's groups counted with
SQL aggregates (person → group, then their progress rows), one row per group (or per group
and lesson, or per month), the moments and months of a period as columns or one CASE — never a
list of people's ids, never a query per group. The definitions are in ``storage.figures``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import LessonProgress, Person, ProgressStatus
from storage.planner import unindexed

TICK = timedelta(microseconds=1)  # a month ends a tick before the next; so does the previous period


@dataclass(frozen=True)
class Month:
    month: date  # its first day
    low: datetime | None  # the first moment counted (None: from the beginning)
    high: datetime  # the last moment counted


def months_of(start: datetime | None, first: datetime | None, end: datetime, zone: ZoneInfo) -> list[Month]:
    """The calendar months (local) from ``start`` (else ``first``) to ``end``, clipped to them."""
    begin = start or first
    if begin is None or begin > end:
        return []
    local = begin.astimezone(zone)
    month, months = date(local.year, local.month, 1), []
    while True:
        low = datetime(month.year, month.month, 1, tzinfo=zone).astimezone(UTC)
        if low > end:
            return months
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        high = datetime(following.year, following.month, 1, tzinfo=zone).astimezone(UTC) - TICK
        months.append(Month(month, low if start is None else max(low, start), min(high, end)))
        month = following


def count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def within(column: Any, low: datetime | None, high: datetime) -> ColumnElement[bool]:
    return and_(column <= high) if low is None else and_(column >= low, column <= high)


def as_int(value: Any) -> int:
    return int(value or 0)


async def members_at(session: AsyncSession, in_ward: Any, moments: Sequence[datetime | None]
                   ) -> dict[int, dict[datetime, int]]:
    """Members of each group at each moment (group → moment → count)."""
    ats = sorted({m for m in moments if m is not None})
    rows = (await session.exec(
        select(Person.group_id, *(count_if(col(Person.created_at) <= at) for at in ats))
        .where(in_ward).group_by(col(Person.group_id))
    )).all()
    return {row[0]: {at: as_int(n) for at, n in zip(ats, row[1:], strict=True)} for row in rows}


async def people_counts(session: AsyncSession, in_ward: Any, curriculum: Sequence[str], start: datetime | None,
                  end: datetime, months: Sequence[Month], at_end: Sequence[datetime]) -> dict[int, dict[str, int]]:
    """Per group: participants, new participants, finished and finished in the period (as of
    end, the curriculum at end), the two "new" counts per month (``new:<k>``, ``finished:<k>``)
    and the members who completed that curriculum by each moment of ``at_end`` (``at:<i>``;
    every lesson completed by T ≤ end is one completed by end, so the same row serves) — from
    one row per person, summed in SQL."""
    done = and_(LessonProgress.status == ProgressStatus.COMPLETED, col(LessonProgress.completed_at) <= end)
    person = (
        select(col(Person.group_id).label("group_id"), col(Person.created_at).label("created"),
               func.min(LessonProgress.started_at).label("first"),
               count_if(done).label("done"), func.max(case((done, LessonProgress.completed_at))).label("moment"))
        .select_from(Person).join(LessonProgress, col(LessonProgress.person_id) == Person.id)
        .where(in_ward, col(Person.created_at) <= end, unindexed(LessonProgress.lesson_id).in_(list(curriculum)),
               col(LessonProgress.started_at) <= end)
        .group_by(col(Person.id))  # the group and creation follow from the person
        .subquery()
    )
    finished = person.c.done == len(curriculum)
    columns = {
        "participants": func.count(),
        "new": count_if(within(person.c.first, start, end)),
        "finished": count_if(finished),
        "finished_in_period": count_if(and_(finished, within(person.c.moment, start, end))),
    }
    for k, month in enumerate(months):
        columns[f"new:{k}"] = count_if(within(person.c.first, month.low, month.high))
        columns[f"finished:{k}"] = count_if(and_(finished, within(person.c.moment, month.low, month.high)))
    for i, at in enumerate(at_end):
        columns[f"at:{i}"] = count_if(and_(finished, person.c.moment <= at, person.c.created <= at))
    rows = (await session.exec(select(person.c.group_id, *columns.values()).group_by(person.c.group_id))).all()
    return {row[0]: {name: as_int(n) for name, n in zip(columns, row[1:], strict=True)} for row in rows}


async def lesson_counts(session: AsyncSession, in_ward: Any, curriculum: Sequence[str], start: datetime | None,
                      end: datetime) -> dict[tuple[int, str], dict[str, int]]:
    """Per group and lesson of the curriculum: started and completed (self / assisted) as of
    end, and completed in the period."""
    done = and_(LessonProgress.status == ProgressStatus.COMPLETED, col(LessonProgress.completed_at) <= end)
    own, helped = col(LessonProgress.assisted_by).is_(None), col(LessonProgress.assisted_by).is_not(None)
    at = col(LessonProgress.completed_at)
    columns = {
        "started": func.count(),
        "self": count_if(and_(done, own)),
        "assisted": count_if(and_(done, helped)),
        "period_self": count_if(and_(done, own, within(at, start, end))),
        "period_assisted": count_if(and_(done, helped, within(at, start, end))),
    }
    rows = (await session.exec(
        select(Person.group_id, LessonProgress.lesson_id, *columns.values())
        .select_from(Person).join(LessonProgress, col(LessonProgress.person_id) == Person.id)
        .where(in_ward, col(Person.created_at) <= end, unindexed(LessonProgress.lesson_id).in_(list(curriculum)),
               col(LessonProgress.started_at) <= end)
        .group_by(col(Person.group_id), col(LessonProgress.lesson_id))
    )).all()
    return {(row[0], row[1]): {name: as_int(n) for name, n in zip(columns, row[2:], strict=True)} for row in rows}


async def completions_by_month(session: AsyncSession, in_ward: Any, curriculum: Sequence[str], end: datetime,
                                months: Sequence[Month]) -> dict[tuple[int, bool], int]:
    """Lesson completions of the curriculum in each month, (month index, assisted) → count:
    the rows of the months alone (``completed_at``'s index), each given its month by one CASE."""
    if not months:
        return {}
    at = col(LessonProgress.completed_at)
    month = case(*((at <= m.high, k) for k, m in enumerate(months)), else_=-1)
    rows = (
        select(month.label("month"), case((col(LessonProgress.assisted_by).is_not(None), 1), else_=0).label("helped"))
        .select_from(Person).join(LessonProgress, col(LessonProgress.person_id) == Person.id)
        .where(in_ward, col(Person.created_at) <= end, unindexed(LessonProgress.lesson_id).in_(list(curriculum)),
               LessonProgress.status == ProgressStatus.COMPLETED, col(LessonProgress.started_at) <= end,
               within(at, months[0].low, months[-1].high))
        .subquery()
    )
    # Grouped in an outer query: PostgreSQL would not match the CASE's parameters in GROUP BY.
    counted = await session.exec(select(rows.c.month, rows.c.helped, func.count()).group_by(rows.c.month, rows.c.helped))
    return {(int(k), bool(helped)): int(n) for k, helped, n in counted.all()}


async def finished_by(session: AsyncSession, in_ward: Any, programme: Sequence[str], moments: Sequence[datetime]
                       ) -> dict[datetime, dict[int, int]]:
    """Per moment T and group: members (created by T) who completed every lesson of
    ``programme`` (the curriculum at T) by T. A person's last needed completion is computed
    once; each moment is a column."""
    done = and_(LessonProgress.status == ProgressStatus.COMPLETED, unindexed(LessonProgress.lesson_id).in_(list(programme)))
    person = (
        select(col(Person.group_id).label("group_id"), col(Person.created_at).label("created"),
               func.count().label("done"), func.max(LessonProgress.completed_at).label("moment"))
        .select_from(Person).join(LessonProgress, col(LessonProgress.person_id) == Person.id)
        .where(in_ward, done)
        .group_by(col(Person.id))  # the group and creation follow from the person
        .subquery()
    )
    ats = sorted(set(moments))
    complete = person.c.done == len(programme)
    rows = (await session.exec(
        select(person.c.group_id,
               *(count_if(and_(complete, person.c.moment <= at, person.c.created <= at)) for at in ats))
        .group_by(person.c.group_id)
    )).all()
    result: dict[datetime, dict[int, int]] = {at: {} for at in ats}
    for row in rows:
        for at, n in zip(ats, row[1:], strict=True):
            result[at][row[0]] = as_int(n)
    return result
