"""One reader of a typed date and time, for the chat's composer and ``hocvuso broadcast send --at``.

What it reads, with or without diacritics, in any order ("8h30 10/12" = "10/12 8h30"):

- days: ``2026-12-10`` · ``10/12/2026`` · ``10/12/26`` · ``10/12`` · ``10-12`` · ``ngày 10 tháng 12
  [năm 2026]`` · ``hôm nay`` / ``nay`` · ``mai`` / ``ngày mai`` · ``ngày mốt`` / ``ngày kia`` ·
  ``thứ hai`` … ``thứ bảy``, ``thứ 2`` … ``thứ 7``, ``T2`` … ``T7``, ``chủ nhật`` / ``CN``, optionally
  ``tuần sau`` / ``tuần tới`` (the week after this one) or ``tuần này``;
- hours: ``08:00`` · ``8h`` · ``8h30`` · ``8 giờ`` · ``8 giờ 30 [phút]`` · ``8 giờ rưỡi`` ·
  ``9 giờ kém 15`` · ``8g30``; a part of the day: ``sáng``, ``trưa``, ``chiều``, ``tối``, ``đêm``
  (``chiều``/``tối`` add 12 hours to 1–11: "8h tối" is 20:00; "12 giờ đêm/tối" is midnight,
  00:00 of the next day), ``am``/``pm``;
- an ISO time with an offset (``2026-12-10T08:00+07:00``), for scripts.

Which day, when it is not written in full (time is an input: ``now``, never the wall clock):

- a date without a year is the next such date from today (on 20/12, "1/1" is next year's);
  today's date with an hour already gone is refused as past, never moved a year ahead;
- a weekday, or an hour with no day at all, is the nearest one still ahead (today's if its
  hour has not passed, else next week's, or tomorrow's);
- anything in the past (before the current minute) is refused.

What it cannot read it refuses with :class:`TimeError`: a catalogue key saying which part
is wrong (``time.*``) and its values; :func:`explain` turns it into the sentence people read,
with examples.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.i18n import Translate

PERIODS = {"sang": "sáng", "trua": "trưa", "chieu": "chiều", "toi": "tối", "dem": "đêm", "am": "sáng", "pm": "chiều"}
WEEKDAYS = {"hai": 0, "ba": 1, "tu": 2, "nam": 3, "sau": 4, "bay": 5}  # "thứ hai" is Monday
FILLERS = {"luc", "vao", "buoi", "ngay", "gui", "khoang", "cua", "va", "den"}
_ISO = re.compile(r"\s*\d{4}-\d{2}-\d{2}[t ]\d{1,2}:\d{2}(:\d{2})?(z|[+-]\d{2}:?\d{2})\s*", re.IGNORECASE)
_ISO_T = re.compile(r"(\d{4}-\d{1,2}-\d{1,2})t(\d)")
_TOKENS = re.compile(
    r"(?P<iso>\d{4}-\d{1,2}-\d{1,2})(?![\d/.-])"
    r"|(?P<dmy>\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?)(?![\d/.-])"
    r"|(?P<clock>\d{1,2}:\d{2})(?::\d{2})?(?![\d:])"
    r"|(?P<hx>\d{1,2})[hg](?P<hxm>\d{1,2})?(?:p|ph|phut)?(?![a-z\d])"
    r"|(?P<weekday>t[2-7]|cn)(?![a-z\d])"
    r"|(?P<num>\d+)"
    r"|(?P<word>[a-z]+)"
    r"|(?P<other>[^\s,;]+)"
)


class TimeError(ValueError):
    """A typed time that cannot be used: ``key`` (a ``time.*`` text) and its ``values``."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key, values)
        self.key = key
        self.values = values


def explain(t: Translate, error: TimeError) -> str:
    """What is wrong, then examples of what works."""
    return f"{t(error.key, **error.values)} {t('time.examples')}"


@dataclass
class _Token:
    kind: str
    text: str  # as typed
    folded: str
    groups: dict[str, str | None]


