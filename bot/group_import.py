"""Import wards and residential groups from a CSV file.

Columns: ``ward_code,ward_name,group_code,group_name`` and optionally ``kind``,
``target_percent`` and ``adults`` (the group's adult population: coverage is measured
against it; an empty cell keeps the stored value). The whole file is checked first; a single bad row stops the import
with its line number, so nothing is ever half-imported. Importing again updates names
(matched by code) and never duplicates.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.text import fold, is_plain_int
from storage import audit
from storage.groups import find_group_by_code, upsert_group, upsert_ward
from storage.models import GroupKind

REQUIRED = ("ward_code", "ward_name", "group_code", "group_name")
OPTIONAL = ("kind", "target_percent", "adults")
ADULTS_MAX = 1_000_000  # far above any residential group; a typo like 40000000 is caught
_ADULTS = re.compile(r"^(?:\d+|\d{1,3}(?:[.\s]\d{3})+)$", re.ASCII)  # 1250, 1.250, 1 250 (thousands)
CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # safe inside a join link: g_<code>

# What a ward officer may write in the ``kind`` column, compared without diacritics.
KIND_WORDS: dict[str, GroupKind] = {
    "to-dan-pho": GroupKind.TO_DAN_PHO, "to dan pho": GroupKind.TO_DAN_PHO, "tdp": GroupKind.TO_DAN_PHO,
    "khu-pho": GroupKind.KHU_PHO, "khu pho": GroupKind.KHU_PHO, "kp": GroupKind.KHU_PHO,
    "thon": GroupKind.THON, "ap": GroupKind.AP,
}


@dataclass(frozen=True)
class GroupRow:
    line: int
    ward_code: str
    ward_name: str
    group_code: str
    group_name: str
    kind: GroupKind | None
    target_percent: int | None
    adults: int | None = None


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"dòng {self.line}: {self.message}" if self.line else self.message


@dataclass
class ImportSummary:
    wards_created: int = 0
    wards_updated: int = 0
    groups: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0, "unchanged": 0})


def parse_groups_csv(data: bytes | str) -> tuple[list[GroupRow], list[RowError]]:
    """Check every row; return the rows and every error (import only if there is none)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")  # files saved by Excel start with a BOM
        except UnicodeDecodeError:
            return [], [RowError(0, "tệp không phải UTF-8: hãy lưu lại dưới dạng CSV UTF-8")]
    data = data.removeprefix("\ufeff")
    sample = data[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(data, newline=""), dialect, strict=True)
    rows: list[GroupRow] = []
    errors: list[RowError] = []
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], [RowError(0, "tệp trống")]
    except csv.Error as exc:
        return [], [RowError(1, f"không đọc được dòng tiêu đề: {exc}")]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        return [], [RowError(1, "thiếu cột " + ", ".join(missing) + " (cần: " + ",".join(REQUIRED) + ")")]
    unknown = [h for h in header if h and h not in REQUIRED + OPTIONAL]
    if unknown:
        errors.append(RowError(1, "cột không dùng được: " + ", ".join(unknown)))
    seen: dict[str, int] = {}
    ward_names: dict[str, str] = {}
    line = 1
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(reader.line_num, f"dòng hỏng: {exc}"))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in raw):
            continue
        if len(raw) > len(header):
            errors.append(RowError(line, f"có {len(raw)} ô nhưng tiêu đề chỉ có {len(header)} cột"))
            continue
        cells = {name: (raw[i].strip() if i < len(raw) else "") for i, name in enumerate(header)}
        row, problems = _check_row(line, cells)
        errors.extend(problems)
        if row is None:
            continue
        if row.group_code.lower() in seen:
            errors.append(RowError(line, f"mã tổ {row.group_code} đã có ở dòng {seen[row.group_code.lower()]}"))
            continue
        previous_name = ward_names.setdefault(row.ward_code, row.ward_name)
        if previous_name != row.ward_name:
            errors.append(RowError(line, f"phường {row.ward_code} có hai tên khác nhau: {previous_name} / {row.ward_name}"))
            continue
        seen[row.group_code.lower()] = line
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(0, "tệp không có dòng dữ liệu nào"))
    return rows, errors


