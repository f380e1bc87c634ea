"""Load, validate and order the lesson files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from bot.curriculum.glossary import GLOSSARY_FILE, Glossary, glossary_problems, unexplained_terms
from bot.curriculum.schema import Lesson, lesson_problems, lesson_warnings


@dataclass(frozen=True)
class LessonError:
    """One problem in one lesson file, precise enough to fix it."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


@dataclass(frozen=True)
class LessonWarning(LessonError):
    """Advice that does not stop the lessons from loading (a sentence too long to read easily)."""

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: cảnh báo: {self.message}"


@dataclass(frozen=True)
class CheckReport:
    """What ``hocvuso lessons check`` finds in a folder: errors block loading, warnings do not."""

    lessons: list[Lesson]
    errors: list[LessonError]
    warnings: list[LessonWarning]


class LessonLibraryError(Exception):
    def __init__(self, errors: list[LessonError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


_PYDANTIC_MESSAGES = {
    "missing": "thiếu trường bắt buộc",
    "extra_forbidden": "trường không có trong định dạng (viết sai tên?)",
    "string_too_long": "dài quá {max_length} ký tự",
    "string_too_short": "không được để trống",
    "too_short": "không được để trống",
    "string_pattern_mismatch": "sai dạng (cần khớp {pattern})",
    "int_parsing": "phải là một số nguyên",
    "int_type": "phải là một số nguyên",
    "string_type": "phải là chữ",
    "list_type": "phải là một danh sách",
    "model_type": "phải là một mục có các trường con",
    "model_attributes_type": "phải là một mục có các trường con",
    "enum": "phải là một trong: {expected}",
    "greater_than_equal": "phải lớn hơn hoặc bằng {ge}",
    "less_than_equal": "phải nhỏ hơn hoặc bằng {le}",
}


def _field_path(loc: tuple[str | int, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + ("schema" if part == "schema_" else str(part))
    return path or "(cả tệp)"


def _describe(error: dict) -> str:
    template = _PYDANTIC_MESSAGES.get(error["type"])
    if template is None:
        return error["msg"]
    context = error.get("ctx") or {}
    try:
        message = template.format(**context)
    except (KeyError, IndexError):
        message = template
    if error["type"] == "string_too_long" and isinstance(error.get("input"), str):
        message += f" (hiện {len(error['input'])})"
    return message


Model = TypeVar("Model", Lesson, Glossary)


def _parse(
    text: str, model: type[Model], rules: Callable[[Model], list[tuple[str, str]]], *, file: str, what: str
) -> tuple[Model | None, list[LessonError]]:
    """YAML, then the model's structure, then its ``rules``; the value only if all passed."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"dòng {mark.line + 1}" if mark is not None else "(cả tệp)"
        return None, [LessonError(file, where, f"YAML không đọc được: {getattr(exc, 'problem', exc)}")]
    if not isinstance(data, dict):
        return None, [LessonError(file, "(cả tệp)", f"tệp phải là {what} (các trường dạng khóa: giá trị)")]
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        return None, [
            LessonError(file, _field_path(tuple(e["loc"])), _describe(e)) for e in exc.errors()
        ]
    problems = [LessonError(file, field, message) for field, message in rules(value)]
    return (None if problems else value), problems


def parse_lesson(text: str, *, file: str) -> tuple[Lesson | None, list[LessonError]]:
    """Parse one lesson file's text; return the lesson (if valid) and every problem found."""
    return _parse(text, Lesson, lesson_problems, file=file, what="một bài học")


class LessonLibrary:
    """The validated lessons, in learning order. Immutable once loaded."""

    def __init__(self, lessons: list[Lesson]) -> None:
        self._ordered = sorted(lessons, key=lambda lesson: lesson.order)
        self._by_id = {lesson.id: lesson for lesson in self._ordered}

    def __iter__(self) -> Iterator[Lesson]:
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._ordered)

    def get(self, lesson_id: str) -> Lesson | None:
        return self._by_id.get(lesson_id)

    @property
    def first(self) -> Lesson:
        return self._ordered[0]

    def position(self, lesson_id: str) -> int:
        """1-based place of the lesson in the learning order."""
        return next(i for i, lesson in enumerate(self._ordered, 1) if lesson.id == lesson_id)

    def after(self, lesson_id: str) -> Lesson | None:
        index = self.position(lesson_id)
        return self._ordered[index] if index < len(self._ordered) else None

    def curriculum_at(self, moment: datetime, zone: ZoneInfo) -> tuple[str, ...]:
        """The ids of the lessons in the curriculum at ``moment``, in learning order: those
        without ``published`` and those published by the moment's local date (the ward's day).
        "Programme completed at T" means every lesson of ``curriculum_at(T)`` completed by T,
        so a lesson added later never rewrites a past period."""
        day = moment.astimezone(zone).date()
        return tuple(lesson.id for lesson in self._ordered
                     if lesson.published_on is None or lesson.published_on <= day)


def default_lessons_dir() -> Path:
    """The lessons shipped with the application (the top-level ``lessons/`` package)."""
    return Path(str(resources.files("lessons")))


def parse_glossary(text: str, *, file: str = GLOSSARY_FILE) -> tuple[Glossary | None, list[LessonError]]:
    """Parse the glossary file's text; return the glossary (if valid) and every problem found."""
    return _parse(text, Glossary, glossary_problems, file=file, what="một bảng thuật ngữ")


def check_directory(directory: Path) -> tuple[list[Lesson], list[LessonError]]:
    """Validate every ``*.yaml`` file of a directory, including rules across files."""
    report = inspect_directory(directory)
    return report.lessons, report.errors


def inspect_directory(directory: Path) -> CheckReport:
    """Everything :func:`check_directory` checks, the glossary if the folder has one
    (``glossary.yaml``), and the warnings of the valid lessons."""
    lessons: list[Lesson] = []
    errors: list[LessonError] = []
    warnings: list[LessonWarning] = []
    files = [
        path for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
        if path.name != GLOSSARY_FILE
    ]
    if not files:
        errors.append(LessonError(str(directory), "(thư mục)", "không có tệp bài học *.yaml nào"))
    ids: dict[str, str] = {}
    orders: dict[int, str] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(LessonError(path.name, "(cả tệp)", f"không đọc được tệp: {exc}"))
            continue
        lesson, problems = parse_lesson(text, file=path.name)
        errors.extend(problems)
        if lesson is None:
            continue
        warnings.extend(LessonWarning(path.name, field, text) for field, text in lesson_warnings(lesson))
        if lesson.id in ids:
            errors.append(LessonError(path.name, "id", f"mã bài '{lesson.id}' trùng với {ids[lesson.id]}"))
            continue
        if lesson.order in orders:
            errors.append(
                LessonError(path.name, "order", f"thứ tự {lesson.order} trùng với {orders[lesson.order]}")
            )
            continue
        if path.stem != lesson.id:
            errors.append(LessonError(path.name, "id", f"tên tệp phải là {lesson.id}.yaml (trùng với id)"))
            continue
        ids[lesson.id] = path.name
        orders[lesson.order] = path.name
        lessons.append(lesson)
    errors.extend(_glossary_errors(directory / GLOSSARY_FILE, lessons, ids))
    return CheckReport(lessons, errors, warnings)


def _glossary_errors(path: Path, lessons: list[Lesson], files: dict[str, str]) -> list[LessonError]:
    """The glossary file's own problems, then every term a lesson uses before explaining it."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [LessonError(path.name, "(cả tệp)", f"không đọc được tệp: {exc}")]
    glossary, errors = parse_glossary(text, file=path.name)
    if glossary is None:
        return errors
    return [
        LessonError(files[lesson.id], field, message)
        for lesson, field, message in unexplained_terms(glossary, lessons)
    ]


def load_library(directory: Path | None = None) -> LessonLibrary:
    """Load and validate all lessons; raise :class:`LessonLibraryError` listing every problem."""
    lessons, errors = check_directory(directory or default_lessons_dir())
    if errors:
        raise LessonLibraryError(errors)
    return LessonLibrary(lessons)
