"""Finding one's residential group from what a resident types: "tổ 3", "to 5", "tổ dân phố số 9",
"tdp 9", "thôn 2", "9", "hai", "bac son", "thuan phuc" (a small typo), or the group's short code
from the notice board ("g_TDP09", any case, with or without "g_").

Pure functions over a ward's groups (a ward has a few hundred at most): the caller fetches them
(``storage.groups.list_groups``). The rules, in the order they rank:

1. The typed text is folded (case, diacritics, punctuation) and the words that only say what
   kind of group it is ("tổ dân phố", "tdp", "tổ", "thôn", "khu phố", "ấp", "số"…) are taken off
   its front, as they are off each group's name: "tổ dân phố số 9" and "Tổ dân phố 9" both become
   "9", of a *tổ dân phố*.
2. A number is never guessed: "9" finds the groups whose name carries the number 9, first those
   whose name starts with it ("Tổ dân phố 9"), then those with it further on ("Thôn Đông 9");
   "19" and "1" are not 9. A number written in words ("hai", "mười hai") counts as one too, and
   also as a name ("Thôn Hai", "Hải Châu").
3. A name: the same name, then a name that starts with what was typed ("bac" → "Bắc Sơn"), then
   one that has it at the start of a later word, then anywhere, then a small typo (rapidfuzz,
   ``FUZZY_CUTOFF``).
4. A kind typed ("thôn 2") that differs from the group's ("Tổ dân phố 2") ranks it after the
   groups of that kind, never drops it: the ward may call its groups otherwise than residents do.

``sure`` is the group when exactly one is an exact match (or only one matched at all): the bot
then asks "Tổ dân phố 9, phường X, đúng không?" instead of listing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from bot.core.text import fold, number_from_words
from storage.models import GroupKind, ResidentGroup

SHOWN = 5  # groups listed at most: a phone screen, and few enough to read
FUZZY_CUTOFF = 82  # "thuan phuc" → "thuan phuoc" (95), "bac xon" → "bac son" (86); "thon ba" for "thon hia" (80) is not
FUZZY_MIN_LENGTH = 3  # shorter ("an") is a word or a piece of many names: matched as a word only

# Words that say what kind of group it is (folded; a phrase before any shorter one it starts
# with). A name keeps them in the ward's list; searching ignores them at the front of both the
# name and the typed text, and a kind typed ranks the groups of that kind first.
KIND_WORDS: tuple[tuple[str, GroupKind | None], ...] = (
    ("to dan pho", GroupKind.TO_DAN_PHO), ("to dan cu", GroupKind.TO_DAN_PHO), ("to dp", GroupKind.TO_DAN_PHO),
    ("tdp", GroupKind.TO_DAN_PHO), ("tdc", GroupKind.TO_DAN_PHO), ("to", GroupKind.TO_DAN_PHO),
    ("khu pho", GroupKind.KHU_PHO), ("kp", GroupKind.KHU_PHO), ("khu", GroupKind.KHU_PHO), ("khoi", GroupKind.KHU_PHO),
    ("thon", GroupKind.THON), ("xom", GroupKind.THON), ("ban", GroupKind.THON), ("ap", GroupKind.AP),
    ("cum", None),
)
_KIND_PHRASES = tuple((tuple(words.split()), kind) for words, kind in KIND_WORDS)
_NUMBER_WORD = "so"  # "số": "tổ dân phố số 9", "số 9"
# Words that, around a number, say nothing more: "tổ dân 9", "9 tổ dân phố".
_KIND_VOCABULARY = frozenset(w for phrase, _ in KIND_WORDS for w in phrase.split()) | {_NUMBER_WORD}
_GLUED = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")  # "tdp9" → "tdp 9", "12a" → "12 a"
_LINK_PREFIX = re.compile(r"^\s*g\s*[_\-\s]", re.IGNORECASE)  # "g_", "G_", "g-", "g "

@dataclass(frozen=True)
class Words:
    """A name or a typed search, folded: all its words, its kind (from the words in front),
    and the rest (``key``) that tells one group from another."""

    folded: str
    kind: GroupKind | None
    key: tuple[str, ...]

    @property
    def key_text(self) -> str:
        return " ".join(self.key)

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(int(word) for word in self.key if word.isdecimal() and len(word) <= 6)

    @property
    def leading_number(self) -> int | None:
        return int(self.key[0]) if self.key and self.key[0].isdecimal() and len(self.key[0]) <= 6 else None


def _near(words: Sequence[str], phrase: tuple[str, ...]) -> bool:
    """A kind phrase of several words typed with one letter wrong, missing or swapped
    ("to dan poh", "khu ph"); a single word ("thon") is never guessed: "than" is a name."""
    return len(phrase) > 1 and OSA.distance(" ".join(words), " ".join(phrase)) <= 1


def split_words(text: str, *, typos: bool = False) -> Words:
    """``text`` folded, digits parted from letters, the kind words taken off its front (with
    ``typos``, also when a phrase of them is typed with one letter wrong)."""
    folded = _GLUED.sub(" ", fold(text))
    words = folded.split()
    kind: GroupKind | None = None
    # One kind phrase, then "số": "Tổ dân phố Tô Hiệu" keeps its "tô".
    for phrase, phrase_kind in _KIND_PHRASES:
        front = words[: len(phrase)]
        if len(front) == len(phrase) and (tuple(front) == phrase or typos and _near(front, phrase)):
            words, kind = words[len(phrase) :], phrase_kind
            break
    if words[:1] == [_NUMBER_WORD]:
        words = words[1:]
    numbers = [w for w in words if w.isdecimal()]
    if typos and len(numbers) == 1 and all(w in _KIND_VOCABULARY for w in words if not w.isdecimal()):
        words = numbers  # "tổ dân 9", "9 tổ dân phố", "tdp số 9": the number is all that tells
    return Words(" ".join(folded.split()), kind, tuple(words))


class Tier(IntEnum):
    """How a group matches, best first."""

    EXACT = 0  # the same number at the front, or the same name, and no other kind typed
    OTHER_KIND = 1  # the same, but the resident typed another kind ("thôn 2" for "Tổ dân phố 2")
    PREFIX = 2  # the name starts with what was typed
    WORD = 3  # a later word of the name starts with it, or the number is further on in the name
    CONTAINS = 4  # anywhere in the name
    FUZZY = 5  # a small typo


@dataclass(frozen=True)
class Match:
    group: ResidentGroup
    tier: Tier
    score: float  # rapidfuzz similarity, 0–100, for a typo: the closest first (else 0: by name)


@dataclass(frozen=True)
class GroupSearch:
    """What a search found: at most ``SHOWN`` groups, best first; ``sure`` when one is clearly
    meant; ``vague`` when only kind words were typed ("tổ dân phố")."""

    groups: tuple[ResidentGroup, ...]
    sure: ResidentGroup | None = None
    vague: bool = False


def _group_kind(group: ResidentGroup, words: Words) -> GroupKind:
    return words.kind or GroupKind(group.kind)


def _tier(query: Words, number: int | None, name: Words) -> Tier | None:
    """How well the group named ``name`` matches ``query`` (None: not at all); ``number``: the
    number the query is (typed as digits or as words), if it is one."""
    tiers: list[Tier] = []
    if number is not None:
        if name.leading_number == number and len(name.key) == 1:
            tiers.append(Tier.EXACT)
        elif name.leading_number == number:
            tiers.append(Tier.PREFIX)
        elif number in name.numbers:
            tiers.append(Tier.WORD)
    if not set(query.numbers) <= set(name.numbers):
        # Digits among words ("bac son 2"): the name must carry them; then the words rank.
        return min(tiers, default=None)
    typed, key = query.key_text, name.key_text
    if typed and not typed.isdecimal():
        if typed == key or query.folded == name.folded:
            tiers.append(Tier.EXACT)
        elif key.startswith(typed):
            tiers.append(Tier.PREFIX)
        elif f" {typed}" in f" {key}":
            tiers.append(Tier.WORD)
        elif len(typed) >= FUZZY_MIN_LENGTH and typed in key:
            tiers.append(Tier.CONTAINS)
        elif len(typed) >= FUZZY_MIN_LENGTH and fuzz.token_sort_ratio(typed, key) >= FUZZY_CUTOFF:
            tiers.append(Tier.FUZZY)  # a letter or two apart, words in any order
    return min(tiers, default=None)


def rank_groups(groups: Iterable[ResidentGroup], text: str, *, shown: int = SHOWN) -> GroupSearch:
    """The groups ``text`` may mean, best first (see the module's docstring)."""
    query = split_words(text[:200], typos=True)
    if not query.key:
        return GroupSearch((), vague=bool(query.folded))
    number = query.leading_number if query.key_text.isdecimal() else number_from_words(query.key)
    matches: list[Match] = []
    for group in groups:
        name = split_words(group.name)
        tier = _tier(query, number, name)
        if tier is None:
            continue
        if tier == Tier.EXACT and query.kind is not None and query.kind != _group_kind(group, name):
            tier = Tier.OTHER_KIND
        score = fuzz.token_sort_ratio(query.key_text, name.key_text) if tier == Tier.FUZZY else 0.0
        matches.append(Match(group, tier, score))
    matches.sort(key=lambda m: (m.tier, -m.score, _natural(m.group.name)))
    # Sure: the only match, or the only exact one with no other name starting the same way
    # ("tổ 3" with "Tổ dân phố 3" and "Tổ dân phố 3A" lists both).
    exact = [m for m in matches if m.tier == Tier.EXACT]
    if len(matches) == 1 or (len(exact) == 1 and not any(m.tier == Tier.PREFIX for m in matches)):
        sure = matches[0].group
    else:
        sure = None
    return GroupSearch(tuple(m.group for m in matches[:shown]), sure)


def match_code(groups: Iterable[ResidentGroup], text: str) -> ResidentGroup | None:
    """The group whose short code ``text`` is ("g_TDP09", "G_tdp09", "tdp09", "TDP 09"…)."""
    candidates = code_candidates(text)
    if not candidates:
        return None
    by_code = {compact_code(g.code): g for g in groups}
    return next((by_code[c] for c in candidates if c in by_code), None)


def search(groups: Sequence[ResidentGroup], text: str, *, ward_id: int | None = None) -> GroupSearch:
    """What a resident choosing a group means by ``text``: a group's short code (in any
    ward: codes are unique), else the groups of ``ward_id`` (all when None) ranked."""
    coded = match_code(groups, text)
    if coded is not None:
        return GroupSearch((coded,), coded)
    return rank_groups([g for g in groups if ward_id is None or g.ward_id == ward_id], text)


def _natural(name: str) -> tuple:
    """"Tổ dân phố 2" before "Tổ dân phố 10"."""
    return tuple((0, int(part), "") if part.isdecimal() else (1, 0, part) for part in re.split(r"(\d+)", fold(name)) if part)


def compact_code(text: str) -> str:
    """A group code as it may be typed: any case, with or without "-", "_", spaces."""
    return "".join(c for c in fold(text) if c.isalnum())


def code_candidates(text: str) -> tuple[str, ...]:
    """The compact codes a typed text may be: itself, and without a "g_" in front (the join
    link's parameter, as printed under the QR code). A bare number is a group's number, never a
    code; nor is anything long or with several words beyond the code's own separators."""
    raw = text.strip()
    if not raw or len(raw) > 40 or len(raw.split()) > 3:
        return ()
    typed = compact_code(raw)
    if not typed or typed.isdecimal():
        return ()
    if has_link_prefix(raw) and len(typed) > 1:
        return (typed[1:], typed)  # the code after "g_" first: that is what the notice board shows
    return (typed,)


def has_link_prefix(text: str) -> bool:
    """Whether ``text`` looks like a join link's parameter: "g_…" (any case)."""
    return _LINK_PREFIX.match(text) is not None
