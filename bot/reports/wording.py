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
