"""The ward's XLSX report for a period (the 6-month and annual reports).

Group numbers come from ``storage.stats.group_stats`` — the same numbers leaders and admins
see in the chat. State numbers (members, started, completed the programme, rate) are as of
the period's end; "in the period" counts lesson completions between its start and end
(the difference of the statistics at both ends). Assisted completions are never mixed
into self completions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet as Worksheet
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.broadcasting import STATUS_TEXT
from bot.core.i18n import Translate
from bot.curriculum import LessonLibrary
from bot.reports.sheets import Column, cell, stream_table
from bot.reports.wording import COMPETENCE_TEXT, audience_words, local_time, translator
from storage.models import Ward
from storage.report_data import (
    AssistedRow, Mark, ResidentRow, WardBroadcast, assisted_completions, residents_progress, ward_broadcasts,
)
from storage.stats import GroupStats, group_stats

WEEK = timedelta(days=7)
TICK = timedelta(microseconds=1)  # the instant just before the period starts
PERCENT = "0.0"
CHANGE = "+0.0;-0.0;0.0"
COUNT = "0"


@dataclass(frozen=True)
class Counts:
    """Lesson completions, self and assisted, kept apart."""

    self: int = 0
    assisted: int = 0


def _completions(stats: GroupStats, lesson_id: str | None = None) -> Counts:
    counts = [stats.lessons[lesson_id]] if lesson_id else list(stats.lessons.values())
    return Counts(sum(c.completed_self for c in counts), sum(c.completed_assisted for c in counts))


def _in_period(now: Counts, before: Counts | None) -> Counts:
    return now if before is None else Counts(now.self - before.self, now.assisted - before.assisted)


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    # Excel has no time zones: write the ward's wall-clock time.
    return moment.astimezone(zone).replace(tzinfo=None) if moment is not None else None


@dataclass(frozen=True)
class WorkbookData:
    """Everything the workbook shows, read from the database (:func:`read_workbook`); drawing
    it (:func:`render_workbook`) needs no session and runs in a thread."""

    ward: Ward
    at_end: list[GroupStats]
    before: dict[int, GroupStats]
    residents: list[ResidentRow]
    assisted: list[AssistedRow]
    broadcasts: list[WardBroadcast]  # each with its delivery to this ward's residents only


async def read_workbook(
    session: AsyncSession, *, ward_id: int, lessons: LessonLibrary, start: datetime | None, end: datetime,
) -> WorkbookData:
    """The numbers and rows of the ward's report for [start, end] (``start`` None: from the
    beginning)."""
    ward = await session.get(Ward, ward_id)
    if ward is None:
        raise ValueError(f"no ward with id {ward_id}")
    ids = [lesson.id for lesson in lessons]
    at_end = await group_stats(session, lesson_ids=ids, since=end - WEEK, until=end, ward_id=ward_id)
    before: dict[int, GroupStats] = {}
    if start is not None:
        just_before = start - TICK
        earlier = await group_stats(session, lesson_ids=ids, since=just_before, until=just_before, ward_id=ward_id)
        before = {s.group_id: s for s in earlier}
    residents = await residents_progress(session, ward_id=ward_id, lesson_ids=ids, end=end)
    assisted = await assisted_completions(session, ward_id=ward_id, start=start, end=end)
    broadcasts = await ward_broadcasts(session, ward_id=ward_id, start=start, end=end)
    return WorkbookData(ward, list(at_end), before, list(residents), list(assisted), broadcasts)


def render_workbook(
    data: WorkbookData, *, lessons: LessonLibrary, start: datetime | None, end: datetime, zone: ZoneInfo,
    now: datetime,
) -> bytes:
    """The workbook as .xlsx bytes, stamped as made at ``now`` (CPU work: run it off the event loop).
    Written in openpyxl's write-only mode: rows stream out, the book is never held in memory."""
    t = translator()
    book = Workbook(write_only=True)
    _groups_sheet(book.create_sheet(), t, ward=data.ward, stats=data.at_end, before=data.before, start=start, end=end,
                  zone=zone, now=now)
    _residents_sheet(book.create_sheet(), t, rows=data.residents, lessons=lessons, zone=zone)
    _lessons_sheet(book.create_sheet(), t, lessons=lessons, stats=data.at_end, before=data.before,
                   dated=start is not None)
    _assisted_sheet(book.create_sheet(), t, rows=data.assisted, lessons=lessons, zone=zone)
    _broadcasts_sheet(book.create_sheet(), t, broadcasts=data.broadcasts, zone=zone)
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def build_workbook(
    session: AsyncSession, *, ward_id: int, lessons: LessonLibrary, start: datetime | None, end: datetime,
    zone: ZoneInfo, now: datetime,
) -> bytes:
    """The report of the ward for [start, end] (``start`` None: from the beginning) as .xlsx bytes,
    stamped as made at ``now``: read in ``session``, drawn in a thread."""
    data = await read_workbook(session, ward_id=ward_id, lessons=lessons, start=start, end=end)
    return await asyncio.to_thread(render_workbook, data, lessons=lessons, start=start, end=end, zone=zone, now=now)


