"""The period's report as a Word document, in the form of a Vietnamese administrative report
(Nghị định 30/2020/NĐ-CP: A4, Times New Roman 13–14 pt, margins 20/20/30/15 mm), for the
officer to complete, edit and sign — and its annex, the thi đua proposal list.

Layout: the two-column header (ỦY BAN NHÂN DÂN / PHƯỜNG …, "Số: …/BC-UBND" | the national
name and motto, "<place>, ngày … tháng … năm …"), the title, I. results (sentences, then the
tables per group, per competence area, per month, per leader, and the broadcasts), II. the
assessment and III. proposals (marked "…" for the officer to write), "Nơi nhận" and the
signature block (title and name from the settings; no name: a dotted line).

Every number comes from ``PeriodFigures`` — the object the workbook is drawn from — and is
written with ``wording.number`` / ``wording.percent``. A group without members reads "chưa
có thành viên", never 0 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import cast
from zoneinfo import ZoneInfo

from docx import Document
from docx.document import Document as DocumentType
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Length, Mm, Pt
from docx.styles.style import ParagraphStyle
from docx.table import Table, _Cell

from bot.broadcasting import STATUS_TEXT
from bot.curriculum.schema import Competence
from bot.reports.awards import Awards
from bot.reports.wording import (
    COMPETENCE_TEXT, audience_words, day, document_date, number, percent, place_name, points, translator,
)
from storage.figures import GroupFigures, PeriodFigures

FONT = "Times New Roman"
BODY, TABLE_SIZE = Pt(14), Pt(13)
DOTS = "…" * 3
SIGN_DOTS = "." * 40


@dataclass(frozen=True)
class Signer:
    """Who signs the ward's documents (settings REPORT_SIGNER_TITLE / REPORT_SIGNER_NAME)."""

    title: str = "CHỦ TỊCH"
    name: str = ""  # empty: a dotted line for the name


@dataclass(frozen=True)
class DocumentSetting:
    """What a document says besides the numbers."""

    period: str  # the period's words: "6 tháng đầu năm 2026"
    zone: ZoneInfo
    now: datetime  # the document's date
    signer: Signer


def _document() -> DocumentType:
    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(20), Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    style = cast(ParagraphStyle, document.styles["Normal"])
    style.font.name, style.font.size = FONT, BODY
    # Word picks the East Asian font for some Vietnamese letters unless told otherwise.
    style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FONT)
    style.paragraph_format.space_after = Pt(6)
    return document


def _paragraph(document: DocumentType, text: str = "", *, bold: bool = False, italic: bool = False,
               centre: bool = False, size: Length | None = None, indent: bool = False) -> None:
    paragraph = document.add_paragraph()
    if centre:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    elif indent:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        paragraph.paragraph_format.first_line_indent = Mm(10)
    run = paragraph.add_run(text)
    run.bold, run.italic = bold, italic
    if size is not None:
        run.font.size = size


def _lines(cell: _Cell, lines: Sequence[tuple[str, bool, bool]], size: Length = TABLE_SIZE) -> None:
    """Centred lines (text, bold, italic) in a header cell."""
    cell.paragraphs[0].text = ""
    for n, (text, bold, italic) in enumerate(lines):
        paragraph = cell.paragraphs[0] if n == 0 else cell.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.paragraph_format.space_after = Pt(0)
        run = paragraph.add_run(text)
        run.bold, run.italic, run.font.size = bold, italic, size


def ward_heading(ward_name: str) -> str:
    """The ward's line under "ỦY BAN NHÂN DÂN": its name in capitals ("PHƯỜNG HÀ ĐÔNG")."""
    return " ".join(ward_name.split()).upper()


