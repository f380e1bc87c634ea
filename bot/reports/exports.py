"""What the ward exports, ready to write or send: the report of a period (the Word report,
the workbook, the thi đua annex and the charts) and the groups' join links for QR codes.

One builder for the CLI and the chat ("everything an admin can download in the chat is the
same file the CLI writes"): :func:`read_report` reads the period's figures and rows inside a
transaction; :func:`render_report` draws every file from them with no session (CPU work: the
CLI runs it after its transaction; the chat and the deadline reminders, after theirs, in the
drawing process, :func:`in_drawing_process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.curriculum import LessonLibrary
from bot.links import group_link
from bot.reports.awards import Awards, select_awards
from bot.reports.chart import (
    group_chart_data, group_chart_png, lesson_chart_data, lesson_chart_png, trend_chart_data, trend_chart_png,
)
from bot.reports.docx import DocumentSetting, Signer, annex_docx, report_docx
from bot.reports.wording import period_words
from bot.reports.xlsx import WorkbookRows, read_workbook_rows, render_workbook
from storage.db import SessionFactory
from storage.figures import PeriodFigures, read_period_figures
from storage.groups import list_groups
from storage.models import Ward
from storage.report_data import find_ward
from storage.stats import wards

CHARTS = ("nhom", "thang", "bai")  # the charts' names in files: per group, per month, per lesson
T = TypeVar("T")


class UnknownWard(LookupError):
    def __init__(self, code: str, known: Sequence[str]) -> None:
        super().__init__(code)
        self.code, self.known = code, list(known)


async def _ward(session: AsyncSession, code: str) -> Ward:
    ward = await find_ward(session, code=code)
    if ward is None:
        raise UnknownWard(code, [w.code for w in await wards(session)])
    return ward


@dataclass(frozen=True)
class ReportData:
    """What the ward's report of a period shows, read in a transaction; drawn without one."""

    figures: PeriodFigures
    rows: WorkbookRows


@dataclass(frozen=True)
class ReportFiles:
    """Every file of a period's report, drawn from one ``PeriodFigures``."""

    figures: PeriodFigures
    awards: Awards
    period: str  # the period's words: "6 tháng đầu năm 2026"
    report: bytes  # .docx
    workbook: bytes  # .xlsx
    annex: bytes  # .docx: "Danh sách đề xuất khen thưởng"
    charts: dict[str, bytes] = field(default_factory=dict)  # CHARTS name → .png


async def read_report(
    session: AsyncSession, *, ward_code: str | None = None, ward_id: int | None = None, lessons: LessonLibrary,
    start: datetime | None, end: datetime, zone: ZoneInfo,
) -> ReportData:
    """The figures and rows of the ward's report for [start, end] (``start`` None: from the
    beginning); the ward by code (raises UnknownWard) or by id."""
    if ward_id is None:
        assert ward_code is not None
        ward_id = (await _ward(session, ward_code)).id
        assert ward_id is not None
    figures = await read_period_figures(session, ward_id=ward_id, lessons=lessons, start=start, end=end, zone=zone)
    rows = await read_workbook_rows(session, ward_id=ward_id, lessons=lessons, start=start, end=end)
    return ReportData(figures, rows)


@dataclass(frozen=True)
class Documents:
    """The files drawn from the figures alone: the report, the annex and the charts."""

    period: str
    awards: Awards
    report: bytes
    annex: bytes
    charts: dict[str, bytes]


def draw_documents(figures: PeriodFigures, *, lessons: LessonLibrary, span: str | None, zone: ZoneInfo,
                   now: datetime, signer: Signer, charts: bool = True) -> Documents:
    """The report and the annex (dated ``now``) and, if asked, the charts of ``figures``."""
    words = period_words(span, figures.start, figures.end, zone)
    awards = select_awards(figures)
    setting = DocumentSetting(period=words, zone=zone, now=now, signer=signer)
    titles = {lesson.id: lesson.title for lesson in lessons}
    pictures = {
        "nhom": group_chart_png(group_chart_data(figures, period=words)),
        "thang": trend_chart_png(trend_chart_data(figures, period=words)),
        "bai": lesson_chart_png(lesson_chart_data(figures, period=words, titles=titles)),
    } if charts else {}
    return Documents(words, awards, report=report_docx(figures, setting=setting),
                     annex=annex_docx(figures, awards, setting=setting), charts=pictures)


