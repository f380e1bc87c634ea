"""The lesson file format (schema version 1) and every rule a lesson must satisfy.

A lesson is one YAML file under ``lessons/``. Structure and types are checked by the
pydantic models below; the rules that span several fields (answer in range, sources that
exist, Vietnamese text present, what fits in a chat message) are checked by
:func:`lesson_problems`. Both report a *field path* such as ``quiz.questions[2].answer`` so
``hocvuso lessons check`` can name file and field.

The limits exist for the channels: a Telegram message holds 4,096 characters, a Zalo
message 2,000, a Telegram button's callback data 64 bytes; and for the reader: a card an
elderly resident reads on a small phone stays short (about 600 characters).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

# Limits of the format (docs/architecture.md §Lessons, lessons/README.md).
ID_MAX = 32  # keeps every action payload (e.g. "q:a:<id>:<attempt>:<q>:<opt>") under 64 bytes
TITLE_MAX = 80
SUMMARY_MAX = 200
CARDS_MIN, CARDS_MAX = 3, 6
CARD_MAX = 600
QUESTIONS = 3
OPTIONS = 3
QUESTION_MAX = 300
OPTION_MAX = 100  # Telegram quiz-poll option limit; also a readable button
EXPLANATION_MAX = 200  # "one line"; also Telegram's quiz explanation limit
QUESTION_ID_MAX = 8

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
QUESTION_ID = r"^[a-z0-9]+$"
SOURCE_ID = r"^[A-Za-z0-9]+$"

# Letters that only Vietnamese (among the languages we expect) writes.
_VIETNAMESE = re.compile(
    "[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]",
    re.IGNORECASE,
)


class Competence(StrEnum):
    """The competence area a lesson trains: the six domains of Thông tư 02/2025/TT-BGDĐT."""

    DATA = "khai-thac-du-lieu"  # 1. Khai thác dữ liệu và thông tin
    COMMUNICATION = "giao-tiep-hop-tac"  # 2. Giao tiếp và hợp tác trong môi trường số
    CONTENT = "sang-tao-noi-dung"  # 3. Sáng tạo nội dung số
    SAFETY = "an-toan"  # 4. An toàn
    PROBLEM_SOLVING = "giai-quyet-van-de"  # 5. Giải quyết vấn đề
    AI = "ung-dung-ai"  # 6. Ứng dụng trí tuệ nhân tạo


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """A source a fact in the lesson rests on (shown to reviewers, not to residents)."""

    id: Annotated[str, StringConstraints(pattern=SOURCE_ID, max_length=16)]
    title: Text
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    date: str | None = None  # when the source was published or read, as written by the author


class Link(_Strict):
    """An onward link shown to residents after the lesson."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    url: Annotated[str, StringConstraints(pattern=r"^\S+$")]


class Card(_Strict):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=CARD_MAX)]
    sources: list[str] = Field(default_factory=list)


class Question(_Strict):
    id: Annotated[str, StringConstraints(pattern=QUESTION_ID, max_length=QUESTION_ID_MAX)]
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=QUESTION_MAX)]
    options: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=OPTION_MAX)]]
    answer: int  # 1-based number of the correct option, as an author counts
    explanation: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=EXPLANATION_MAX)
    ]
    sources: list[str] = Field(default_factory=list)

    @property
    def answer_index(self) -> int:
        return self.answer - 1


class Quiz(_Strict):
    pass_mark: int
    questions: list[Question]


class Lesson(_Strict):
    schema_: int = Field(alias="schema")
    id: Annotated[str, StringConstraints(pattern=SLUG, max_length=ID_MAX)]
    version: Annotated[int, Field(ge=1)]
    order: Annotated[int, Field(ge=1)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SUMMARY_MAX)]
    competence: Competence
    minutes: Annotated[int, Field(ge=1, le=10)]
    cards: list[Card]
    quiz: Quiz
    links: list[Link] = Field(default_factory=list)
    sources: list[Source]
    reviewed: str | None = None  # date the facts were last checked, e.g. "2026-11"


def lesson_problems(lesson: Lesson) -> list[tuple[str, str]]:
    """Rules spanning several fields; returns ``(field path, message)`` pairs, empty if fine."""
    problems: list[tuple[str, str]] = []
    add = problems.append

    if lesson.schema_ != SCHEMA_VERSION:
        add(("schema", f"phiên bản định dạng phải là {SCHEMA_VERSION}, không phải {lesson.schema_}"))

    if not CARDS_MIN <= len(lesson.cards) <= CARDS_MAX:
        add(("cards", f"cần từ {CARDS_MIN} đến {CARDS_MAX} thẻ, hiện có {len(lesson.cards)}"))

    questions = lesson.quiz.questions
    if len(questions) != QUESTIONS:
        add(("quiz.questions", f"cần đúng {QUESTIONS} câu hỏi, hiện có {len(questions)}"))
    if not 1 <= lesson.quiz.pass_mark <= len(questions):
        add(("quiz.pass_mark", f"điểm đạt phải từ 1 đến {len(questions)}"))

    seen_q: set[str] = set()
    for i, q in enumerate(questions):
        where = f"quiz.questions[{i}]"
        if q.id in seen_q:
            add((f"{where}.id", f"mã câu hỏi '{q.id}' bị trùng"))
        seen_q.add(q.id)
        if len(q.options) != OPTIONS:
            add((f"{where}.options", f"cần đúng {OPTIONS} lựa chọn, hiện có {len(q.options)}"))
        if not 1 <= q.answer <= len(q.options):
            add((f"{where}.answer", f"đáp án phải là số từ 1 đến {len(q.options)}, không phải {q.answer}"))
        normalized = [" ".join(o.casefold().split()) for o in q.options]
        for j, option in enumerate(normalized):
            if option in normalized[:j]:
                add((f"{where}.options[{j}]", "lựa chọn bị trùng với một lựa chọn khác"))

    source_ids = [s.id for s in lesson.sources]
    if not source_ids:
        add(("sources", "bài học phải liệt kê nguồn cho các thông tin nêu ra"))
    for i, sid in enumerate(source_ids):
        if sid in source_ids[:i]:
            add((f"sources[{i}].id", f"mã nguồn '{sid}' bị trùng"))
    known = set(source_ids)
    for i, card in enumerate(lesson.cards):
        for ref in card.sources:
            if ref not in known:
                add((f"cards[{i}].sources", f"nguồn '{ref}' không có trong danh sách sources"))
    for i, q in enumerate(questions):
        for ref in q.sources:
            if ref not in known:
                add((f"quiz.questions[{i}].sources", f"nguồn '{ref}' không có trong danh sách sources"))

    for i, link in enumerate(lesson.links):
        if not link.url.startswith("https://"):
            add((f"links[{i}].url", "đường dẫn cho người dân phải bắt đầu bằng https://"))

    for field, text in [("title", lesson.title), ("summary", lesson.summary)] + [
        (f"cards[{i}].text", c.text) for i, c in enumerate(lesson.cards)
    ]:
        if not _VIETNAMESE.search(text):
            add((field, "không thấy chữ tiếng Việt có dấu: hãy viết đầy đủ dấu"))
    return problems
