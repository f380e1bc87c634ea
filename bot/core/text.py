"""Text helpers: matching replies typed without diacritics, splitting long text, bars."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w\s]", re.UNICODE)


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower case, no diacritics, no punctuation or emoji, single spaces.

    ``fold("Đồng ý!") == fold("dong y") == "dong y"``: residents may type without
    diacritics (or with a keyboard that adds them oddly). Kept for the last 4,096 texts: every
    typed reply is compared with the folded labels of the options offered.
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    stripped = _NOT_WORD.sub(" ", stripped.casefold())
    return _SPACES.sub(" ", stripped).strip()


# Vietnamese number words, folded: typed replies ("hai") and group searches ("tổ mười hai").
UNITS = {"khong": 0, "mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "sau": 6, "bay": 7, "tam": 8, "chin": 9}
_AFTER_TEN = {**UNITS, "lam": 5}  # "mười lăm"; "hai mươi mốt", "hai mươi tư" fold to "mot", "tu"


def number_from_words(words: Sequence[str]) -> int | None:
    """1–99 written in (folded) Vietnamese words: "hai" 2, "muoi hai" 12, "hai muoi" 20,
    "hai muoi lam" 25, "muoi lam" 15. Anything else: None."""
    match list(words):
        case [unit] if unit in UNITS and unit != "khong":
            return UNITS[unit]
        case ["muoi"]:
            return 10
        case ["muoi", unit] if unit in _AFTER_TEN and unit != "khong":
            return 10 + _AFTER_TEN[unit]
        case [tens, "muoi"] if UNITS.get(tens, 0) >= 2:
            return 10 * UNITS[tens]
        case [tens, "muoi", unit] if UNITS.get(tens, 0) >= 2 and unit in _AFTER_TEN and unit != "khong":
            return 10 * UNITS[tens] + _AFTER_TEN[unit]
    return None


def is_plain_int(raw: str, *, max_digits: int = 12) -> bool:
    """Whether ``raw`` is ASCII digits only (button data we wrote; "①".isdigit() is True, but
    int("①") fails)."""
    return 0 < len(raw) <= max_digits and raw.isascii() and raw.isdigit()


def clean_line(text: str, *, limit: int) -> str:
    """One line of user-given text: no control characters, single spaces, at most ``limit``."""
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C" or c == " ")
    return _SPACES.sub(" ", text).strip()[:limit].strip()


def split_text(text: str, limit: int) -> list[str]:
    """Split text into pieces of at most ``limit`` characters, preferring paragraph, then
    line, then word boundaries, so a long message stays readable on channels with a cap.

    A text that needs more than one piece has each piece end with its place on a line of
    its own — "(1/2)", "(2/2)" — so a reader on a small screen knows that more is coming
    (or that an earlier part is missing). The marker counts within ``limit``. Every channel
    and outbox transport splits through here, so they all mark pieces the same way."""
    if len(text) <= limit:
        return [text]
    if len(text.strip()) <= limit:  # only surrounding spaces made it too long
        return [text.strip()]
    digits = 1
    while True:
        # "\n(12/12)": room for the marker of the largest count with this many digits.
        room = limit - len(_marker(10**digits - 1, 10**digits - 1))
        if room < 1:
            raise ValueError(f"a limit of {limit} leaves no room for a piece")
        pieces = _pieces(text, room)
        if len(pieces) < 10**digits:
            break
        digits += 1
    return [piece + _marker(i, len(pieces)) for i, piece in enumerate(pieces, 1)]


def _marker(number: int, count: int) -> str:
    """The line ending the ``number``-th of ``count`` pieces of a split message."""
    return f"\n({number}/{count})"


def _pieces(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            if cut > 0:
                break
        if cut <= 0:
            cut = limit
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def progress_bar(done: int, total: int, *, width: int = 10) -> str:
    """``▓▓▓▓░░░░░░ 4/10``: readable on every channel, even without images."""
    filled = 0 if total <= 0 else round(width * done / total)
    if done and not filled:
        filled = 1  # any progress shows
    filled = min(filled, width)
    return f"{'▓' * filled}{'░' * (width - filled)} {done}/{total}"