def _header(document: DocumentType, *, ward_name: str, number_line: str, setting: DocumentSetting) -> None:
    t = translator()
    table = document.add_table(rows=1, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    left, right = table.rows[0].cells
    left.width, right.width = Mm(65), Mm(100)
    _lines(left, [(t("doc.people_committee"), False, False), (ward_heading(ward_name), True, False),
                  ("", False, False), (number_line, False, False)])
    when = document_date(setting.now.astimezone(setting.zone).date())
    _lines(right, [(t("doc.nation"), True, False), (t("doc.motto"), True, False), ("", False, False),
                   (t("doc.place_date", place=place_name(ward_name), date=when), False, True)])


def _table(document: DocumentType, header: Sequence[str], rows: Sequence[Sequence[object]],
           total: Sequence[object] | None = None) -> Table:
    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    body = [*rows, *([total] if total is not None else [])]
    for r, values in enumerate([header, *body]):
        cells = table.rows[0].cells if r == 0 else table.add_row().cells
        strong = r == 0 or (total is not None and r == len(body))
        for c, value in zip(cells, values, strict=True):
            paragraph = c.paragraphs[0]
            paragraph.paragraph_format.space_after = Pt(0)
            if r == 0 or not isinstance(value, str) or value[:1].isdigit() or value == "—":
                paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            run = paragraph.add_run("" if value is None else str(value))
            run.bold, run.font.size = strong, TABLE_SIZE
    return table


def _rate(group: GroupFigures) -> str:
    return percent(group.rate) if group.rate is not None else translator()("doc.no_members")


def _coverage(group: GroupFigures) -> str:
    if group.coverage is None or not group.members:  # an empty group shows no 0 %
        return "—"
    return percent(group.coverage)


def _group_row(order: object, group: GroupFigures) -> list[object]:
    t = translator()
    met = "—" if group.rate is None else (t("report.yes_target") if group.meets_target else t("report.no_target"))
    return [order, group.name, number(group.members), number(group.adults) if group.adults is not None else "—",
            number(group.participants), number(group.finished), _rate(group), _coverage(group),
            f"{group.target_percent}%", met]


def group_table_rows(figures: PeriodFigures) -> list[list[object]]:
    """The rows of the per-group table, the ward's total last (shown as the document shows them)."""
    t = translator()
    rows = [_group_row(n, g) for n, g in enumerate(figures.groups, 1)]
    total = _group_row("", figures.total)
    total[1], total[8], total[9] = t("report.ward_total"), "", ""
    return [*rows, total]


def _results(document: DocumentType, figures: PeriodFigures, setting: DocumentSetting) -> None:
    t, total, zone = translator(), figures.total, setting.zone
    end = day(figures.end.astimezone(zone).date())
    _paragraph(document, t("doc.section_results"), bold=True)
    _paragraph(document, t("doc.people", end=end, groups=number(len(figures.groups)), members=number(total.members),
                           participants=number(total.participants), new=number(total.new_participants)), indent=True)
    _paragraph(document, t("doc.completions", own=number(total.completed_self),
                           assisted=number(total.completed_assisted), finished_period=number(total.finished_in_period),
                           lessons=number(len(figures.curriculum)), finished=number(total.finished)), indent=True)
    met = sum(1 for g in figures.groups if g.meets_target)
    empty = sum(1 for g in figures.groups if not g.members)
    if total.rate is None:
        _paragraph(document, t("doc.rate_no_members"), indent=True)
    else:
        _paragraph(document, t("doc.rate", rate=percent(total.rate), met=number(met),
                               groups=number(len(figures.groups) - empty)), indent=True)
    if total.coverage is not None:
        _paragraph(document, t("doc.coverage", adults=number(total.adults or 0), coverage=percent(total.coverage)),
                   indent=True)
    else:
        _paragraph(document, t("doc.coverage_unknown"), indent=True)
    if empty:
        _paragraph(document, t("doc.empty_groups", count=number(empty)), indent=True)
    if figures.previous_end is None:
        _paragraph(document, t("doc.no_previous"), indent=True)
    elif total.rate is not None and total.change is not None:
        before = percent(total.rate_before) if total.rate_before is not None else t("doc.no_members")
        _paragraph(document, t("doc.change", end=day(figures.previous_end.astimezone(zone).date()),
                               points=points(total.change), before=before, now=percent(total.rate),
                               members_before=number(total.members_before), members=number(total.members)),
                   indent=True)


def _tables(document: DocumentType, figures: PeriodFigures, setting: DocumentSetting) -> None:
    t = translator()
    _paragraph(document, t("doc.table_groups"), bold=True)
    rows = group_table_rows(figures)
    _table(document, [t("doc.col_order"), t("doc.col_group"), t("doc.col_members"), t("doc.col_adults"),
                      t("doc.col_participants"), t("doc.col_finished"), t("doc.col_rate"), t("doc.col_coverage"),
                      t("doc.col_target"), t("doc.col_met")], rows[:-1], rows[-1])
    _paragraph(document, t("doc.table_areas"), bold=True)
    _table(document, [t("doc.col_area"), t("doc.col_lessons"), t("doc.col_self_total"), t("doc.col_assisted_total"),
                      t("doc.col_self_period"), t("doc.col_assisted_period")],
           [[t(COMPETENCE_TEXT[Competence(a.competence)]), number(len(a.lesson_ids)), number(a.completed_self),
             number(a.completed_assisted), number(a.period_self), number(a.period_assisted)] for a in figures.areas])
    _paragraph(document, t("doc.table_months"), bold=True)
    _table(document, [t("doc.col_month"), t("doc.col_new"), t("doc.col_self_period"), t("doc.col_assisted_period"),
                      t("doc.col_finished_month"), t("doc.col_members_end"), t("doc.col_rate_end")],
           [[t("doc.month", month=m.month.month, year=m.month.year), number(m.new_participants),
             number(m.completed_self), number(m.completed_assisted), number(m.finished), number(m.members_end),
             percent(100.0 * m.finished_end / m.members_end) if m.members_end else t("doc.no_members")]
            for m in figures.months])
    _paragraph(document, t("doc.table_leaders"), bold=True)
    if figures.leaders:
        erased = t("report.erased_person")
        _table(document, [t("doc.col_order"), t("doc.col_leader"), t("doc.col_led_groups"), t("doc.col_assisted"),
                          t("doc.col_nudges"), t("doc.col_answered")],
               [[n, l.name or erased, ", ".join(l.groups), number(l.assisted), number(l.nudges), number(l.answered)]
                for n, l in enumerate(figures.leaders, 1)])
    else:
        _paragraph(document, t("doc.no_leaders"), indent=True)
    _broadcasts(document, figures, setting)


def _broadcasts(document: DocumentType, figures: PeriodFigures, setting: DocumentSetting) -> None:
    t = translator()
    _paragraph(document, t("doc.table_broadcasts"), bold=True)
    shown = figures.broadcasts
    if not shown:
        _paragraph(document, t("doc.no_broadcasts"), indent=True)
        return
    sent = sum(b.report.totals["sent"] for b in shown)
    reached = sum(b.recipients or 0 for b in shown)
    _paragraph(document, t("doc.broadcasts", count=number(len(shown)), recipients=number(reached),
                           sent=number(sent)), indent=True)
    _table(document, [t("doc.col_order"), t("doc.col_broadcast_time"), t("doc.col_broadcast_status"),
                      t("doc.col_audience"), t("doc.col_recipients"), t("doc.col_sent"), t("doc.col_blocked"),
                      t("doc.col_failed"), t("doc.col_pending")],
           [[b.broadcast.id, b.broadcast.scheduled_at.astimezone(setting.zone).strftime("%H:%M %d/%m/%Y"),
             t(STATUS_TEXT[b.broadcast.status]), audience_words(b.broadcast.audience), number(b.recipients or 0),
             number(b.report.totals["sent"]), number(b.report.totals["blocked"]), number(b.report.totals["failed"]),
             number(b.report.totals["pending"])] for b in shown])


def _to_fill(document: DocumentType, heading: str, items: Sequence[str]) -> None:
    _paragraph(document, heading, bold=True)
    for item in items:
        _paragraph(document, item, indent=True)
        _paragraph(document, DOTS * 8, indent=True)


def _signature(document: DocumentType, signer: Signer, recipients: Sequence[str]) -> None:
    t = translator()
    table = document.add_table(rows=1, cols=2)
    left, right = table.rows[0].cells
    left.width, right.width = Mm(80), Mm(85)
    _lines(left, [(t("doc.recipients"), True, True), *[(line, False, False) for line in recipients]], Pt(12))
    for paragraph in left.paragraphs[1:]:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.LEFT
    left.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.LEFT
    title = " ".join(signer.title.split()).upper()
    # A deputy signs "KT. CHỦ TỊCH" (on behalf of the chairman), the chairman "TM. ỦY BAN NHÂN DÂN".
    above = t("doc.sign_deputy") if title.startswith(t("doc.deputy_word")) else t("doc.sign_for_committee")
    name = " ".join(signer.name.split()) or SIGN_DOTS
    _lines(right, [(above, True, False), (title, True, False), (t("doc.sign_hint"), False, True), ("", False, False),
                   ("", False, False), ("", False, False), (name, True, False)], BODY)


def report_docx(figures: PeriodFigures, *, setting: DocumentSetting) -> bytes:
    """The report of ``figures``' period as .docx bytes (CPU work: run it off the event loop)."""
    t = translator()
    document = _document()
    _header(document, ward_name=figures.ward.name, number_line=t("doc.number_report"), setting=setting)
    _paragraph(document)
    _paragraph(document, t("doc.title"), bold=True, centre=True)
    _paragraph(document, t("doc.subtitle", period=setting.period), bold=True, centre=True)
    start = day(figures.start.astimezone(setting.zone).date()) if figures.start else None
    end = day(figures.end.astimezone(setting.zone).date())
    _paragraph(document, t("doc.range", start=start, end=end) if start else t("doc.range_all", end=end),
               italic=True, centre=True)
    _paragraph(document, t("doc.intro", ward=figures.ward.name, period=setting.period), indent=True)
    _results(document, figures, setting)
    _tables(document, figures, setting)
    _to_fill(document, t("doc.section_assessment"),
             [t("doc.assessment_strengths"), t("doc.assessment_limits"), t("doc.assessment_causes")])
    _to_fill(document, t("doc.section_proposals"), [t("doc.proposals_tasks"), t("doc.proposals_requests")])
    _paragraph(document, t("doc.closing", ward=figures.ward.name), indent=True)
    _signature(document, setting.signer, [t("doc.recipient_upper"), t("doc.recipient_party"), DOTS,
                                          t("doc.recipient_archive")])
    buffer = BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def annex_docx(figures: PeriodFigures, awards: Awards, *, setting: DocumentSetting) -> bytes:
    """"Danh sách đề xuất khen thưởng": the groups and leaders ``awards`` selected, each with
    their achievements, under the same header as the report."""
    t = translator()
    document = _document()
    _header(document, ward_name=figures.ward.name, number_line=t("doc.number_annex"), setting=setting)
    _paragraph(document)
    _paragraph(document, t("doc.annex_title"), bold=True, centre=True)
    _paragraph(document, t("doc.annex_subtitle", period=setting.period), bold=True, centre=True)
    _paragraph(document, t("doc.annex_rule"), italic=True, indent=True)
    _paragraph(document, t("doc.annex_groups"), bold=True)
    if awards.groups:
        _table(document, [t("doc.col_order"), t("doc.col_group"), t("doc.col_achievements")],
               [[n, a.group.name, a.achievements] for n, a in enumerate(awards.groups, 1)])
    else:
        _paragraph(document, t("doc.annex_no_groups"), indent=True)
    _paragraph(document, t("doc.annex_leaders"), bold=True)
    if awards.leaders:
        _table(document, [t("doc.col_order"), t("doc.col_name"), t("doc.col_led_groups"), t("doc.col_achievements")],
               [[n, a.leader.name, ", ".join(a.leader.groups), a.achievements]
                for n, a in enumerate(awards.leaders, 1)])
    else:
        _paragraph(document, t("doc.annex_no_leaders"), indent=True)
    _signature(document, setting.signer, [t("doc.recipient_council"), DOTS, t("doc.recipient_archive")])
    buffer = BytesIO()
    document.save(buffer)
    return buffer.getvalue()