def draw_workbook(figures: PeriodFigures, rows: WorkbookRows, *, lessons: LessonLibrary, zone: ZoneInfo,
                  now: datetime) -> bytes:
    """The workbook of ``figures`` and ``rows`` (dated ``now``)."""
    return render_workbook(figures, rows, select_awards(figures), lessons=lessons, zone=zone, now=now)


def _files(figures: PeriodFigures, documents: Documents, workbook: bytes) -> ReportFiles:
    return ReportFiles(figures, documents.awards, documents.period, report=documents.report, workbook=workbook,
                       annex=documents.annex, charts=documents.charts)


def render_report(
    data: ReportData, *, lessons: LessonLibrary, span: str | None, zone: ZoneInfo, now: datetime, signer: Signer,
    charts: bool = True,
) -> ReportFiles:
    """The report, the workbook and the annex (dated ``now``) and, if asked, the charts of
    ``data``, one after the other (the CLI). ``span`` (a ``Span`` value; None: dates typed)
    names the period in titles."""
    documents = draw_documents(data.figures, lessons=lessons, span=span, zone=zone, now=now, signer=signer,
                               charts=charts)
    return _files(data.figures, documents, draw_workbook(data.figures, data.rows, lessons=lessons, zone=zone, now=now))


async def build_report(
    sessions: SessionFactory, *, ward_id: int, lessons: LessonLibrary, start: datetime | None,
    end: datetime, zone: ZoneInfo, span: str | None, now: datetime, signer: Signer,
) -> ReportFiles:
    """What :func:`read_report` then :func:`render_report` give — the same files — for a bot
    that keeps answering residents meanwhile: read in a session of its own (a reader; on SQLite
    it never holds the write lock), drawn in the drawing process, and overlapped: the report,
    the annex and the charts are drawn from the figures while the residents' rows are read."""
    async with sessions() as session:
        figures = await read_period_figures(session, ward_id=ward_id, lessons=lessons, start=start, end=end,
                                            zone=zone)
        documents = asyncio.ensure_future(in_drawing_process(
            draw_documents, figures, lessons=lessons, span=span, zone=zone, now=now, signer=signer))
        try:
            rows = await read_workbook_rows(session, ward_id=ward_id, lessons=lessons, start=start, end=end)
        except BaseException:
            documents.cancel()
            with contextlib.suppress(BaseException):
                await documents
            raise
    workbook = await in_drawing_process(draw_workbook, figures, rows, lessons=lessons, zone=zone, now=now)
    return _files(figures, await documents, workbook)


_drawer: ProcessPoolExecutor | None = None


async def in_drawing_process(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` (a module-level function: its arguments and result travel
    pickled) in the bot's drawing process, so that drawing a ward's files — seconds of pure
    Python — never holds the interpreter lock the event loop needs to answer residents (in a
    thread it did: replies waited up to 4 s during a 50,000-resident build). One process,
    started on first use ("spawn": a clean interpreter, not a copy of the bot's threads), kept
    for the next report; started again if it died."""
    global _drawer
    for attempt in (1, 2):
        if _drawer is None:
            _drawer = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return await asyncio.get_running_loop().run_in_executor(_drawer, partial(function, *args, **kwargs))
        except BrokenProcessPool:
            _drawer = None
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def group_links(
    session: AsyncSession, *, ward_code: str | None, telegram_username: str
) -> list[tuple[str, str, str]]:
    """(code, name, join link) of every group (of one ward), in code order; raises UnknownWard."""
    ward_id = (await _ward(session, ward_code)).id if ward_code is not None else None
    return [(g.code, g.name, group_link(g.code, telegram_username=telegram_username))
            for g in await list_groups(session, ward_id=ward_id)]
