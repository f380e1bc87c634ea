"""The report document, the thi đua annex, the workbook and the charts drawn from one
``PeriodFigures`` built by hand (``sample_figures``): the Word files opened with python-docx,
the workbook with openpyxl, in the same test, so the document shows the workbook's numbers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from io import BytesIO
from zoneinfo import ZoneInfo

import docx
from openpyxl import load_workbook
from PIL import Image

from bot.curriculum import load_library
from bot.reports.awards import select_awards
from bot.reports.chart import group_chart_data, lesson_chart_data, trend_chart_data
from bot.reports.docx import Signer
from bot.reports.exports import ReportData, ReportFiles, render_report
from bot.reports.wording import document_date, percent, period_words, place_name
from bot.reports.xlsx import WorkbookRows
from tests.reports.sample_figures import END, START, sample_figures, without_members

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MADE = datetime(2026, 7, 2, 3, tzinfo=UTC)  # 10:00 on 2 July 2026 in Hà Nội


def _render(figures=None, *, span: str | None = "6m", signer: Signer = Signer()) -> ReportFiles:  # type: ignore[no-untyped-def]
    return render_report(ReportData(figures or sample_figures(), WorkbookRows([], [])), lessons=load_library(),
                         span=span, zone=ZONE, now=MADE, signer=signer)


def _texts(data: bytes) -> tuple[list[str], list[list[list[str]]]]:
    """Paragraphs and tables (rows of cell texts) of a .docx."""
    document = docx.Document(BytesIO(data))
    tables = [[[c.text for c in row.cells] for row in table.rows] for table in document.tables]
    return [p.text for p in document.paragraphs], tables


def _sheet(data: bytes, title: str, top: str) -> list[dict[str, object]]:
    rows = list(load_workbook(BytesIO(data))[title].iter_rows(values_only=True))
    head = next(n for n, row in enumerate(rows) if row[0] == top)
    return [dict(zip(rows[head], row, strict=True)) for row in rows[head + 1:]]


def test_the_report_is_an_administrative_document_with_the_workbooks_numbers() -> None:
    files = _render()
    paragraphs, tables = _texts(files.report)
    header = tables[0][0]
    assert header[0].split("\n") == ["ỦY BAN NHÂN DÂN", "PHƯỜNG MẪU", "", "Số: …/BC-UBND"]
    assert header[1].split("\n") == ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "",
                                     "Mẫu, ngày 02 tháng 7 năm 2026"]
    assert "BÁO CÁO" in paragraphs
    assert "Kết quả triển khai Phong trào “Bình dân học vụ số” 6 tháng đầu năm 2026" in paragraphs
    assert "(Số liệu từ ngày 01/01/2026 đến ngày 30/06/2026)" in paragraphs
    # Every group row of the workbook is in the document with the same numbers.
    groups = tables[1]
    assert groups[0][:3] == ["STT", "Tổ dân phố/thôn", "Thành viên"]
    shown = {row[1]: row for row in groups[1:]}
    book = _sheet(files.workbook, "Tổng hợp theo tổ", "Mã tổ")
    assert [r["Tổ dân phố / thôn"] for r in book] == [*shown][:-1] + ["Phường Mẫu"]
    for row in book:
        name = row["Tổ dân phố / thôn"] if row["Mã tổ"] != "Tổng cộng" else "Tổng cộng"
        cells = shown[name]
        assert cells[2] == str(row["Thành viên"]) and cells[4] == str(row["Đã bắt đầu học"])
        assert cells[5] == str(row["Hoàn thành chương trình"])
        rate = row["Tỷ lệ hoàn thành (%)"]
        assert cells[6] == (percent(rate) if isinstance(rate, int | float) else rate)
    assert shown["Tổ dân phố Đông"][6] == "chưa có thành viên" and "0,0%" not in shown["Tổ dân phố Đông"]
    assert next(r for r in book if r["Mã tổ"] == "TDP03")["Tỷ lệ hoàn thành (%)"] == "chưa có thành viên"
    assert shown["Tổ dân phố Bắc Sơn"][6:] == ["80,0%", "20,0%", "70%", "Đạt"]
    # The figures as sentences: members, participants, in-period completions, rate, change.
    body = "\n".join(paragraphs)
    for phrase in ("29 người dân tham gia", "23 người đã bắt đầu học, trong đó 8 người bắt đầu học trong kỳ",
                   "24 lượt bài học tự học và 4 lượt bài học có tổ trưởng hỗ trợ", "7 người hoàn thành toàn bộ",
                   "lên 19 người", "đạt 65,5%; 2/4 tổ", "Còn 1 tổ chưa có thành viên",
                   "thay đổi +24,1 điểm phần trăm (từ 41,4% thành 65,5%)", "II. ĐÁNH GIÁ CHUNG",
                   "III. PHƯƠNG HƯỚNG, ĐỀ XUẤT", "1 thông báo tới 27 lượt người nhận"):
        assert phrase in body, phrase
    months = _sheet(files.workbook, "Theo tháng", "Tháng")
    assert [[r[0], r[1], r[2], r[3]] for r in tables[3][1:]] == [
        [r["Tháng"], str(r["Người mới bắt đầu học"]), str(r["Lượt hoàn thành bài – tự học (trong kỳ)"]),
         str(r["Lượt hoàn thành bài – có hỗ trợ (trong kỳ)"])] for r in months]
    leaders = _sheet(files.workbook, "Tổ trưởng", "Tổ trưởng")
    assert [r[1:] for r in tables[4][1:]] == [[r["Tổ trưởng"], r["Tổ phụ trách"], str(r["Lượt hỗ trợ học"]),
                                               str(r["Lượt nhắc học"]), str(r["Câu hỏi đã trả lời"])]
                                              for r in leaders]
    signature = tables[-1][0][1].split("\n")
    assert signature[:3] == ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH", "(Ký, ghi rõ họ tên, đóng dấu)"]
    assert set(signature[-1]) == {"."}  # no name set: a dotted line
    assert tables[-1][0][0].startswith("Nơi nhận:")


def test_the_document_is_a4_in_times_new_roman() -> None:
    document = docx.Document(BytesIO(_render().report))
    section = document.sections[0]
    sizes = (section.page_width, section.page_height, section.left_margin, section.right_margin, section.top_margin)
    assert [round(size.mm) for size in sizes] == [210, 297, 30, 15, 20]  # type: ignore[union-attr]
    normal = document.styles["Normal"]
    assert normal.font.name == "Times New Roman" and normal.font.size.pt == 14  # type: ignore[attr-defined, union-attr]


def test_a_deputy_signs_for_the_chairman_with_the_name_from_the_settings() -> None:
    _, tables = _texts(_render(signer=Signer(title="Phó Chủ tịch", name="Nguyễn Văn An")).report)
    lines = [line for line in tables[-1][0][1].split("\n") if line]
    assert lines == ["KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "(Ký, ghi rõ họ tên, đóng dấu)", "Nguyễn Văn An"]


def test_a_ward_without_members_reads_so_never_zero_percent() -> None:
    files = _render(without_members(sample_figures()))
    paragraphs, tables = _texts(files.report)
    assert all(row[6] == "chưa có thành viên" and "0,0%" not in row for row in tables[1][1:])
    assert "Toàn phường chưa có thành viên nên chưa tính được tỷ lệ hoàn thành chương trình." in paragraphs
    assert select_awards(without_members(sample_figures())).groups == []


def test_the_annex_lists_whom_the_rule_selects_with_their_achievements() -> None:
    files = _render(span="year")
    paragraphs, tables = _texts(files.annex)
    assert tables[0][0][0].split("\n")[:2] == ["ỦY BAN NHÂN DÂN", "PHƯỜNG MẪU"]
    assert "DANH SÁCH ĐỀ XUẤT KHEN THƯỞNG" in paragraphs
    assert any(p.endswith("“Bình dân học vụ số” năm 2026") for p in paragraphs)
    # At target (80 % each; Bắc Sơn gained more), then the largest gain; not Phước Lộc (below
    # target, no gain), not the empty group.
    groups = tables[1]
    assert [row[1] for row in groups[1:]] == ["Tổ dân phố Bắc Sơn", "Khu phố Thượng", "Tổ dân phố Hòa An"]
    assert groups[3][2].startswith("Tỷ lệ hoàn thành chương trình 60,0% (chỉ tiêu 70%), 6/10 thành viên")
    assert "tăng 50,0 điểm phần trăm" in groups[3][2] and "trả lời 4 câu hỏi" in groups[3][2]
    # Leaders who assisted or answered, most assisted first; not Minh (nudges only), not the erased one.
    leaders = tables[2]
    assert [row[1] for row in leaders[1:]] == ["Hải", "Lan"]
    assert leaders[1][3] == ("Đã trực tiếp hỗ trợ 3 lượt bài học cho người dân; đã trả lời 2 câu hỏi của người dân; "
                             "đã nhắc 5 lượt người dân học tiếp.")
    sheet = _sheet(files.workbook, "Thi đua", "Đề xuất")
    assert [(r["Đề xuất"], r["Họ và tên"]) for r in sheet] == [
        ("Tập thể", "Tổ dân phố Bắc Sơn"), ("Tập thể", "Khu phố Thượng"), ("Tập thể", "Tổ dân phố Hòa An"),
        ("Cá nhân", "Hải"), ("Cá nhân", "Lan")]
    assert [r["Thành tích"] for r in sheet] == [row[2] for row in groups[1:]] + [row[3] for row in leaders[1:]]


def test_ties_are_broken_by_code_and_name() -> None:
    figures = sample_figures()
    # Two groups with the same largest gain, two leaders with the same record.
    second = replace(figures.groups[3], members=10, finished=6, finished_before=1, members_before=10, target_percent=70)
    leaders = [replace(figures.leaders[0], person_id=20, name="Ánh"), replace(figures.leaders[0], name="Bảo")]
    awards = select_awards(replace(figures, groups=[*figures.groups[:3], second, figures.groups[4]],
                                   leaders=[*reversed(leaders)]))
    assert [a.group.code for a in awards.groups] == ["TDP01", "TDP05", "TDP02", "TDP04"]
    assert [a.most_progress for a in awards.groups] == [False, False, True, True]
    assert [a.leader.name for a in awards.leaders] == ["Ánh", "Bảo"]


def test_the_charts_data_and_titles_follow_the_period() -> None:
    half = sample_figures()
    year = sample_figures(scale=3, start=datetime(2025, 12, 31, 17, tzinfo=UTC))
    titles = {lesson.id: lesson.title for lesson in load_library()}
    first = group_chart_data(half, period="6 tháng đầu năm 2026")
    assert [(b.label, b.rate, b.target, b.met) for b in first.bars] == [
        ("Tổ dân phố Bắc Sơn", 80.0, 70, True), ("Tổ dân phố Hòa An", 60.0, 70, False),
        ("Tổ dân phố Đông", None, 70, False), ("Thôn Phước Lộc", 25.0, 50, False), ("Khu phố Thượng", 80.0, 80, True)]
    assert first.title == "Tỷ lệ hoàn thành chương trình so với chỉ tiêu theo tổ – Phường Mẫu, 6 tháng đầu năm 2026"
    assert group_chart_data(year, period="năm 2026").title.endswith("Phường Mẫu, năm 2026")
    trend, trend_year = trend_chart_data(half, period="x"), trend_chart_data(year, period="x")
    assert [(m.month, m.completed_self, m.completed_assisted) for m in trend.months][:2] == [
        (date(2026, 1, 1), 1, 1), (date(2026, 2, 1), 2, 0)]
    assert trend.months[0].rate_end == 100.0 * 11 / 21
    assert [m.completed_self for m in trend_year.months] == [3 * m.completed_self for m in trend.months]
    lessons = lesson_chart_data(half, period="x", titles=titles)
    assert [(b.completed_self, b.completed_assisted) for b in lessons.lessons] == [(7, 0), (6, 1), (5, 2)]
    assert lessons.lessons[0].label.startswith("Bài 1. Bình dân học vụ số")
    assert lesson_chart_data(year, period="x", titles=titles).lessons[0].completed_self == 21
    # Drawn, the charts of two periods differ.
    a, b = _render(half, span="6m"), _render(year, span="year")
    assert set(a.charts) == {"nhom", "thang", "bai"}
    for name in a.charts:
        assert Image.open(BytesIO(a.charts[name])).format == "PNG"
        assert a.charts[name] != b.charts[name], name


def test_period_words_dates_and_places() -> None:
    assert period_words("6m", START, END, ZONE) == "6 tháng đầu năm 2026"
    assert period_words("6m", None, datetime(2026, 12, 1, tzinfo=UTC), ZONE) == "6 tháng cuối năm 2026"
    assert period_words("year", START, datetime(2026, 11, 3, tzinfo=UTC), ZONE) == "năm 2026"
    assert period_words("month", START, datetime(2026, 5, 3, tzinfo=UTC), ZONE) == "tháng 5 năm 2026"
    assert period_words(None, START, END, ZONE) == "từ ngày 01/01/2026 đến ngày 30/06/2026"
    assert period_words("all", None, END, ZONE) == "từ khi bắt đầu đến ngày 30/06/2026"
    assert document_date(date(2026, 2, 5)) == "ngày 05 tháng 02 năm 2026"
    assert document_date(date(2026, 11, 15)) == "ngày 15 tháng 11 năm 2026"
    assert place_name("Phường Hà Đông") == "Hà Đông" and place_name("Xã Sơn Đông") == "Sơn Đông"
    assert place_name("Đặc khu Phú Quốc") == "Phú Quốc" and place_name("Hà Đông") == "Hà Đông"
