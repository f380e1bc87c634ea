"""The ward's XLSX workbook for a period (the annex of the 6-month and annual reports).

Every number of the groups, lessons, competence areas, months, leaders, broadcasts and thi
đua sheets comes from ``storage.figures.PeriodFigures`` — the object the report document and
the charts are drawn from, so the three never disagree. The residents and assisted sheets
list people's rows as of the period's end (``storage.report_data``). State numbers are as of
the period's end; "in the period" numbers count what happened between its start and end.
Assisted completions are never mixed into self completions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.broadcasting import STATUS_TEXT
from bot.core.i18n import Translate
from bot.curriculum import LessonLibrary
from bot.curriculum.schema import Competence
from bot.reports.awards import Awards
from bot.reports.sheets import Book, Column, Styled, stream_table
from bot.reports.wording import COMPETENCE_TEXT, audience_words, local_time, translator
from storage.figures import GroupFigures, PeriodFigures
from storage.report_data import AssistedRow, Mark, ResidentRow, assisted_completions, residents_progress

PERCENT = "0.0"
CHANGE = "+0.0;-0.0;0.0"
COUNT = "0"


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    # Excel has no time zones: write the ward's wall-clock time.
    return moment.astimezone(zone).replace(tzinfo=None) if moment is not None else None


@dataclass(frozen=True)
class WorkbookRows:
    """The people's rows the workbook lists besides the figures, read from the database
    (:func:`read_workbook_rows`); drawing needs no session and runs in a thread."""

    residents: list[ResidentRow]
    assisted: list[AssistedRow]


async def read_workbook_rows(
    session: AsyncSession, *, ward_id: int, lessons: LessonLibrary, start: datetime | None, end: datetime,
) -> WorkbookRows:
    """Each resident's progress as of ``end`` and the assisted completions in [start, end]."""
    ids = [lesson.id for lesson in lessons]
    residents = await residents_progress(session, ward_id=ward_id, lesson_ids=ids, end=end)
    assisted = await assisted_completions(session, ward_id=ward_id, start=start, end=end)
    return WorkbookRows(list(residents), list(assisted))


def render_workbook(
    figures: PeriodFigures, rows: WorkbookRows, awards: Awards, *, lessons: LessonLibrary, zone: ZoneInfo,
    now: datetime,
) -> bytes:
    """The workbook as .xlsx bytes, stamped as made at ``now`` (CPU work: run it off the event loop).
    Written in XlsxWriter's constant-memory mode: rows stream out, the book is never held in memory."""
    t = translator()
    book = Book(made_at=now)
    _groups_sheet(book, t, figures=figures, zone=zone, now=now)
    _residents_sheet(book, t, rows=rows.residents, lessons=lessons, zone=zone)
    _lessons_sheet(book, t, figures=figures, lessons=lessons)
    _areas_sheet(book, t, figures=figures)
    _months_sheet(book, t, figures=figures)
    _leaders_sheet(book, t, figures=figures)
    _assisted_sheet(book, t, rows=rows.assisted, lessons=lessons, zone=zone)
    _broadcasts_sheet(book, t, figures=figures, zone=zone)
    _awards_sheet(book, t, awards=awards)
    return book.close()


def _period(t: Translate, start: datetime | None, end: datetime, zone: ZoneInfo) -> str:
    if start is None:
        return t("report.period_to", end=local_time(end, zone))
    return t("report.period", start=local_time(start, zone), end=local_time(end, zone))


def _met(t: Translate, met: bool | None) -> str | None:
    return None if met is None else (t("report.yes_target") if met else t("report.no_target"))


def _group_row(t: Translate, g: GroupFigures) -> list[object]:
    rate: object = g.rate if g.rate is not None else t("doc.no_members")
    return [g.code, g.name, g.target_percent, g.adults, g.members, g.participants, g.new_participants, g.finished,
            rate, _met(t, g.meets_target if g.members else None), g.coverage if g.members else None,
            _met(t, g.meets_target_adults if g.members else None),
            g.completed_self, g.completed_assisted, g.finished_in_period, g.change]


