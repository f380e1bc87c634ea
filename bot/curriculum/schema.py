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
from collections.abc import Iterator
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

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
SENTENCE_WORDS_MAX = 30  # a longer sentence is hard to follow on a phone: a warning, not an error

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
QUESTION_ID = r"^[a-z0-9]+$"
SOURCE_ID = r"^[A-Za-z0-9]+$"

# Letters that only Vietnamese (among the languages we expect) writes.
_VIETNAMESE = re.compile(
    "[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]",
    re.IGNORECASE,
)
# A date as officers write it: "2026-03" or "2026-03-13" (a source may give only "2024").
_REVIEWED = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?$")
_SOURCE_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
_PUBLISHED = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A sentence ends at . ! ? … (then closing quotes or brackets, then a space) or at a line break;
# "22.000", "gov.vn" and "1/7/2025" do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’')]*\s+|\n+")
_WORD = re.compile(r"\w")


def has_vietnamese(text: str) -> bool:
    """Whether ``text`` has a letter only Vietnamese writes (so it was typed with diacritics)."""
    return bool(_VIETNAMESE.search(text))


class Competence(StrEnum):
    """The competence area a lesson trains: the six domains of Thông tư 02/2025/TT-BGDĐT."""

    DATA = "khai-thac-du-lieu"  # 1. Khai thác dữ liệu và thông tin
    COMMUNICATION = "giao-tiep-hop-tac"  # 2. Giao tiếp và hợp tác trong môi trường số
    CONTENT = "sang-tao-noi-dung"  # 3. Sáng tạo nội dung số
    SAFETY = "an-toan"  # 4. An toàn
    PROBLEM_SOLVING = "giai-quyet-van-de"  # 5. Giải quyết vấn đề
    AI = "ung-dung-ai"  # 6. Ứng dụng trí tuệ nhân tạo


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _date_as_text(value: object) -> object:
    # YAML reads an unquoted 2026-03-13 as a date: keep it as the text the officer wrote.
    return value.isoformat() if isinstance(value, date) else value


DateText = Annotated[str, BeforeValidator(_date_as_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """A source a fact in the lesson rests on (shown to reviewers, not to residents)."""

    id: Annotated[str, StringConstraints(pattern=SOURCE_ID, max_length=16)]
    title: Text
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    date: DateText | None = None  # when the source was published: "2025", "2025-08" or "2025-08-30"


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
    # The date of the newest source consulted when the facts were last checked, e.g. "2026-03-13".
    reviewed: DateText | None = None
    # The day (the ward's local date, "YYYY-MM-DD") the lesson joins the curriculum: from then
    # on "completed the programme" needs it; before, reports count without it. None: from the
    # beginning. Adding a lesson with a date never rewrites a past period's numbers.
    published: DateText | None = None

    @property
    def published_on(self) -> date | None:
        """``published`` as a date (None: part of the curriculum from the beginning)."""
        return date.fromisoformat(self.published) if self.published else None


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
        if not has_vietnamese(text):
            add((field, "không thấy chữ tiếng Việt có dấu: hãy viết đầy đủ dấu"))

    problems.extend(_date_problems(lesson))
    return problems


def _valid_date(text: str, shape: re.Pattern[str]) -> bool:
    if not shape.match(text):
        return False
    parts = [int(p) for p in text.split("-")] + [1, 1]
    try:
        date(parts[0], parts[1], parts[2])
    except ValueError:
        return False
    return True


def _date_problems(lesson: Lesson) -> list[tuple[str, str]]:
    """``published`` is a full date; ``reviewed`` and the sources' dates are real dates, and
    ``reviewed`` is not older than the newest dated source (compared at the precision both
    give: "2026-03" ≥ "2026-03-13")."""
    problems: list[tuple[str, str]] = []
    dated: list[tuple[str, str]] = []
    for i, source in enumerate(lesson.sources):
        if source.date is None:
            continue
        if _valid_date(source.date, _SOURCE_DATE):
            dated.append((source.date, source.id))
        else:
            problems.append((
                f"sources[{i}].date", f"'{source.date}' không phải ngày dạng YYYY-MM-DD, YYYY-MM hay YYYY"
            ))
    if lesson.published is not None and not _valid_date(lesson.published, _PUBLISHED):
        problems.append(("published", f"'{lesson.published}' không phải ngày dạng YYYY-MM-DD"))
    if lesson.reviewed is None:
        return problems
    if not _valid_date(lesson.reviewed, _REVIEWED):
        problems.append(("reviewed", f"'{lesson.reviewed}' không phải ngày dạng YYYY-MM hoặc YYYY-MM-DD"))
        return problems
    if dated:
        newest, source_id = max(dated)
        precision = min(len(newest), len(lesson.reviewed))
        if lesson.reviewed[:precision] < newest[:precision]:
            problems.append(("reviewed", (
                f"{lesson.reviewed} sớm hơn ngày của nguồn mới nhất trong bài ({source_id}: {newest}). "
                "reviewed là ngày của nguồn mới nhất đã tra khi kiểm tra lại thông tin: "
                f"hãy sửa thành {newest}, hoặc ngày của nguồn mới hơn đã tra"
            )))
    return problems


def learner_texts(lesson: Lesson, *, with_title: bool = True) -> Iterator[tuple[str, str]]:
    """``(field path, text)`` for every text a learner reads, in reading order."""
    if with_title:
        yield "title", lesson.title
        yield "summary", lesson.summary
    for i, card in enumerate(lesson.cards):
        yield f"cards[{i}].text", card.text
    for i, q in enumerate(lesson.quiz.questions):
        yield f"quiz.questions[{i}].text", q.text
        for j, option in enumerate(q.options):
            yield f"quiz.questions[{i}].options[{j}]", option
        yield f"quiz.questions[{i}].explanation", q.explanation


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def word_count(sentence: str) -> int:
    return sum(1 for token in sentence.split() if _WORD.search(token))


def lesson_warnings(lesson: Lesson) -> list[tuple[str, str]]:
    """Advice that does not stop a lesson from loading: sentences over
    :data:`SENTENCE_WORDS_MAX` words (a Vietnamese word here is one syllable, as written)."""
    warnings: list[tuple[str, str]] = []
    for field, text in learner_texts(lesson):
        for sentence in sentences(text):
            words = word_count(sentence)
            if words > SENTENCE_WORDS_MAX:
                start = " ".join(sentence.split()[:8])
                warnings.append((field, (
                    f"câu dài {words} từ (nên tối đa {SENTENCE_WORDS_MAX}), "
                    f"hãy tách thành câu ngắn hơn: “{start} …”"
                )))
    return warnings
