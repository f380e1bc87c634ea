"""The reconciliation (issue 11 §1) for what the officer takes away: on the 18-month world of
``tests/test_reconciliation.py``, for every period, the workbook's figures sheets, the report
document's tables and sentences, the charts' data and the award list equal the independent
``recount`` of the generated rows — on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import docx
from openpyxl import load_workbook
from pytest import approx

from bot.app import App
from bot.reports.awards import select_awards
from bot.reports.chart import group_chart_data, lesson_chart_data, trend_chart_data
from bot.reports.docx import Signer
from bot.reports.exports import read_report, render_report
from bot.reports.wording import number, percent
from storage.figures import PeriodFigures
from tests.test_reconciliation import HANOI, PERIODS, World, library, recount, seeded  # noqa: F401 (fixtures)

MADE = datetime(2026, 12, 1, 2, tzinfo=UTC)


def _rows(data: bytes, sheet: str, top: str) -> list[dict[str, Any]]:
    rows = list(load_workbook(BytesIO(data))[sheet].iter_rows(values_only=True))
    head = next(n for n, row in enumerate(rows) if row[0] == top)
    return [dict(zip(rows[head], row, strict=True)) for row in rows[head + 1:]]


def _expected_figures(figures: PeriodFigures, world: World, start: datetime | None, end: datetime) -> PeriodFigures:
    """The recount in the shape of ``PeriodFigures`` (ward and broadcasts taken as read)."""
    want = recount(world, start, end)
    return replace(figures, previous_start=want.previous_start, previous_end=want.previous_end,
                   curriculum=want.curriculum, groups=want.groups, total=want.total, months=want.months,
                   lessons=want.lessons, areas=want.areas, leaders=want.leaders)


async def test_the_documents_of_every_period_equal_the_recount(seeded: tuple[App, World]) -> None:  # noqa: F811
    app, world = seeded
    titles = {lesson.id: lesson.title for lesson in world.lessons}
    for name, (start, end) in PERIODS.items():
        async with app.sessions() as session:
            data = await read_report(session, ward_id=world.ward_id, lessons=world.lessons, start=start, end=end,
                                     zone=HANOI)
        made = render_report(data, lessons=world.lessons, span=None, zone=HANOI, now=MADE, signer=Signer())
        want = _expected_figures(data.figures, world, start, end)
        where = f"period {name}"

        groups = _rows(made.workbook, "Tổng hợp theo tổ", "Mã tổ")
        for row, g in zip(groups, [*want.groups, want.total], strict=True):
            assert (row["Thành viên"], row["Đã bắt đầu học"], row["Hoàn thành chương trình"],
                    row["Người mới bắt đầu học (trong kỳ)"], row["Lượt hoàn thành bài – tự học (trong kỳ)"],
                    row["Lượt hoàn thành bài – có hỗ trợ (trong kỳ)"], row["Hoàn thành chương trình (trong kỳ)"],
                    row["Người trưởng thành"]) == \
                (g.members, g.participants, g.finished, g.new_participants, g.completed_self, g.completed_assisted,
                 g.finished_in_period, g.adults), where
            assert row["Tỷ lệ hoàn thành (%)"] == (approx(g.rate) if g.rate is not None else "chưa có thành viên")
            assert row["Thay đổi so với kỳ trước (điểm %)"] == (approx(g.change) if g.change is not None else None)
        months = _rows(made.workbook, "Theo tháng", "Tháng")
        assert [(r["Người mới bắt đầu học"], r["Lượt hoàn thành bài – tự học (trong kỳ)"],
                 r["Lượt hoàn thành bài – có hỗ trợ (trong kỳ)"], r["Hoàn thành chương trình trong tháng"],
                 r["Thành viên cuối tháng"], r["Hoàn thành chương trình cuối tháng"]) for r in months] == \
            [(m.new_participants, m.completed_self, m.completed_assisted, m.finished, m.members_end, m.finished_end)
             for m in want.months], where
        lessons = _rows(made.workbook, "Bài học", "Thứ tự")
        assert [(r["Mã bài"], r["Đã bắt đầu"], r["Lượt hoàn thành bài – tự học (lũy kế)"],
                 r["Lượt hoàn thành bài – có hỗ trợ (lũy kế)"], r["Lượt hoàn thành bài – tự học (trong kỳ)"],
                 r["Lượt hoàn thành bài – có hỗ trợ (trong kỳ)"]) for r in lessons] == \
            [(f.lesson_id, f.started, f.completed_self, f.completed_assisted, f.period_self, f.period_assisted)
             for f in want.lessons], where
        areas = _rows(made.workbook, "Lĩnh vực năng lực", "Lĩnh vực năng lực số")
        assert [(r["Số bài"], r["Đã bắt đầu"], r["Lượt hoàn thành bài – tự học (trong kỳ)"]) for r in areas] == \
            [(len(a.lesson_ids), a.started, a.period_self) for a in want.areas], where
        leaders = _rows(made.workbook, "Tổ trưởng", "Tổ trưởng")
        assert [(r["Lượt hỗ trợ học"], r["Lượt nhắc học"], r["Câu hỏi đã trả lời"]) for r in leaders] == \
            [(leader.assisted, leader.nudges, leader.answered) for leader in want.leaders], where

        # The report document: every group row and the ward's sentences.
        document = docx.Document(BytesIO(made.report))
        table = [[c.text for c in row.cells] for row in document.tables[1].rows][1:]
        for row, g in zip(table, [*want.groups, want.total], strict=True):
            assert row[2:7] == [number(g.members), number(g.adults) if g.adults is not None else "—",
                                number(g.participants), number(g.finished),
                                percent(g.rate) if g.rate is not None else "chưa có thành viên"], where
        text = "\n".join(p.text for p in document.paragraphs)
        total = want.total
        assert f"hoàn thành {number(total.completed_self)} lượt bài học tự học và " \
               f"{number(total.completed_assisted)} lượt bài học có tổ trưởng hỗ trợ" in text, where
        assert f"{number(total.finished_in_period)} người hoàn thành toàn bộ chương trình" in text, where

        # The charts' data and the award list.
        assert [b.rate for b in group_chart_data(data.figures, period=name).bars] == [g.rate for g in want.groups]
        assert [(m.completed_self, m.completed_assisted) for m in trend_chart_data(data.figures, period=name).months] \
            == [(m.completed_self, m.completed_assisted) for m in want.months], where
        assert [(b.completed_self, b.completed_assisted)
                for b in lesson_chart_data(data.figures, period=name, titles=titles).lessons] == \
            [(f.period_self, f.period_assisted) for f in want.lessons], where
        assert select_awards(data.figures) == select_awards(want), where
