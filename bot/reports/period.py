"""Report periods in the ward's time zone: a day runs from 00:00 to 23:59:59.999999 local
time, and a period never ends after "now" (the numbers are as of its end)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Span(StrEnum):
    HALF_YEAR = "6m"  # 1/1–30/6 or 1/7–31/12: the 6-month report
    YEAR = "year"  # the annual report
    MONTH = "month"
    ALL = "all"  # from the beginning


class PeriodError(ValueError):
    """A period that cannot be; ``key`` and ``values`` name the catalogue text that says why."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key, self.values = key, values


@dataclass(frozen=True)
class Period:
    start: datetime | None  # None: from the beginning
    end: datetime


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def day_end(day: date, zone: ZoneInfo) -> datetime:
    return day_start(day + timedelta(days=1), zone) - timedelta(microseconds=1)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError("cli.date_invalid", value=text) from None


def report_period(*, span: Span | None, first: date | None, last: date | None, now: datetime,
                  zone: ZoneInfo) -> Period:
    """The period for ``--period`` / ``--from`` / ``--to``. A span is the one containing
    ``last`` (or today); with neither, everything up to ``last`` (or now)."""
    if span is not None and first is not None:
        raise PeriodError("cli.period_conflict")
    anchor = last or now.astimezone(zone).date()
    if span == Span.HALF_YEAR:
        first, last = (date(anchor.year, 1, 1), date(anchor.year, 6, 30)) if anchor.month <= 6 else \
            (date(anchor.year, 7, 1), date(anchor.year, 12, 31))
    elif span == Span.YEAR:
        first, last = date(anchor.year, 1, 1), date(anchor.year, 12, 31)
    elif span == Span.MONTH:
        first = anchor.replace(day=1)
        last = anchor.replace(day=calendar.monthrange(anchor.year, anchor.month)[1])
    if first is not None and last is not None and first > last:
        raise PeriodError("cli.period_order", start=first.isoformat(), end=last.isoformat())
    start = day_start(first, zone) if first is not None else None
    end = min(day_end(last, zone), now) if last is not None else now
    if start is not None and start > end:
        raise PeriodError("cli.period_future", start=first.isoformat())  # type: ignore[union-attr]
    return Period(start, end)


# The periods an admin picks from a menu (the chat's report menu, the web dashboard's report
# page): choice → its span, and the day the span is anchored on (None: today).
CHOICES = ("month", "6m", "year", "p6m", "pyear", "all")


def chosen_period(choice: str, *, now: datetime, zone: ZoneInfo) -> tuple[Span | None, Period]:
    """The period of a menu choice, through :func:`report_period` (the same period gives the
    same files as ``hocvuso report``): this month, half-year or year up to now, the previous
    half-year or year in full, or everything. Raises KeyError for another choice."""
    if choice not in CHOICES:
        raise KeyError(choice)
    local = now.astimezone(zone).date()
    last: date | None = None
    span = {"month": Span.MONTH, "6m": Span.HALF_YEAR, "year": Span.YEAR, "p6m": Span.HALF_YEAR,
            "pyear": Span.YEAR}.get(choice)
    if choice == "p6m":
        last = date(local.year, 6, 30) if local.month > 6 else date(local.year - 1, 12, 31)
    elif choice == "pyear":
        last = date(local.year - 1, 12, 31)
    return span, report_period(span=span, first=None, last=last, now=now, zone=zone)
