"""Report periods in the ward's time zone: half-years, years, months, open starts, and the
mistakes the CLI refuses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.reports.period import Period, PeriodError, Span, parse_day, report_period

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC)


def _period(span: Span | None = None, first: date | None = None, last: date | None = None) -> Period:
    return report_period(span=span, first=first, last=last, now=NOW, zone=ZONE)


def test_half_years_years_and_months_in_local_time() -> None:
    first_half = _period(Span.HALF_YEAR, last=date(2026, 3, 15))
    assert first_half == Period(datetime(2025, 12, 31, 17, tzinfo=UTC), datetime(2026, 6, 30, 17, tzinfo=UTC) - TICK)
    assert _period(Span.HALF_YEAR, last=date(2025, 7, 1)) == \
        Period(_local_midnight(date(2025, 7, 1)), _local_midnight(date(2026, 1, 1)) - TICK)
    assert _period(Span.YEAR, last=date(2025, 5, 5)) == \
        Period(_local_midnight(date(2025, 1, 1)), _local_midnight(date(2026, 1, 1)) - TICK)
    assert _period(Span.MONTH, last=date(2024, 2, 10)) == \
        Period(_local_midnight(date(2024, 2, 1)), _local_midnight(date(2024, 3, 1)) - TICK)  # a leap year


def test_a_period_not_over_yet_ends_now() -> None:
    assert _period(Span.HALF_YEAR) == Period(_local_midnight(date(2026, 7, 1)), NOW)  # today is 22/11/2026
    assert _period(Span.YEAR).end == NOW and _period(last=date(2027, 1, 1)).end == NOW


def test_everything_up_to_a_day_or_now() -> None:
    assert _period() == Period(None, NOW)
    assert _period(Span.ALL) == Period(None, NOW)
    assert _period(Span.ALL, last=date(2026, 6, 30)) == Period(None, _local_midnight(date(2026, 7, 1)) - TICK)
    assert _period(first=date(2026, 1, 1), last=date(2026, 1, 31)) == \
        Period(_local_midnight(date(2026, 1, 1)), _local_midnight(date(2026, 2, 1)) - TICK)


def test_mistakes_are_refused_with_their_reason() -> None:
    cases = [
        (lambda: _period(Span.YEAR, first=date(2026, 1, 1)), "cli.period_conflict"),
        (lambda: _period(first=date(2026, 7, 1), last=date(2026, 6, 1)), "cli.period_order"),
        (lambda: _period(first=date(2027, 1, 1)), "cli.period_future"),
        (lambda: parse_day("2026-13-01"), "cli.date_invalid"),
        (lambda: parse_day("30/06/2026"), "cli.date_invalid"),
    ]
    for call, key in cases:
        with pytest.raises(PeriodError) as caught:
            call()
        assert caught.value.key == key
    assert parse_day(" 2026-06-30 ") == date(2026, 6, 30)