def _groups_sheet(book: Book, t: Translate, *, figures: PeriodFigures, zone: ZoneInfo, now: datetime) -> None:
    ws = book.sheet(t("report.sheet_groups"))
    meeting = sum(1 for g in figures.groups if g.meets_target)
    with_members = sum(1 for g in figures.groups if g.members)
    above = [
        [Styled(t("report.title", ward=figures.ward.name), bold=True, size=14)],
        [Styled(_period(t, figures.start, figures.end, zone))],
        [Styled(t("report.generated", time=local_time(now, zone), zone=zone.key))],
        [Styled(t("report.groups_meeting_target", count=meeting, total=with_members))],
        [Styled(t("xlsx.definitions"))],
        [],
    ]
    columns = [
        Column(t("report.col_group_code"), 14), Column(t("report.col_group_name"), 26),
        Column(t("report.col_target"), 10, COUNT), Column(t("xlsx.col_adults"), 12, COUNT),
        Column(t("report.col_members"), 11, COUNT), Column(t("report.col_started"), 11, COUNT),
        Column(t("xlsx.col_new_participants"), 12, COUNT), Column(t("report.col_finished"), 14, COUNT),
        Column(t("report.col_rate"), 12, PERCENT), Column(t("report.col_meets_target"), 12),
        Column(t("xlsx.col_coverage"), 12, PERCENT), Column(t("xlsx.col_meets_target_adults"), 14),
        Column(t("report.col_self_period"), 14, COUNT), Column(t("report.col_assisted_period"), 14, COUNT),
        Column(t("xlsx.col_finished_in_period"), 14, COUNT), Column(t("xlsx.col_change"), 13, CHANGE),
    ]
    total = _group_row(t, figures.total)
    total[0], total[2], total[9], total[11] = t("report.ward_total"), None, None, None
    stream_table(book, ws, columns=columns, rows=[_group_row(t, g) for g in figures.groups], above=above, total=total,
                 freeze_columns=2)


def _residents_sheet(book: Book, t: Translate, *, rows: Sequence[ResidentRow], lessons: LessonLibrary,
                     zone: ZoneInfo) -> None:
    ws = book.sheet(t("report.sheet_residents"))
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
    ids = [lesson.id for lesson in lessons]

    def table() -> Iterator[list[object]]:  # one resident at a time, straight into the file
        for row in rows:
            marks = [words[mark] if (mark := row.marks.get(lesson_id)) else None for lesson_id in ids]  # None: no cell
            yield [row.name, row.group_code, row.group_name, row.count(Mark.SELF), row.count(Mark.ASSISTED),
                   row.count(Mark.IN_PROGRESS), _local(row.last_active_at, zone),
                   yes if row.added_by_leader else no, *marks]

    stream_table(book, ws, columns=columns, rows=table(), freeze_columns=1)


def _lessons_sheet(book: Book, t: Translate, *, figures: PeriodFigures, lessons: LessonLibrary) -> None:
    ws = book.sheet(t("report.sheet_lessons"))
    columns = [
        Column(t("report.col_order"), 8, COUNT), Column(t("report.col_lesson_id"), 18),
        Column(t("report.col_lesson_title"), 40), Column(t("report.col_competence"), 30),
        Column(t("report.col_version"), 10, COUNT), Column(t("report.col_lesson_started"), 12, COUNT),
        Column(t("report.col_self_total"), 14, COUNT), Column(t("report.col_assisted_total"), 14, COUNT),
        Column(t("report.col_self_period"), 14, COUNT), Column(t("report.col_assisted_period"), 14, COUNT),
    ]
    rows = []
    for order, f in enumerate(figures.lessons, 1):
        lesson = lessons.get(f.lesson_id)
        rows.append([order, f.lesson_id, lesson.title if lesson else f.lesson_id,
                     t(COMPETENCE_TEXT[lesson.competence]) if lesson else None, lesson.version if lesson else None,
                     f.started, f.completed_self, f.completed_assisted, f.period_self, f.period_assisted])
    stream_table(book, ws, columns=columns, rows=rows, freeze_columns=3)


def _areas_sheet(book: Book, t: Translate, *, figures: PeriodFigures) -> None:
    ws = book.sheet(t("xlsx.sheet_areas"))
    columns = [Column(t("report.col_competence"), 40), Column(t("xlsx.col_lesson_count"), 10, COUNT),
               Column(t("report.col_lesson_started"), 12, COUNT),
               Column(t("report.col_self_total"), 14, COUNT), Column(t("report.col_assisted_total"), 14, COUNT),
               Column(t("report.col_self_period"), 14, COUNT), Column(t("report.col_assisted_period"), 14, COUNT)]
    rows = [[t(COMPETENCE_TEXT[Competence(a.competence)]), len(a.lesson_ids), a.started, a.completed_self,
             a.completed_assisted, a.period_self, a.period_assisted] for a in figures.areas]
    stream_table(book, ws, columns=columns, rows=rows, freeze_columns=1)