def _period(t: Translate, start: datetime | None, end: datetime, zone: ZoneInfo) -> str:
    if start is None:
        return t("report.period_to", end=local_time(end, zone))
    return t("report.period", start=local_time(start, zone), end=local_time(end, zone))


def _groups_sheet(ws: Worksheet, t: Translate, *, ward: Ward, stats: Sequence[GroupStats],
                  before: dict[int, GroupStats], start: datetime | None, end: datetime, zone: ZoneInfo,
                  now: datetime) -> None:
    ws.title = t("report.sheet_groups")
    meeting = sum(1 for s in stats if s.meets_target)
    above = [
        [cell(ws, t("report.title", ward=ward.name), font=Font(bold=True, size=14))],
        [cell(ws, _period(t, start, end, zone))],
        [cell(ws, t("report.generated", time=local_time(now, zone), zone=zone.key))],
        [cell(ws, t("report.groups_meeting_target", count=meeting, total=len(stats)))],
        [cell(ws, t("report.definitions"))],
        [],
    ]
    columns = [
        Column(t("report.col_group_code"), 14), Column(t("report.col_group_name"), 26),
        Column(t("report.col_target"), 10, COUNT), Column(t("report.col_members"), 11, COUNT),
        Column(t("report.col_started"), 11, COUNT), Column(t("report.col_finished"), 14, COUNT),
        Column(t("report.col_rate"), 12, PERCENT), Column(t("report.col_meets_target"), 12),
        Column(t("report.col_self_total"), 14, COUNT), Column(t("report.col_assisted_total"), 14, COUNT),
        Column(t("report.col_self_period"), 14, COUNT), Column(t("report.col_assisted_period"), 14, COUNT),
        Column(t("report.col_change"), 13, CHANGE),
    ]
    rows = []
    for s in stats:
        total = _completions(s)
        period = _in_period(total, _completions(before[s.group_id]) if s.group_id in before else None)
        rows.append([s.code, s.name, s.target_percent, s.members, s.started, s.finished, s.rate,
                     t("report.yes_target") if s.meets_target else t("report.no_target"),
                     total.self, total.assisted, period.self, period.assisted, s.change])
    members = sum(s.members for s in stats)
    finished = sum(s.finished for s in stats)
    members_before = sum(s.members_before for s in stats)
    rate = 100.0 * finished / members if members else 0.0
    rate_before = 100.0 * sum(s.finished_before for s in stats) / members_before if members_before else 0.0
    totals = [0, 0, 0, 0]
    for row in rows:
        totals = [a + b for a, b in zip(totals, row[8:12], strict=True)]
    total_row = [t("report.ward_total"), ward.name, None, members, sum(s.started for s in stats), finished, rate,
                 None, *totals, rate - rate_before]
    stream_table(ws, columns=columns, rows=rows, above=above, total=total_row, freeze_columns=2)


def _residents_sheet(ws: Worksheet, t: Translate, *, rows: Sequence[ResidentRow], lessons: LessonLibrary,
                     zone: ZoneInfo) -> None:
    ws.title = t("report.sheet_residents")
    columns = [
        Column(t("report.col_name"), 24), Column(t("report.col_group_code"), 12),
        Column(t("report.col_group_name"), 22),
        Column(t("report.col_lessons_self"), 13, COUNT), Column(t("report.col_lessons_assisted"), 13, COUNT),
        Column(t("report.col_in_progress"), 10, COUNT), Column(t("report.col_last_active"), 17),
        Column(t("report.col_added_by_leader"), 12),
    ] + [Column(t("report.col_lesson", order=n, title=lesson.title), 16) for n, lesson in enumerate(lessons, 1)]
    words = {Mark.SELF: t("report.mark_self"), Mark.ASSISTED: t("report.mark_assisted"),
             Mark.IN_PROGRESS: t("report.mark_in_progress")}
    yes, no = t("report.yes"), t("report.no")

    def table() -> Iterator[list[object]]:  # one resident at a time, straight into the file
        for row in rows:
            marks = [words[row.marks[lesson.id]] if lesson.id in row.marks else "" for lesson in lessons]
            yield [row.name, row.group_code, row.group_name, row.count(Mark.SELF), row.count(Mark.ASSISTED),
                   row.count(Mark.IN_PROGRESS), _local(row.last_active_at, zone),
                   yes if row.added_by_leader else no, *marks]

    stream_table(ws, columns=columns, rows=table(), freeze_columns=1)


