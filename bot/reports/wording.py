"""The reports' words: the default (Vietnamese) catalogue, and how dates, audiences and
competence areas are written in them. Ward reports are in Vietnamese whatever language a
resident chose, so the builders take no locale."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.i18n import Catalog, Translate
from bot.curriculum.schema import Competence

COMPETENCE_TEXT = {
    Competence.DATA: "report.competence_data",
    Competence.COMMUNICATION: "report.competence_communication",
    Competence.CONTENT: "report.competence_content",
    Competence.SAFETY: "report.competence_safety",
    Competence.PROBLEM_SOLVING: "report.competence_problem_solving",
    Competence.AI: "report.competence_ai",
}


@cache
def catalog() -> Catalog:
    return Catalog.load()


def translator() -> Translate:
    return catalog().translator(None)


def day(value: date) -> str:
    """dd/mm/yyyy, as Vietnamese documents write dates."""
    return value.strftime("%d/%m/%Y")


def local_time(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%H:%M %d/%m/%Y")


def audience_words(audience: dict[str, Any]) -> str:
    t = translator()
    kind = audience.get("kind")
    if kind == "all":
        return t("report.audience_all")
    if kind == "groups":
        return t("report.audience_groups", codes=", ".join(audience.get("codes", [])))
    if kind == "not_completed":
        return t("report.audience_not_completed", lesson=audience.get("lesson", "?"))
    if kind == "leaders":
        return t("report.audience_leaders")
    return str(kind)  # a kind added later still shows as what it is


def number(value: int) -> str:
    """A count as Vietnamese documents write it: 50.000 (a dot groups the thousands)."""
    return f"{value:,}".replace(",", ".")


def percent(value: float) -> str:
    """A share as Vietnamese documents write it: 45,5% (a decimal comma, one decimal)."""
    return f"{value:.1f}".replace(".", ",") + "%"


def points(value: float) -> str:
    """Percentage points with their sign: +12,5 / -3,0 / 0,0."""
    shown = f"{abs(value):.1f}".replace(".", ",")
    return shown if shown == "0,0" else ("+" if value > 0 else "-") + shown


def document_date(value: date) -> str:
    """"ngày 02 tháng 12 năm 2026": day and months 1–2 with a leading zero (Nghị định 30/2020)."""
    month = f"{value.month:02d}" if value.month < 3 else str(value.month)
    return translator()("wording.document_date", day=f"{value.day:02d}", month=month, year=value.year)


def period_words(span: str | None, start: datetime | None, end: datetime, zone: ZoneInfo) -> str:
    """What the period is called in a title: "6 tháng đầu năm 2026", "năm 2026", "tháng 5 năm
    2026"; a period typed as dates reads "từ ngày … đến ngày …". ``span`` is a
    ``bot.reports.period.Span`` value (None: dates given)."""
    t = translator()
    last = end.astimezone(zone).date()
    if span == "year":
        return t("wording.period_year", year=last.year)
    if span == "6m":
        key = "wording.period_first_half" if last.month <= 6 else "wording.period_second_half"
        return t(key, year=last.year)
    if span == "month":
        return t("wording.period_month", month=last.month, year=last.year)
    if start is None:
        return t("wording.period_up_to", end=day(last))
    return t("wording.period_between", start=day(start.astimezone(zone).date()), end=day(last))


KINDS = ("Đặc khu", "Phường", "Xã", "Thị trấn")  # the local units a ward's name starts with


def place_name(ward_name: str) -> str:
    """The place a document is dated at: the ward's name without its kind ("Phường Hà Đông" →
    "Hà Đông"), as "Hà Đông, ngày … tháng … năm …" writes it."""
    words = ward_name.split()
    for kind in KINDS:
        size = len(kind.split())
        if len(words) > size and [w.casefold() for w in words[:size]] == kind.casefold().split():
            return " ".join(words[size:])
    return ward_name
