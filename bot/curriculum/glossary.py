"""The course glossary: hard words (OTP, VietQR, ví điện tử…) the lessons must explain where
a learner first meets them.

``lessons/glossary.yaml`` lists each term with its spellings and a one-line meaning. A term is
*used* by a lesson when one of its spellings appears in a card or in the quiz (case and
Vietnamese diacritics ignored, whole words only). The first lesson in learning order that uses
it must *explain* it in the first of its cards that uses it, in one of two ways:

- a parenthesis right after the first occurrence: ``mã OTP (mã dùng một lần…)``;
- a definition sentence in that card: ``Mã OTP là mã dùng một lần…``.

A lesson that uses the term only in its quiz explains it nowhere, which is reported too.
The check is deliberately mechanical: it cannot judge whether the explanation is good, only
that there is one where the reader needs it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bot.curriculum.schema import Lesson, has_vietnamese, learner_texts

GLOSSARY_FILE = "glossary.yaml"
GLOSSARY_SCHEMA = 1
MEANING_MAX = 200

# What may stand between a term and its parenthesis or "là": closing quotes, spaces.
_QUOTES = "\"'”’»"
_PARENTHESIS = re.compile(rf"[{_QUOTES}]*\s*\(([^()]*)\)")
_DEFINITION = re.compile(rf"[{_QUOTES}]*\s+(?:là|nghĩa là|tức là)(?!\w)", re.IGNORECASE)
_WORD = re.compile(r"\w+")
# An explanation in brackets has at least this many words ("(NAPAS)" explains nothing).
EXPLANATION_MIN_WORDS = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Spelling = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class Term(_Strict):
    term: Spelling  # how the term is written in the lessons, e.g. "VietQR"
    spellings: list[Spelling] = Field(default_factory=list)  # other ways it is written
    meaning: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MEANING_MAX)]

    @property
    def all_spellings(self) -> list[str]:
        return [self.term, *self.spellings]


class Glossary(_Strict):
    schema_: int = Field(alias="schema")
    terms: list[Term]


def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics, one character for one character, so that a
    position in the folded text is the same position in the text ("Ví" → "vi", "Đ" → "d")."""
    out = []
    for char in unicodedata.normalize("NFC", text):
        base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
        base = "d" if base in ("đ", "Đ") else base.lower()
        out.append(base if len(base) == 1 else char)
    return "".join(out)


def _pattern(spelling: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in fold(spelling).split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)")


@dataclass(frozen=True)
class _Matcher:
    term: Term
    patterns: tuple[re.Pattern[str], ...]

    def occurrences(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every use in ``text`` (NFC), earliest first, longest first at a tie."""
        folded = fold(text)
        found = {(m.start(), m.end()) for p in self.patterns for m in p.finditer(folded)}
        return sorted(found, key=lambda span: (span[0], -span[1]))


def _matcher(term: Term) -> _Matcher:
    return _Matcher(term, tuple(_pattern(s) for s in term.all_spellings))


def glossary_problems(glossary: Glossary) -> list[tuple[str, str]]:
    """Rules of the glossary file itself; ``(field path, message)`` pairs."""
    problems: list[tuple[str, str]] = []
    if glossary.schema_ != GLOSSARY_SCHEMA:
        problems.append(("schema", f"phiên bản định dạng phải là {GLOSSARY_SCHEMA}, "
                                   f"không phải {glossary.schema_}"))
    owner: dict[str, str] = {}
    for i, term in enumerate(glossary.terms):
        for spelling in term.all_spellings:
            key = " ".join(fold(spelling).split())
            if key in owner:
                problems.append((f"terms[{i}]", f"cách viết '{spelling}' đã có ở thuật ngữ '{owner[key]}'"))
            owner.setdefault(key, term.term)
        if not has_vietnamese(term.meaning):
            problems.append((f"terms[{i}].meaning", "không thấy chữ tiếng Việt có dấu: hãy viết đầy đủ dấu"))
    return problems


def _texts(lesson: Lesson) -> Iterator[tuple[str, str, bool]]:
    """(field path, text, is a card) for everything a learner reads in cards and quiz."""
    for field, text in learner_texts(lesson, with_title=False):
        yield field, unicodedata.normalize("NFC", text), field.startswith("cards")


def _explains(text: str, spans: list[tuple[int, int]]) -> bool:
    first_end = spans[0][1]
    parenthesis = _PARENTHESIS.match(text, first_end)
    if parenthesis and len(_WORD.findall(parenthesis.group(1))) >= EXPLANATION_MIN_WORDS:
        return True
    return any(_DEFINITION.match(text, end) for _, end in spans)


def unexplained_terms(glossary: Glossary, lessons: Iterable[Lesson]) -> list[tuple[Lesson, str, str]]:
    """``(lesson, field path, message)`` for every term its first lesson does not explain."""
    ordered = sorted(lessons, key=lambda lesson: lesson.order)
    problems: list[tuple[Lesson, str, str]] = []
    for matcher in (_matcher(t) for t in glossary.terms):
        name = matcher.term.term
        for lesson in ordered:
            uses = [(field, text, is_card) for field, text, is_card in _texts(lesson)
                    if matcher.occurrences(text)]
            if not uses:
                continue
            field, text, is_card = uses[0]
            if not is_card:
                problems.append((lesson, field, (
                    f'thuật ngữ "{name}" ({GLOSSARY_FILE}) được dùng lần đầu trong khóa học ở câu hỏi này '
                    f"của bài {lesson.id}, nhưng chưa thẻ nào của bài giải thích: hãy dùng và giải thích "
                    f'"{name}" trong một thẻ trước phần câu hỏi (ngoặc đơn ngay sau chữ, '
                    f'hoặc câu "{name} là …")'
                )))
            elif not _explains(text, matcher.occurrences(text)):
                problems.append((lesson, field, (
                    f'thuật ngữ "{name}" ({GLOSSARY_FILE}) được dùng lần đầu trong khóa học ở thẻ này '
                    f"của bài {lesson.id} nhưng chưa được giải thích: thêm lời giải thích trong ngoặc đơn "
                    f'ngay sau chữ "{name}" đầu tiên của thẻ, ví dụ "{name} (…)", hoặc viết trong thẻ '
                    f'một câu "{name} là …"'
                )))
            break
    return sorted(problems, key=lambda problem: (problem[0].order, problem[1]))
