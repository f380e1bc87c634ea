"""What the ward exports, ready to write or send: the report of a period (workbook and
chart) and the groups' join links for QR codes. Used by the CLI; the chat can use the same."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.curriculum import LessonLibrary
from bot.links import group_link
from bot.reports.chart import completion_chart_png
from bot.reports.wording import translator
from bot.reports.xlsx import WorkbookData, read_workbook, render_workbook
from storage.groups import list_groups
from storage.models import Ward
from storage.report_data import find_ward
from storage.stats import GroupStats, ranking, wards


class UnknownWard(LookupError):
    def __init__(self, code: str, known: Sequence[str]) -> None:
        super().__init__(code)
        self.code, self.known = code, list(known)


@dataclass(frozen=True)
class WardReport:
    ward: Ward
    stats: list[GroupStats]  # as of the period's end, in code order
    workbook: bytes
    chart: bytes | None

    @property
    def members(self) -> int:
        return sum(s.members for s in self.stats)

    @property
    def finished(self) -> int:
        return sum(s.finished for s in self.stats)

    @property
    def rate(self) -> float:
        return 100.0 * self.finished / self.members if self.members else 0.0


async def _ward(session: AsyncSession, code: str) -> Ward:
    ward = await find_ward(session, code=code)
    if ward is None:
        raise UnknownWard(code, [w.code for w in await wards(session)])
    return ward


@dataclass(frozen=True)
class WardReportData:
    """What the ward's report of a period shows, read in a transaction; drawn without one."""

    ward: Ward
    stats: list[GroupStats]  # as of the period's end, in code order
    workbook: WorkbookData


async def read_ward_report(
    session: AsyncSession, *, ward_code: str, lessons: LessonLibrary, start: datetime | None, end: datetime,
) -> WardReportData:
    """The numbers of the ward's report for [start, end]; raises UnknownWard."""
    ward = await _ward(session, ward_code)
    assert ward.id is not None
    workbook = await read_workbook(session, ward_id=ward.id, lessons=lessons, start=start, end=end)
    # The workbook's statistics as of the end are the same call (since = end - 7 days): read once.
    return WardReportData(ward, list(workbook.at_end), workbook)


def render_ward_report(
    data: WardReportData, *, lessons: LessonLibrary, start: datetime | None, end: datetime, zone: ZoneInfo,
    chart: bool, now: datetime,
) -> WardReport:
    """The workbook (made at ``now``) and, if asked, the chart: CPU work, outside any transaction."""
    workbook = render_workbook(data.workbook, lessons=lessons, start=start, end=end, zone=zone, now=now)
    png = None
    if chart:
        t = translator()
        title = t("report.chart_title", ward=data.ward.name, date=end.astimezone(zone).strftime("%d/%m/%Y"))
        png = completion_chart_png(ranking(data.stats), title=title)
    return WardReport(data.ward, data.stats, workbook, png)


async def group_links(
    session: AsyncSession, *, ward_code: str | None, telegram_username: str
) -> list[tuple[str, str, str]]:
    """(code, name, join link) of every group (of one ward), in code order; raises UnknownWard."""
    ward_id = (await _ward(session, ward_code)).id if ward_code is not None else None
    return [(g.code, g.name, group_link(g.code, telegram_username=telegram_username))
            for g in await list_groups(session, ward_id=ward_id)]
