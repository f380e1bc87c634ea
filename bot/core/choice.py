"""How a typed reply picks one of the options offered: one rule for every channel.

Residents answer the way they talk. After folding (case, diacritics, punctuation, emoji and
spaces, :func:`bot.core.text.fold`) a reply picks an option when it is

1. its mark: on a menu marked with numbers, the number ("2", "2.", "số 2", "2️⃣", "②", "hai");
   on a menu marked with letters (quiz answers, a list of groups, a card that itself holds a
   numbered list), the letter ("b", "B", "câu b", "ý b", "đáp án b"). A number on a lettered
   menu is never a position: "2" under "Mức 2" means the level, not the second line;
2. its label or one of its aliases ("có" for a yes), exactly;
3. (``loose`` only) a prefix or a run of whole words of the label ("vneid", "lam lai", "tiep");
4. (``loose`` only) the label with a small typo, scored by rapidfuzz.

Several options matching equally (3 or 4) is *ambiguous*: the caller asks which one was meant.
``loose`` is off in steps that take free text (a name, a question, a group search), where
only an exact pick may take the text away from the step.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from bot.core.messages import Marks, Option
from bot.core.text import fold, number_from_words

TYPED_CHOICE_MAX = 200  # longer text never picks an option
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# A numbered list inside the text of a menu ("1. Mở VNeID"): its options are lettered, so a
# typed "2" meaning the list's second line never picks the menu's second option.
_NUMBERED_LINE = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)

# Words people put before the mark they mean: "chọn số 2", "câu b", "ý b", "đáp án b".
_NUMBER_LEAD = re.compile(r"^(?:chon |muc |so )*")
_LETTER_LEAD = re.compile(r"^(?:chon |cau |y |dap an |phuong an |muc )*")

FUZZY_CUTOFF = 85  # rapidfuzz WRatio, 0–100: a slip of one or two letters in a word or two
FUZZY_MARGIN = 8  # the best must beat the second by this much, else it is ambiguous
FUZZY_MIN = 3  # characters typed before a typo may be forgiven


def marks_for(text: str, marks: Marks | None) -> Marks:
    """The marks of a menu: those asked for, else letters when its text holds a numbered list."""
    if marks is not None:
        return marks
    return Marks.LETTERS if _NUMBERED_LINE.search(text) else Marks.NUMBERS


@dataclass(frozen=True)
class Picked:
    """What a reply picked: one option, several it could mean (ambiguous), or nothing."""

    option: Option | None = None
    candidates: tuple[Option, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.option is None and len(self.candidates) > 1


NOTHING = Picked()


def pick(
    text: str,
    options: Sequence[Option],
    *,
    marks: Marks = Marks.NUMBERS,
    extra: Sequence[Option] = (),
    loose: bool = True,
) -> Picked:
    """The option of ``options`` (or, by label only, of ``extra``: a proactive message's
    options) that ``text`` picks; see the module docstring for the rule."""
    if not text or len(text) > TYPED_CHOICE_MAX:
        return NOTHING
    typed = fold(unicodedata.normalize("NFKC", text))
    if not typed:
        return NOTHING
    position = _position(typed, marks)
    if position is not None and position < len(options):
        return Picked(options[position])
    for option in [*options, *extra]:
        if typed == fold(option.label) or any(typed == fold(alias) for alias in option.aliases):
            return Picked(option)
    if not loose or not options:
        return NOTHING
    return _by_words(typed, options) or _by_typo(typed, options) or NOTHING


def _position(typed: str, marks: Marks) -> int | None:
    """The 0-based position a reply names by the menu's marks, if it is only a mark."""
    if marks == Marks.LETTERS:
        rest = _LETTER_LEAD.sub("", typed)
        return LETTERS.index(rest) if len(rest) == 1 and rest in LETTERS else None
    rest = _NUMBER_LEAD.sub("", typed)
    if rest.isdecimal() and len(rest) <= 3:
        return int(rest) - 1 if int(rest) >= 1 else None
    number = number_from_words(rest.split())
    return number - 1 if number is not None else None


def _label_words(option: Option) -> list[str]:
    return [fold(option.label), *(fold(alias) for alias in option.aliases)]


def _by_words(typed: str, options: Sequence[Option]) -> Picked | None:
    """Options whose label starts with the reply, or holds it as whole words."""
    if len(typed) < 2 and not typed.isdecimal():
        return None
    padded = f" {typed} "
    found = [o for o in options if any(
        label.startswith(typed) or padded in f" {label} " for label in _label_words(o) if label)]
    if len(found) == 1:
        return Picked(found[0])
    return Picked(candidates=tuple(found)) if found else None


def _by_typo(typed: str, options: Sequence[Option]) -> Picked | None:
    """The option whose label is the reply with a small typo ("lam lia", "vneld")."""
    if len(typed) < FUZZY_MIN:
        return None
    scored = sorted(
        ((max(fuzz.WRatio(typed, label) for label in _label_words(o) if label), i)
         for i, o in enumerate(options) if any(_label_words(o))),
        reverse=True,
    )
    close = [(score, i) for score, i in scored if score >= FUZZY_CUTOFF]
    if not close:
        return None
    best = close[0][0]
    near = [options[i] for score, i in close if best - score < FUZZY_MARGIN]
    return Picked(near[0]) if len(near) == 1 else Picked(candidates=tuple(near))
