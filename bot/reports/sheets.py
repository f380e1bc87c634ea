"""Tables in openpyxl write-only sheets, streamed row by row (a ward of 50,000 residents never
holds its whole workbook in memory): a bold, frozen, filterable header row, set column widths,
numbers stored as numbers, local times as real dates, and people's text that is never taken
for a formula.

Write-only sheets are written top to bottom once: a sheet's widths, frozen panes and header
height are set before its first row (:func:`stream_table` does it in that order)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

DATE_FORMAT = "dd/mm/yyyy hh:mm"
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")
BOLD = Font(bold=True)
HEADER_ALIGNMENT = Alignment(wrap_text=True, vertical="center")


@dataclass(frozen=True)
class Column:
    title: str
    width: float = 14
    number_format: str | None = None  # for numbers; dates always get DATE_FORMAT


def cell(ws: WriteOnlyWorksheet, value: object, number_format: str | None = None, *, font: Font | None = None,
         fill: PatternFill | None = None) -> WriteOnlyCell | str | int | None:
    """One cell (or a plain value, where openpyxl would store the same thing) to append: text stays text (a resident may call themselves "=HYPERLINK(…)"),
    dates get DATE_FORMAT, numbers ``number_format``."""
    plain = font is None and fill is None
    if value is None and plain:
        return None
    if plain and isinstance(value, str):  # the common case, kept cheap: no style
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if not value.startswith("="):
            return value  # type: ignore[return-value]
    if plain and number_format == "0" and type(value) is int:
        return value  # type: ignore[return-value]  # General shows a whole number as "0" does
    if isinstance(value, str):
        made = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        made.data_type = "s"
    else:
        made = WriteOnlyCell(ws, value=value)
        if isinstance(value, datetime):
            made.number_format = DATE_FORMAT
        elif number_format and isinstance(value, int | float) and not isinstance(value, bool):
            made.number_format = number_format
    if font is not None:
        made.font = font
    if fill is not None:
        made.fill = fill
    return made


def stream_table(ws: WriteOnlyWorksheet, *, columns: Sequence[Column], rows: Iterable[Sequence[object]],
                 above: Sequence[Sequence[WriteOnlyCell | None]] = (), total: Sequence[object] | None = None,
                 freeze_columns: int = 0) -> int:
    """Rows ``above`` (a title block), the header, ``rows`` as they come and an optional
    ``total`` row (bold on grey); returns the last table row (before the total)."""
    top = len(above) + 1
    for index, column in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(index)].width = column.width
    ws.row_dimensions[top].height = 48  # room for two or three wrapped lines of a long title
    ws.freeze_panes = f"{get_column_letter(freeze_columns + 1)}{top + 1}"
    for row in above:
        ws.append(list(row))
    header = []
    for column in columns:
        made = cell(ws, column.title, font=BOLD, fill=HEADER_FILL)
        assert made is not None
        made.alignment = HEADER_ALIGNMENT
        header.append(made)
    ws.append(header)
    last = top
    for last, values in enumerate(rows, top + 1):
        ws.append([cell(ws, value, column.number_format)
                   for column, value in zip(columns, values, strict=True)])
    ws.auto_filter.ref = f"A{top}:{get_column_letter(len(columns))}{max(last, top)}"
    if total is not None:
        ws.append([cell(ws, value, column.number_format, font=BOLD, fill=TOTAL_FILL)
                   for column, value in zip(columns, total, strict=True)])
    return last
