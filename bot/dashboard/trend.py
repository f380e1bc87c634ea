"""The overview's trend chart: lesson completions per week over the last ``WEEKS`` weeks, for
the viewer's scope (a ward, or the groups a leader leads).

The counts come from ``storage.figure_queries.completions_by_month`` — the query behind the
report's trend chart (``bot.reports.chart``), given weeks instead of months: one aggregate,
the same definition (completions of the curriculum now, self and assisted apart). The chart
is an inline SVG drawn from this module's geometry by the template (no script, no image
file), with a text summary and a data table for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.curriculum import LessonLibrary
from storage.figure_queries import TICK, Month, completions_by_month
from storage.models import Person, ResidentGroup
from storage.planner import unindexed

WEEKS = 12
# The drawing's box (SVG units; it scales to the page's width).
WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 640, 240, 24, 40, 8


@dataclass(frozen=True)
class Week:
    start: date  # its Monday, in the ward's time
    completed_self: int
    completed_assisted: int

    @property
    def total(self) -> int:
        return self.completed_self + self.completed_assisted

    @property
    def label(self) -> str:
        return f"{self.start.day:02d}/{self.start.month:02d}"


@dataclass(frozen=True)
class Bar:
    """One week's bar in the drawing's units: the self part below, the assisted part on top."""

    week: Week
    x: float
    width: float
    self_y: float
    self_height: float
    assisted_y: float
    assisted_height: float
    label_x: float


@dataclass(frozen=True)
class Trend:
    weeks: list[Week]  # oldest first; the last is this week, up to now

    @property
    def total(self) -> int:
        return sum(w.total for w in self.weeks)

    @property
    def peak(self) -> int:
        return max((w.total for w in self.weeks), default=0)

    def bars(self) -> list[Bar]:
        slot = (WIDTH - 2 * LEFT) / max(len(self.weeks), 1)
        usable = HEIGHT - TOP - BOTTOM
        scale = usable / self.peak if self.peak else 0.0
        bars = []
        for i, week in enumerate(self.weeks):
            x = LEFT + i * slot + slot * 0.15
            self_height = week.completed_self * scale
            assisted_height = week.completed_assisted * scale
            base = HEIGHT - BOTTOM
            bars.append(Bar(week, round(x, 1), round(slot * 0.7, 1), round(base - self_height, 1),
                            round(self_height, 1), round(base - self_height - assisted_height, 1),
                            round(assisted_height, 1), round(x + slot * 0.35, 1)))
        return bars

    @property
    def geometry(self) -> dict[str, int]:
        return {"width": WIDTH, "height": HEIGHT, "base": HEIGHT - BOTTOM, "label": HEIGHT - BOTTOM + 18}


def weeks_until(now: datetime, zone: ZoneInfo, count: int = WEEKS) -> list[Month]:
    """The ``count`` weeks (Monday to Sunday, in the ward's time) up to ``now``'s, the last cut at ``now``."""
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    weeks = []
    for k in range(count - 1, -1, -1):
        start = monday - timedelta(weeks=k)
        low = datetime(start.year, start.month, start.day, tzinfo=zone).astimezone(UTC)
        following = start + timedelta(weeks=1)
        high = datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC) - TICK
        weeks.append(Month(start, low, min(high, now)))
    return weeks


async def read_trend(
    session: AsyncSession, *, lessons: LessonLibrary, zone: ZoneInfo, now: datetime,
    ward_id: int | None = None, group_ids: Sequence[int] | None = None,
) -> Trend:
    """Completions per week of a ward (``ward_id``) or of some groups (``group_ids``)."""
    if ward_id is not None:
        scope = unindexed(Person.group_id).in_(select(ResidentGroup.id).where(ResidentGroup.ward_id == ward_id))
    else:
        scope = unindexed(Person.group_id).in_(list(group_ids or [-1]))
    weeks = weeks_until(now, zone)
    counts = await completions_by_month(session, scope, lessons.curriculum_at(now, zone), now, weeks)
    return Trend([Week(w.month, counts.get((k, False), 0), counts.get((k, True), 0)) for k, w in enumerate(weeks)])