def _lessons_sheet(ws: Worksheet, t: Translate, *, lessons: LessonLibrary, stats: Sequence[GroupStats],
                   before: dict[int, GroupStats], dated: bool) -> None:
    ws.title = t("report.sheet_lessons")
    columns = [
        Column(t("report.col_order"), 8, COUNT), Column(t("report.col_lesson_id"), 18),
        Column(t("report.col_lesson_title"), 40), Column(t("report.col_competence"), 30),
        Column(t("report.col_version"), 10, COUNT), Column(t("report.col_lesson_started"), 12, COUNT),
        Column(t("report.col_self_total"), 14, COUNT), Column(t("report.col_assisted_total"), 14, COUNT),
        Column(t("report.col_self_period"), 14, COUNT), Column(t("report.col_assisted_period"), 14, COUNT),
    ]
    rows = []
    for order, lesson in enumerate(lessons, 1):
        total = Counts(sum(_completions(s, lesson.id).self for s in stats),
                       sum(_completions(s, lesson.id).assisted for s in stats))
        earlier = Counts(sum(_completions(s, lesson.id).self for s in before.values()),
                         sum(_completions(s, lesson.id).assisted for s in before.values())) if dated else None
        period = _in_period(total, earlier)
        rows.append([order, lesson.id, lesson.title, t(COMPETENCE_TEXT[lesson.competence]), lesson.version,
                     sum(s.lessons[lesson.id].started for s in stats), total.self, total.assisted,
                     period.self, period.assisted])
    stream_table(ws, columns=columns, rows=rows, freeze_columns=3)


def _assisted_sheet(ws: Worksheet, t: Translate, *, rows: Sequence[AssistedRow], lessons: LessonLibrary,
                    zone: ZoneInfo) -> None:
    ws.title = t("report.sheet_assisted")
    columns = [Column(t("report.col_name"), 24), Column(t("report.col_group_code"), 12),
               Column(t("report.col_group_name"), 22), Column(t("report.col_lesson_title"), 40),
               Column(t("report.col_leader"), 24), Column(t("report.col_completed_at"), 17)]
    erased = t("report.erased_person")
    table = []
    for row in rows:
        lesson = lessons.get(row.lesson_id)
        table.append([row.person_name or erased, row.group_code, row.group_name,
                      lesson.title if lesson else row.lesson_id, row.leader_name or erased,
                      _local(row.completed_at, zone)])
    stream_table(ws, columns=columns, rows=table, freeze_columns=1)


def _broadcasts_sheet(ws: Worksheet, t: Translate, *, broadcasts: Sequence[WardBroadcast],
                      zone: ZoneInfo) -> None:
    ws.title = t("report.sheet_broadcasts")
    columns = [Column(t("report.col_broadcast_id"), 8, COUNT), Column(t("report.col_broadcast_time"), 17),
               Column(t("report.col_broadcast_status"), 14), Column(t("report.col_audience"), 30),
               Column(t("report.col_broadcast_text"), 50), Column(t("report.col_recipients"), 11, COUNT),
               Column(t("report.col_sent"), 10, COUNT), Column(t("report.col_blocked"), 10, COUNT),
               Column(t("report.col_failed"), 10, COUNT), Column(t("report.col_pending"), 10, COUNT)]
    table = []
    for shown in broadcasts:
        broadcast, report = shown.broadcast, shown.report
        text = broadcast.text if len(broadcast.text) <= 200 else broadcast.text[:199] + "…"
        table.append([broadcast.id, _local(broadcast.scheduled_at, zone), t(STATUS_TEXT[broadcast.status]),
                      audience_words(broadcast.audience), text, shown.recipients,
                      report.totals["sent"], report.totals["blocked"], report.totals["failed"],
                      report.totals["pending"]])
    stream_table(ws, columns=columns, rows=table)