def _fold(text: str) -> str:
    """Lower case without diacritics, one character for one (so positions map back)."""
    out = []
    for c in text:
        if c in "đĐ":
            out.append("d")
            continue
        base = unicodedata.normalize("NFD", c)[0].lower()
        out.append(base if len(base) == 1 else c)
    return "".join(out)


def _tokens(text: str) -> list[_Token]:
    folded = _ISO_T.sub(r"\1 \2", _fold(text))  # "2026-12-10T08:00": the T is a space
    found = []
    for match in _TOKENS.finditer(folded):
        kind = match.lastgroup or "other"
        if kind == "hxm":
            kind = "hx"
        if match.group("hx") is not None:
            kind = "hx"
        found.append(_Token(kind, text[match.start():match.end()], match.group(0), match.groupdict()))
    return found


@dataclass
class _Reading:
    day: date | None = None  # a full date
    month_day: tuple[int, int] | None = None  # a date without a year
    offset: int | None = None  # days from today
    weekday: int | None = None
    week: int | None = None  # 0 this week, 1 next week (with a weekday)
    day_text: str = ""
    hour: int | None = None
    minute: int = 0
    hour_text: str = ""
    period: str | None = None
    period_text: str = ""

    def set_day(self, text: str, **what: Any) -> None:
        if self.day_text and self.day_text != text:
            raise TimeError("time.two_days", first=self.day_text, second=text)
        self.day_text = text
        for name, value in what.items():
            setattr(self, name, value)

    def set_hour(self, text: str, hour: int, minute: int) -> None:
        if self.hour is not None:
            raise TimeError("time.two_hours", first=self.hour_text, second=text)
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise TimeError("time.bad_hour", part=text)
        self.hour, self.minute, self.hour_text = hour, minute, text


def _int(value: str | None) -> int:
    return int(value) if value else 0


