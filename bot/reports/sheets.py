"""Tables in openpyxl sheets: a bold, frozen, filterable header row, set column widths,
numbers stored as numbers, local times as real dates, and people's text that is never
taken for a formula."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

DATE_FORMAT = "dd/mm/yyyy hh:mm"
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")


@dataclass(frozen=True)
class Column:
    title: str
    width: float = 14
    number_format: str | None = None  # for numbers; dates always get DATE_FORMAT


def put(cell: Cell, value: object) -> None:
    if isinstance(value, str):
        cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
        # A resident may call themselves "=HYPERLINK(…)": store text as text, never a formula.
        cell.data_type = "s"
    else:
        cell.value = value  # type: ignore[assignment]
        if isinstance(value, datetime):
            cell.number_format = DATE_FORMAT


def write_table(ws: Worksheet, *, columns: Sequence[Column], rows: Iterable[Sequence[object]],
                top: int = 1, freeze_columns: int = 0) -> int:
    """The header at row ``top`` and the rows under it; returns the last row written."""
    for index, column in enumerate(columns, 1):
        cell = ws.cell(row=top, column=index)
        put(cell, column.title)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[get_column_letter(index)].width = column.width
    ws.row_dimensions[top].height = 48  # room for two or three wrapped lines of a long title
    ws.freeze_panes = ws.cell(row=top + 1, column=freeze_columns + 1)
    last = top
    for last, values in enumerate(rows, top + 1):
        for index, (column, value) in enumerate(zip(columns, values, strict=True), 1):
            cell = ws.cell(row=last, column=index)
            put(cell, value)
            if column.number_format and isinstance(value, int | float) and not isinstance(value, bool):
                cell.number_format = column.number_format
    ws.auto_filter.ref = f"A{top}:{get_column_letter(len(columns))}{max(last, top)}"
    return last


def emphasise(ws: Worksheet, row: int, columns: int) -> None:
    """A totals row: bold on grey."""
    for index in range(1, columns + 1):
        cell = ws.cell(row=row, column=index)
        cell.font = Font(bold=True)
        cell.fill = TOTAL_FILL