def _months_sheet(book: Book, t: Translate, *, figures: PeriodFigures) -> None:
    ws = book.sheet(t("xlsx.sheet_months"))
    columns = [Column(t("doc.col_month"), 10), Column(t("doc.col_new"), 14, COUNT),
               Column(t("report.col_self_period"), 14, COUNT), Column(t("report.col_assisted_period"), 14, COUNT),
               Column(t("doc.col_finished_month"), 16, COUNT), Column(t("doc.col_members_end"), 14, COUNT),
               Column(t("xlsx.col_finished_end"), 16, COUNT), Column(t("xlsx.col_rate_end"), 14, PERCENT)]
    rows = [[t("doc.month", month=m.month.month, year=m.month.year), m.new_participants, m.completed_self,
             m.completed_assisted, m.finished, m.members_end, m.finished_end,
             100.0 * m.finished_end / m.members_end if m.members_end else t("doc.no_members")]
            for m in figures.months]
    stream_table(book, ws, columns=columns, rows=rows, freeze_columns=1)


def _leaders_sheet(book: Book, t: Translate, *, figures: PeriodFigures) -> None:
    ws = book.sheet(t("xlsx.sheet_leaders"))
    columns = [Column(t("doc.col_leader"), 24), Column(t("doc.col_led_groups"), 30),
               Column(t("doc.col_assisted"), 12, COUNT), Column(t("doc.col_nudges"), 12, COUNT),
               Column(t("doc.col_answered"), 12, COUNT)]
    erased = t("report.erased_person")
    rows = [[leader.name or erased, ", ".join(leader.groups), leader.assisted, leader.nudges, leader.answered]
            for leader in figures.leaders]
    stream_table(book, ws, columns=columns, rows=rows, freeze_columns=1)


def _awards_sheet(book: Book, t: Translate, *, awards: Awards) -> None:
    ws = book.sheet(t("xlsx.sheet_awards"))
    above = [[Styled(t("doc.annex_title"), bold=True, size=14)], [Styled(t("doc.annex_rule"))], []]
    columns = [Column(t("xlsx.col_award_kind"), 12), Column(t("doc.col_name"), 26), Column(t("doc.col_led_groups"), 26),
               Column(t("doc.col_achievements"), 90)]
    group, person = t("xlsx.award_group"), t("xlsx.award_leader")
    rows = [[group, a.group.name, a.group.code, a.achievements] for a in awards.groups]
    rows += [[person, a.leader.name, ", ".join(a.leader.groups), a.achievements] for a in awards.leaders]
    stream_table(book, ws, columns=columns, rows=rows, above=above)


def _assisted_sheet(book: Book, t: Translate, *, rows: Sequence[AssistedRow], lessons: LessonLibrary,
                    zone: ZoneInfo) -> None:
    ws = book.sheet(t("report.sheet_assisted"))
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
    stream_table(book, ws, columns=columns, rows=table, freeze_columns=1)


def _broadcasts_sheet(book: Book, t: Translate, *, figures: PeriodFigures, zone: ZoneInfo) -> None:
    ws = book.sheet(t("report.sheet_broadcasts"))
    columns = [Column(t("report.col_broadcast_id"), 8, COUNT), Column(t("report.col_broadcast_time"), 17),
               Column(t("report.col_broadcast_status"), 14), Column(t("report.col_audience"), 30),
               Column(t("report.col_broadcast_text"), 50), Column(t("report.col_recipients"), 11, COUNT),
               Column(t("report.col_sent"), 10, COUNT), Column(t("report.col_blocked"), 10, COUNT),
               Column(t("report.col_failed"), 10, COUNT), Column(t("report.col_pending"), 10, COUNT)]
    table = []
    for shown in figures.broadcasts:
        broadcast, report = shown.broadcast, shown.report
        text = broadcast.text if len(broadcast.text) <= 200 else broadcast.text[:199] + "…"
        table.append([broadcast.id, _local(broadcast.scheduled_at, zone), t(STATUS_TEXT[broadcast.status]),
                      audience_words(broadcast.audience), text, shown.recipients,
                      report.totals["sent"], report.totals["blocked"], report.totals["failed"],
                      report.totals["pending"]])
    stream_table(book, ws, columns=columns, rows=table)
