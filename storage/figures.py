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
The previous period is the period of the same length just before ``start``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from storage.models import Ward
from storage.report_data import WardBroadcast


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