def _check_row(line: int, cells: dict[str, str]) -> tuple[GroupRow | None, list[RowError]]:
    problems: list[RowError] = []
    for column in REQUIRED:
        if not cells.get(column):
            problems.append(RowError(line, f"cột {column} đang trống"))
    for column in ("ward_code", "group_code"):
        value = cells.get(column, "")
        if value and not CODE.match(value):
            problems.append(RowError(line, f"{column} '{value}' chỉ được gồm chữ không dấu, số, - hoặc _ (tối đa 32)"))
    for column in ("ward_name", "group_name"):
        if len(cells.get(column, "")) > 120:
            problems.append(RowError(line, f"{column} dài quá 120 ký tự"))
    kind: GroupKind | None = None
    if cells.get("kind"):
        kind = KIND_WORDS.get(fold(cells["kind"])) or KIND_WORDS.get(cells["kind"].strip().lower())
        if kind is None:
            problems.append(RowError(line, f"kind '{cells['kind']}' không hợp lệ (tổ dân phố, khu phố, thôn, ấp)"))
    target: int | None = None
    if cells.get("target_percent"):
        text = cells["target_percent"].rstrip("%").strip()
        if not is_plain_int(text, max_digits=3) or not 0 <= int(text) <= 100:
            problems.append(RowError(line, f"target_percent '{cells['target_percent']}' phải là số từ 0 đến 100"))
        else:
            target = int(text)
    adults: int | None = None
    if cells.get("adults"):
        adults = parse_adults(cells["adults"])
        if adults is None:
            most = f"{ADULTS_MAX:,}".replace(",", ".")  # 1.000.000, as Vietnamese writes it
            problems.append(RowError(line, f"adults '{cells['adults']}' phải là số người lớn của tổ, "
                                           f"một số nguyên từ 1 đến {most}"))
    if problems:
        return None, problems
    return (
        GroupRow(line, cells["ward_code"], cells["ward_name"], cells["group_code"], cells["group_name"], kind, target,
                 adults),
        [],
    )


def parse_adults(text: str) -> int | None:
    """A group's adult population as an officer writes it ("1250", "1.250", "1 250"); None
    if it is not a whole number from 1 to ``ADULTS_MAX``."""
    text = text.strip()
    if not _ADULTS.match(text):
        return None
    digits = re.sub(r"[.\s]", "", text)
    if not is_plain_int(digits, max_digits=7) or not 1 <= int(digits) <= ADULTS_MAX:
        return None
    return int(digits)


async def import_groups(
    session: AsyncSession, *, rows: list[GroupRow], actor: str, now: datetime, source: str = ""
) -> ImportSummary:
    """Upsert the checked rows in the caller's transaction (all or nothing)."""
    summary = ImportSummary()
    wards: dict[str, int] = {}
    for row in rows:
        if row.ward_code not in wards:
            ward, created = await upsert_ward(session, code=row.ward_code, name=row.ward_name)
            assert ward.id is not None
            wards[row.ward_code] = ward.id
            if created:
                summary.wards_created += 1
            else:
                summary.wards_updated += 1
        existing = await find_group_by_code(session, code=row.group_code)
        if existing is not None and existing.ward_id != wards[row.ward_code]:
            raise GroupImportError([RowError(row.line, f"mã tổ {row.group_code} đã thuộc một phường khác")])
        _, outcome = await upsert_group(
            session,
            ward_id=wards[row.ward_code],
            code=existing.code if existing else row.group_code,
            name=row.group_name,
            kind=row.kind,
            target_percent=row.target_percent,
            adults=row.adults,
        )
        summary.groups[outcome] += 1
    audit.record(
        session, actor=actor, action="groups.import", target=source[-64:], now=now,
        details={"wards_created": summary.wards_created, **summary.groups},
    )
    return summary


class GroupImportError(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))

