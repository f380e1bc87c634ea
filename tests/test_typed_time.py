"""The one reader of typed times (``bot.typed_time.parse_time``): what it reads, which day it
picks when the day is not written in full, and what it refuses, saying which part."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.i18n import Catalog
from bot.typed_time import TimeError, explain, parse_time
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

WED = datetime(2026, 12, 2, 10, 15, tzinfo=ZONE)  # Wednesday 02/12/2026, 10:15 in the ward
NEW_YEAR_EVE = datetime(2026, 12, 31, 21, 40, tzinfo=ZONE)  # Thursday
FEB = datetime(2027, 2, 27, 9, 0, tzinfo=ZONE)  # Saturday; 2027 is not a leap year


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZONE)


READS = [
    # (now, typed, expected)
    (WED, "2026-12-10 08:00", at(2026, 12, 10, 8)),
    (WED, "2026-12-10T08:00", at(2026, 12, 10, 8)),
    (WED, "  2026-12-10   8:05 ", at(2026, 12, 10, 8, 5)),
    (WED, "10/12 8h", at(2026, 12, 10, 8)),
    (WED, "10/12 8H", at(2026, 12, 10, 8)),
    (WED, "10-12 8h", at(2026, 12, 10, 8)),
    (WED, "10.12 20h", at(2026, 12, 10, 20)),
    (WED, "10/12/2026 8:30", at(2026, 12, 10, 8, 30)),
    (WED, "10/12/26 8:30", at(2026, 12, 10, 8, 30)),
    (WED, "8h30 10/12", at(2026, 12, 10, 8, 30)),
    (WED, "8h 30 10/12", at(2026, 12, 10, 8, 30)),
    (WED, "08h00 ngày 10/12", at(2026, 12, 10, 8)),
    (WED, "8g30 10/12", at(2026, 12, 10, 8, 30)),
    (WED, "lúc 8 giờ 30 phút ngày 10/12", at(2026, 12, 10, 8, 30)),
    (WED, "8 giờ rưỡi sáng 10/12", at(2026, 12, 10, 8, 30)),
    (WED, "9 giờ kém 15 sáng mai", at(2026, 12, 3, 8, 45)),
    (WED, "ngày 10 tháng 12 lúc 8h", at(2026, 12, 10, 8)),
    (WED, "ngày 10 tháng 12 năm 2026 8h", at(2026, 12, 10, 8)),
    (WED, "8 giờ sáng mai", at(2026, 12, 3, 8)),
    (WED, "8 gio sang mai", at(2026, 12, 3, 8)),
    (WED, "8 GIỜ SÁNG MAI", at(2026, 12, 3, 8)),
    (WED, "sáng mai 8h", at(2026, 12, 3, 8)),
    (WED, "8h ngày mai", at(2026, 12, 3, 8)),
    (WED, "8h sáng mốt", at(2026, 12, 4, 8)),
    (WED, "8h ngày kia", at(2026, 12, 4, 8)),
    (WED, "8h tối nay", at(2026, 12, 2, 20)),
    (WED, "8h toi nay", at(2026, 12, 2, 20)),
    (WED, "20h hôm nay", at(2026, 12, 2, 20)),
    (WED, "20h hom nay", at(2026, 12, 2, 20)),
    (WED, "20h tối nay", at(2026, 12, 2, 20)),
    (WED, "3 giờ chiều nay", at(2026, 12, 2, 15)),
    (WED, "3h chieu", at(2026, 12, 2, 15)),
    (WED, "12h trưa nay", at(2026, 12, 2, 12)),
    (WED, "1 giờ trưa mai", at(2026, 12, 3, 13)),
    (WED, "10 giờ đêm nay", at(2026, 12, 2, 22)),
    (WED, "8pm", at(2026, 12, 2, 20)),
    (WED, "8h30p mai", at(2026, 12, 3, 8, 30)),
    (WED, "12h đêm nay", at(2026, 12, 3, 0)),  # midnight tonight
    (WED, "12 giờ tối thứ bảy", at(2026, 12, 6, 0)),
    (WED, "0h mai", at(2026, 12, 3, 0)),
    (WED, "23:59", at(2026, 12, 2, 23, 59)),
    (WED, "Thứ Hai 9h", at(2026, 12, 7, 9)),
    (WED, "10/12, 8h", at(2026, 12, 10, 8)),
    (WED, "8h sáng ngày 10 tháng 12", at(2026, 12, 10, 8)),
    (WED, "10:15", at(2026, 12, 2, 10, 15)),  # this very minute: now
    (WED, "20:30", at(2026, 12, 2, 20, 30)),  # no day: the next one ahead, today
    (WED, "9h", at(2026, 12, 3, 9)),  # 9:00 today is gone: tomorrow
    (WED, "9 giờ sáng thứ hai", at(2026, 12, 7, 9)),
    (WED, "9 gio sang thu hai", at(2026, 12, 7, 9)),
    (WED, "9h thứ 2", at(2026, 12, 7, 9)),
    (WED, "T2 9h", at(2026, 12, 7, 9)),
    (WED, "7h tối thứ bảy", at(2026, 12, 5, 19)),
    (WED, "8h chủ nhật", at(2026, 12, 6, 8)),
    (WED, "8h CN", at(2026, 12, 6, 8)),
    (WED, "thứ tư 15h", at(2026, 12, 2, 15)),  # today, still ahead
    (WED, "thứ tư 8h", at(2026, 12, 9, 8)),  # today's 8:00 is gone: next Wednesday
    (WED, "thứ năm 8h", at(2026, 12, 3, 8)),
    (WED, "9h thứ hai tuần sau", at(2026, 12, 7, 9)),
    (WED, "9h thứ tư tuần tới", at(2026, 12, 9, 9)),
    (WED, "9h thứ sáu tuần này", at(2026, 12, 4, 9)),
    (WED, "2/12 11h", at(2026, 12, 2, 11)),  # today's date, later today
    # A date without a year: the next such date, over the year's end.
    (WED, "1/1 8h", at(2027, 1, 1, 8)),
    (WED, "15/3 8h", at(2027, 3, 15, 8)),
    (WED, "1/12 8h", at(2027, 12, 1, 8)),  # yesterday's date: next year's
    (NEW_YEAR_EVE, "8h sáng mai", at(2027, 1, 1, 8)),
    (NEW_YEAR_EVE, "2/1 7h", at(2027, 1, 2, 7)),
    (NEW_YEAR_EVE, "21h45", at(2026, 12, 31, 21, 45)),
    (NEW_YEAR_EVE, "21h", at(2027, 1, 1, 21)),
    (NEW_YEAR_EVE, "8h thứ hai", at(2027, 1, 4, 8)),
    (FEB, "8h mai", at(2027, 2, 28, 8)),
    (FEB, "8h ngày mốt", at(2027, 3, 1, 8)),  # over a 28-day February
    (FEB, "29/02 8h", at(2028, 2, 29, 8)),  # the next 29 February
]


@pytest.mark.parametrize(("now", "typed", "expected"), READS, ids=[r[1] for r in READS])
def test_reads(now: datetime, typed: str, expected: datetime) -> None:
    got = parse_time(typed, now=now.astimezone(UTC), zone=ZONE)
    assert got == expected and got.utcoffset() == expected.utcoffset()


def test_an_offset_written_is_kept() -> None:
    got = parse_time("2026-12-10T08:00+00:00", now=WED, zone=ZONE)
    assert got == datetime(2026, 12, 10, 8, tzinfo=UTC) == at(2026, 12, 10, 15)


REFUSALS = [
    # (now, typed, key, values)
    (WED, "", "time.empty", {}),
    (WED, "   ", "time.empty", {}),
    (WED, "ngày mai", "time.no_hour", {"part": "ngày mai"}),
    (WED, "thứ hai", "time.no_hour", {"part": "thứ hai"}),
    (WED, "10/12", "time.no_hour", {"part": "10/12"}),
    (WED, "tối nay", "time.no_hour", {"part": "tối nay"}),
    (WED, "abc", "time.unknown", {"part": "abc"}),
    (WED, "10/12 8h kia nhé", "time.unknown", {"part": "kia"}),
    (WED, "10/12 8h ???", "time.unknown", {"part": "???"}),
    (WED, "8 10/12", "time.unknown", {"part": "8"}),
    (WED, "24:00 10/12", "time.bad_hour", {"part": "24:00"}),
    (WED, "10/12 24h", "time.bad_hour", {"part": "24h"}),
    (WED, "10/12 8:60", "time.bad_hour", {"part": "8:60"}),
    (WED, "10/12 8h75", "time.bad_hour", {"part": "8h75"}),
    (WED, "25 giờ mai", "time.bad_hour", {"part": "25 giờ"}),
    (WED, "31/02 8h", "time.bad_date", {"part": "31/02"}),
    (WED, "31/02/2027 8h", "time.bad_date", {"part": "31/02/2027"}),
    (WED, "29/02/2027 8h", "time.bad_date", {"part": "29/02/2027"}),
    (WED, "2026-02-30 08:00", "time.bad_date", {"part": "2026-02-30"}),
    (WED, "31/11 8h", "time.bad_date", {"part": "31/11"}),
    (WED, "0/12 8h", "time.bad_date", {"part": "0/12"}),
    (WED, "10/13 8h", "time.bad_date", {"part": "10/13"}),
    (WED, "ngày 31 tháng 4 8h", "time.bad_date", {"part": "ngày 31 tháng 4"}),
    (WED, "8h mai 10/12", "time.two_days", {"first": "mai", "second": "10/12"}),
    (WED, "8h 9h mai", "time.two_hours", {"first": "8h", "second": "9h"}),
    (WED, "20h sáng mai", "time.period_mismatch", {"part": "20h", "period": "sáng"}),
    (WED, "0h chiều mai", "time.period_mismatch", {"part": "0h", "period": "chiều"}),
    (WED, "13 giờ sáng mai", "time.period_mismatch", {"part": "13 giờ", "period": "sáng"}),
    (WED, "8h tuần sau", "time.week_needs_day", {}),
    # The past, with or without a year.
    (WED, "8h hôm nay", "time.past", {"when": "08:00 02/12/2026", "now": "10:15 02/12/2026"}),
    (WED, "2/12 8h", "time.past", {"when": "08:00 02/12/2026", "now": "10:15 02/12/2026"}),  # never next year
    (WED, "10h14 hôm nay", "time.past", {"when": "10:14 02/12/2026", "now": "10:15 02/12/2026"}),
    (WED, "2026-12-01 08:00", "time.past", {"when": "08:00 01/12/2026", "now": "10:15 02/12/2026"}),
    (WED, "1/12/2026 20h", "time.past", {"when": "20:00 01/12/2026", "now": "10:15 02/12/2026"}),
    (WED, "8h hôm qua", "time.past", {"when": "08:00 01/12/2026", "now": "10:15 02/12/2026"}),
    (WED, "9h thứ hai tuần này", "time.past", {"when": "09:00 30/11/2026", "now": "10:15 02/12/2026"}),
    (WED, "2026-12-02T03:00+00:00", "time.past", {"when": "10:00 02/12/2026", "now": "10:15 02/12/2026"}),
]


@pytest.mark.parametrize(("now", "typed", "key", "values"), REFUSALS, ids=[r[1] or "empty" for r in REFUSALS])
def test_refusals_say_which_part(now: datetime, typed: str, key: str, values: dict[str, str]) -> None:
    with pytest.raises(TimeError) as caught:
        parse_time(typed, now=now, zone=ZONE)
    assert (caught.value.key, caught.value.values) == (key, values)


def test_a_refusal_reads_as_a_sentence_with_examples(catalog: Catalog) -> None:
    with pytest.raises(TimeError) as caught:
        parse_time("31/02 8h", now=WED, zone=ZONE)
    text = explain(catalog.translator(None), caught.value)
    assert text == ("Ngày «31/02» không có trong lịch. Ví dụ: 10/12 8h · 8 giờ sáng mai · 20h hôm nay · "
                    "9 giờ sáng thứ hai · 2026-12-10 08:00.")
