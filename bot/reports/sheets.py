"""Tables in XlsxWriter sheets, streamed row by row in its constant-memory mode (a ward of
50,000 residents never holds its whole workbook in memory): a bold, frozen, filterable header
row, set column widths, numbers stored as numbers, local times as real dates, and people's text
that is never taken for a formula or a link.

XlsxWriter rather than openpyxl for writing: the residents sheet of a 50,000-resident ward
(~800,000 cells) takes 3.9 s instead of 6.1 s (docs/benchmarks.md); openpyxl still reads the
workbooks in the tests. In constant-memory mode a sheet's rows are written top to bottom once;
a row's height is set before its cells (:func:`stream_table` does it in that order).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

DATE_FORMAT = "dd/mm/yyyy hh:mm"
HEADER_FILL = "#DDEBF7"
TOTAL_FILL = "#F2F2F2"
# Characters XML 1.0 cannot carry (control characters but tab and line breaks): dropped from text.
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


@dataclass(frozen=True)
class Column:
    title: str
    width: float = 14
    number_format: str | None = None  # for numbers; dates always get DATE_FORMAT


@dataclass(frozen=True)
class Styled:
    """A cell of a title block: text in bold and/or a larger size."""

    value: object
    bold: bool = False
    size: int | None = None


class Book:
    """An .xlsx workbook written into memory, with its cell formats made once each."""

    def __init__(self, *, made_at: datetime) -> None:
        self._buffer = BytesIO()
        # Typed writes only (write_string never makes a formula or a link); the options guard
        # any plain write too.
        self._book = Workbook(self._buffer, {"constant_memory": True, "strings_to_formulas": False,
                                             "strings_to_urls": False, "strings_to_numbers": False})
        self._book.set_properties({"created": made_at})  # the injected clock's, not the wall clock's
        self._formats: dict[tuple[tuple[str, Any], ...], Format] = {}

    def sheet(self, title: str) -> Worksheet:
        return self._book.add_worksheet(title)

    def format(self, **properties: Any) -> Format | None:
        """The format with ``properties`` (None: none), made once per workbook."""
        if not properties:
            return None
        key = tuple(sorted(properties.items()))
        made = self._formats.get(key)
        if made is None:
            made = self._formats[key] = self._book.add_format(properties)
        return made

    def close(self) -> bytes:
        self._book.close()
        return self._buffer.getvalue()


def write(ws: Worksheet, row: int, column: int, value: object, style: Format | None, dates: Format | None) -> None:
    """One cell (0-based): text stays text (a resident may call themselves "=HYPERLINK(…)"),
    a date gets ``dates``, numbers ``style``; nothing for None unless it has a style."""
    if value is None:
        if style is not None:
            ws.write_blank(row, column, None, style)
    elif isinstance(value, str):
        ws.write_string(row, column, ILLEGAL_CHARACTERS_RE.sub("", value), style)
    elif isinstance(value, datetime):
        ws.write_datetime(row, column, value, dates)
    elif isinstance(value, bool):
        ws.write_boolean(row, column, value, style)
    elif isinstance(value, int | float):
        ws.write_number(row, column, value, style)
    else:
        ws.write_string(row, column, ILLEGAL_CHARACTERS_RE.sub("", str(value)), style)


def stream_table(book: Book, ws: Worksheet, *, columns: Sequence[Column], rows: Iterable[Sequence[object]],
                 above: Sequence[Sequence[Styled]] = (), total: Sequence[object] | None = None,
                 freeze_columns: int = 0) -> int:
    """Rows ``above`` (a title block), the header, ``rows`` as they come and an optional
    ``total`` row (bold on grey); returns the last table row (1-based, before the total)."""
    top = len(above) + 1  # the header's row, 1-based
    for index, column in enumerate(columns):
        ws.set_column(index, index, column.width)
    ws.freeze_panes(top, freeze_columns)
    for r, line in enumerate(above):
        for c, item in enumerate(line):
            properties: dict[str, Any] = {"bold": True} if item.bold else {}
            if item.size:
                properties["font_size"] = item.size
            write(ws, r, c, item.value, book.format(**properties), None)
    ws.set_row(top - 1, 48)  # room for two or three wrapped lines of a long title
    header = book.format(bold=True, bg_color=HEADER_FILL, text_wrap=True, valign="vcenter")
    for c, column in enumerate(columns):
        ws.write_string(top - 1, c, ILLEGAL_CHARACTERS_RE.sub("", column.title), header)
    numbers = [book.format(num_format=column.number_format) if column.number_format else None for column in columns]
    dates = book.format(num_format=DATE_FORMAT)
    last = top
    for last, values in enumerate(rows, top + 1):
        if len(values) != len(columns):
            raise ValueError(f"a row of {len(values)} cells under {len(columns)} columns")
        for c, value in enumerate(values):
            if value is not None:  # the common cases first: a plain text, a whole number
                if type(value) is str:
                    ws.write_string(last - 1, c, ILLEGAL_CHARACTERS_RE.sub("", value))
                else:
                    write(ws, last - 1, c, value, numbers[c], dates)
    ws.autofilter(top - 1, 0, max(last, top) - 1, len(columns) - 1)
    if total is not None:
        for c, (column, value) in enumerate(zip(columns, total, strict=True)):
            style = book.format(bold=True, bg_color=TOTAL_FILL,
                                **({"num_format": column.number_format} if column.number_format else {}))
            write(ws, last, c, value, style, book.format(bold=True, bg_color=TOTAL_FILL, num_format=DATE_FORMAT))
    return last