def _full_date(text: str, year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise TimeError("time.bad_date", part=text) from None


def _read(tokens: list[_Token]) -> _Reading:  # noqa: C901 - one reading of a short sentence
    r = _Reading()
    i = 0

    def word(at: int) -> str | None:
        return tokens[at].folded if at < len(tokens) and tokens[at].kind in ("word", "num") else None

    def joined(start: int, end: int) -> str:
        return " ".join(tok.text for tok in tokens[start:end])

    while i < len(tokens):
        tok = tokens[i]
        g = tok.groups
        if tok.kind == "iso":
            y, m, d = (int(x) for x in tok.folded.split("-"))
            r.set_day(tok.text, day=_full_date(tok.text, y, m, d))
        elif tok.kind == "dmy":
            parts = [int(x) for x in re.split(r"[/.-]", tok.folded)]
            if len(parts) == 3:
                year = parts[2] + 2000 if parts[2] < 100 else parts[2]
                r.set_day(tok.text, day=_full_date(tok.text, year, parts[1], parts[0]))
            else:
                _full_date(tok.text, 2000, parts[1], parts[0])  # 2000: a leap year, 29/02 is a date
                r.set_day(tok.text, month_day=(parts[1], parts[0]))
        elif tok.kind == "clock":
            hour, minute = (int(x) for x in tok.folded.split(":")[:2])
            r.set_hour(tok.text, hour, minute)
        elif tok.kind == "hx":
            hour, minute, end = int(g["hx"] or 0), _int(g["hxm"]), i + 1
            minute, end = _minutes(tokens, end, minute, given=bool(g["hxm"]))
            hour, minute = _kem(tokens, end, hour, minute, joined(i, end))
            end = _kem_end(tokens, end)
            r.set_hour(joined(i, end), hour, minute)
            i = end
            continue
        elif tok.kind == "num" and word(i + 1) in ("gio", "g"):
            hour, end = int(tok.folded), i + 2
            minute, end = _minutes(tokens, end, 0, given=False)
            hour, minute = _kem(tokens, end, hour, minute, joined(i, end))
            end = _kem_end(tokens, end)
            r.set_hour(joined(i, end), hour, minute)
            i = end
            continue
        elif tok.kind == "num" and word(i + 1) in ("am", "pm"):
            r.set_hour(tok.text, int(tok.folded), 0)
            r.period, r.period_text = tokens[i + 1].folded, tokens[i + 1].text
            i += 2
            continue
        elif tok.kind == "weekday":
            number = 6 if tok.folded == "cn" else int(tok.folded[1]) - 2
            r.set_day(tok.text, weekday=number)
        elif tok.folded == "thu" and (word(i + 1) in WEEKDAYS or word(i + 1) in tuple("234567")):
            nxt = tokens[i + 1].folded
            r.set_day(joined(i, i + 2), weekday=WEEKDAYS[nxt] if nxt in WEEKDAYS else int(nxt) - 2)
            i += 2
            continue
        elif tok.folded == "chu" and word(i + 1) == "nhat":
            r.set_day(joined(i, i + 2), weekday=6)
            i += 2
            continue
        elif tok.folded == "tuan" and word(i + 1) in ("sau", "toi", "nay", "nua"):
            r.week = 0 if tokens[i + 1].folded == "nay" else 1
            i += 2
            continue
        elif tok.folded == "ngay" and tokens[i + 1:i + 2] and tokens[i + 1].kind == "num" and word(i + 2) == "thang" \
                and i + 3 < len(tokens) and tokens[i + 3].kind == "num":
            d, m, end = int(tokens[i + 1].folded), int(tokens[i + 3].folded), i + 4
            if word(end) == "nam" and end + 1 < len(tokens) and tokens[end + 1].kind == "num":
                y = int(tokens[end + 1].folded)
                r.set_day(joined(i, end + 2), day=_full_date(joined(i, end + 2), y, m, d))
                i = end + 2
                continue
            _full_date(joined(i, end), 2000, m, d)
            r.set_day(joined(i, end), month_day=(m, d))
            i = end
            continue
        elif tok.folded == "hom" and word(i + 1) in ("nay", "qua"):
            r.set_day(joined(i, i + 2), offset=0 if tokens[i + 1].folded == "nay" else -1)
            i += 2
            continue
        elif tok.folded == "nay":
            r.set_day(tok.text, offset=0)
        elif tok.folded == "mai":
            r.set_day(tok.text, offset=1)
        elif tok.folded in ("mot", "kia") and i > 0 and tokens[i - 1].folded in ("ngay", *PERIODS):
            r.set_day(tok.text, offset=2)
        elif tok.folded in PERIODS:
            if r.period is not None and r.period != tok.folded:
                raise TimeError("time.two_hours", first=r.period_text, second=tok.text)
            r.period, r.period_text = tok.folded, tok.text
        elif tok.folded in FILLERS or tok.folded in ("-", "."):
            pass
        else:
            raise TimeError("time.unknown", part=tok.text)
        i += 1
    return r


def _minutes(tokens: list[_Token], at: int, minute: int, *, given: bool) -> tuple[int, int]:
    """After an hour: "30", "30 phút", "rưỡi" (the minutes), or nothing."""
    if at < len(tokens) and tokens[at].folded == "ruoi" and not given:
        return 30, at + 1
    if not given and at < len(tokens) and tokens[at].kind == "num" and len(tokens[at].folded) <= 2:
        minute, at = int(tokens[at].folded), at + 1
        if at < len(tokens) and tokens[at].folded in ("phut", "p"):
            at += 1
        return minute, at
    if given and at < len(tokens) and tokens[at].folded in ("phut", "p"):
        at += 1
    return minute, at


def _kem(tokens: list[_Token], at: int, hour: int, minute: int, text: str) -> tuple[int, int]:
    """"9 giờ kém 15": a quarter to nine."""
    if at + 1 < len(tokens) and tokens[at].folded == "kem" and tokens[at + 1].kind == "num" and minute == 0:
        less = int(tokens[at + 1].folded)
        if not 0 < less < 60 or hour == 0:
            raise TimeError("time.bad_hour", part=f"{text} {tokens[at].text} {tokens[at + 1].text}")
        return hour - 1, 60 - less
    return hour, minute


def _kem_end(tokens: list[_Token], at: int) -> int:
    if at + 1 < len(tokens) and tokens[at].folded == "kem" and tokens[at + 1].kind == "num":
        at += 2
        if at < len(tokens) and tokens[at].folded in ("phut", "p"):
            at += 1
    return at


def _hour_of_day(r: _Reading) -> tuple[int, int]:
    """The hour on a 24-hour clock, by the part of the day written with it, and the days it
    moves the date: "12 giờ đêm nay" is midnight, 00:00 of tomorrow."""
    if r.hour == 12 and r.period in ("toi", "dem"):
        return 0, 1
    return _hour(r), 0


def _hour(r: _Reading) -> int:
    assert r.hour is not None
    hour, period = r.hour, r.period
    mismatch = TimeError("time.period_mismatch", part=r.hour_text, period=r.period_text)
    if period in ("sang", "am"):
        if hour > 12:
            raise mismatch
        return 0 if hour == 12 and period == "am" else hour
    if period in ("chieu", "toi", "pm"):
        if hour == 0:
            raise mismatch
        return hour + 12 if 1 <= hour <= 11 else hour
    if period == "trua":
        if 1 <= hour <= 2:
            return hour + 12
        if hour not in (11, 12, 13, 14):
            raise mismatch
        return hour
    if period == "dem":
        if 6 <= hour <= 11:
            return hour + 12
        if 12 <= hour <= 17:
            raise mismatch
        return hour
    return hour


def parse_time(text: str, *, now: datetime, zone: ZoneInfo) -> datetime:
    """The moment ``text`` names, in ``zone`` (the ward's time), never before ``now``'s minute.
    Raises :class:`TimeError` saying which part it could not read (the module has the rules)."""
    local_now = now.astimezone(zone)
    floor = local_now.replace(second=0, microsecond=0)
    if not text.strip():
        raise TimeError("time.empty")
    if _ISO.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.strip().replace("T", " ").replace("t", " ").replace("Z", "+00:00")
                                            .replace("z", "+00:00"))
        except ValueError:
            raise TimeError("time.bad_date", part=text.strip()) from None
        if moment < floor:
            raise TimeError("time.past", when=_shown(moment.astimezone(zone)), now=_shown(local_now))
        return moment
    r = _read(_tokens(text))
    if r.hour is None:
        raise TimeError("time.no_hour", part=text.strip()) if (r.day_text or r.period_text) \
            else TimeError("time.unknown", part=text.strip())
    if r.week is not None and r.weekday is None:
        raise TimeError("time.week_needs_day")
    hour, days_after = _hour_of_day(r)
    clock = time(hour, r.minute)
    today = local_now.date()

    def at(day: date) -> datetime:
        return datetime.combine(day + timedelta(days=days_after), clock, tzinfo=zone)

    if r.day is not None:
        moment = at(r.day)
    elif r.month_day is not None:
        month, day = r.month_day
        moment = next(at(d) for d in _dates(month, day, from_year=today.year) if d >= today)
    elif r.offset is not None:
        moment = at(today + timedelta(days=r.offset))
    elif r.weekday is not None:
        if r.week is not None:
            monday = today - timedelta(days=today.weekday()) + timedelta(weeks=r.week)
            moment = at(monday + timedelta(days=r.weekday))
        else:
            ahead = today + timedelta(days=(r.weekday - today.weekday()) % 7)
            moment = at(ahead) if at(ahead) >= floor else at(ahead + timedelta(days=7))
    else:
        moment = at(today) if at(today) >= floor else at(today + timedelta(days=1))
    if moment < floor:
        raise TimeError("time.past", when=_shown(moment), now=_shown(local_now))
    return moment


def _dates(month: int, day: int, *, from_year: int):  # type: ignore[no-untyped-def]
    """``day``/``month`` in ``from_year`` and the years after it where it exists (29/02)."""
    for year in range(from_year, from_year + 9):
        try:
            yield date(year, month, day)
        except ValueError:
            continue


def _shown(moment: datetime) -> str:
    return moment.strftime("%H:%M %d/%m/%Y")
