"""The ranking behind group search (``bot.group_search``): numbers are never guessed, kind words
are ignored but break ties, names match exactly, by prefix, by word, then with small typos; at
most five are shown; one clear match is ``sure``. The conversation around it is tested on every
channel in tests/contract/test_group_search.py."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.group_search import (
    SHOWN,
    code_candidates,
    match_code,
    rank_groups,
    search,
    split_words,
)
from bot.core.text import number_from_words
from storage.models import GroupKind, ResidentGroup

KINDS = {"Tổ": GroupKind.TO_DAN_PHO, "Thôn": GroupKind.THON, "Khu": GroupKind.KHU_PHO, "Ấp": GroupKind.AP}


def ward(*names: str, ward_id: int = 1) -> list[ResidentGroup]:
    groups = []
    for number, name in enumerate(names, 1):
        kind = next((k for prefix, k in KINDS.items() if name.startswith(prefix)), GroupKind.TO_DAN_PHO)
        groups.append(ResidentGroup(id=ward_id * 100 + number, ward_id=ward_id, code=f"W{ward_id}-{number:02d}",
                                    name=name, kind=kind))
    return groups


DEMO = ward(*(f"Tổ dân phố {n}" for n in range(1, 8)), "Tổ dân phố Bắc Sơn", "Tổ dân phố Hòa An",
            "Tổ dân phố Thuận Phước", "Tổ dân phố 9", "Tổ dân phố 12", "Thôn 2", "Thôn Hải Châu",
            "Khu phố Tô Hiệu", "Tổ dân phố 3A", "Thôn Đông 9")


def names(text: str, groups: list[ResidentGroup] = DEMO) -> tuple[str | None, list[str]]:
    found = rank_groups(groups, text)
    return (found.sure.name if found.sure else None), [g.name for g in found.groups]


def test_the_forms_residents_type() -> None:
    nine = ("Tổ dân phố 9", ["Tổ dân phố 9", "Thôn Đông 9"])
    assert names("tổ dân phố số 9") == nine
    assert names("tdp 9") == names("TDP9") == names("Tdp số 9") == names("to dan pho 9") == nine
    assert names("9") == nine  # the number alone: the group numbered 9, then 9 further in a name
    assert names("to 5") == names("tổ 5") == names("5") == ("Tổ dân phố 5", ["Tổ dân phố 5"])
    assert names("12") == ("Tổ dân phố 12", ["Tổ dân phố 12"])
    assert names("tổ 03") == (None, ["Tổ dân phố 3", "Tổ dân phố 3A"])  # "3A" starts the same: both


def test_a_number_is_never_guessed() -> None:
    assert names("19") == (None, [])
    assert names("1") == ("Tổ dân phố 1", ["Tổ dân phố 1"])  # not 12, not 10–19
    assert names("tổ 40") == (None, [])


def test_a_kind_typed_ranks_that_kind_first_but_drops_no_group() -> None:
    assert names("thôn 2") == ("Thôn 2", ["Thôn 2", "Tổ dân phố 2"])
    assert names("2") == (None, ["Thôn 2", "Tổ dân phố 2"])  # either: she chooses
    assert names("tổ 2") == ("Tổ dân phố 2", ["Tổ dân phố 2", "Thôn 2"])
    assert names("khu phố 5") == ("Tổ dân phố 5", ["Tổ dân phố 5"])  # the ward calls it otherwise


def test_numbers_in_words_count_as_numbers_and_as_names() -> None:
    assert names("hai") == (None, ["Thôn 2", "Tổ dân phố 2", "Thôn Hải Châu"])
    assert names("mười hai") == ("Tổ dân phố 12", ["Tổ dân phố 12"])
    assert [number_from_words(w.split()) for w in ("mot", "bon", "tu", "muoi", "muoi lam", "hai muoi",
                                                    "hai muoi mot", "chin muoi chin", "nam")] == \
        [1, 4, 4, 10, 15, 20, 21, 99, 5]
    assert [number_from_words(w.split()) for w in ("khong", "lam", "muoi muoi", "hai hai", "", "mot muoi")] == \
        [None, None, None, None, None, None]


def test_names_exact_by_prefix_by_word_and_with_small_typos() -> None:
    bac_son = ("Tổ dân phố Bắc Sơn", ["Tổ dân phố Bắc Sơn"])
    assert names("bac son") == names("Bắc Sơn") == names("tổ dân phố bắc sơn") == bac_son
    assert names("bắc") == names("son") == bac_son  # prefix, a later word
    assert names("Hoà An") == names("hoa an") == ("Tổ dân phố Hòa An", ["Tổ dân phố Hòa An"])
    assert names("an") == ("Tổ dân phố Hòa An", ["Tổ dân phố Hòa An"])  # a word, not "thuAN"
    # Typos: a letter wrong, missing, doubled, swapped; words swapped; a typo in the kind words.
    for typed in ("thuan phuc", "thuann phuoc", "phuoc thuan", "to dan poh thuan phuoc"):
        assert names(typed) == ("Tổ dân phố Thuận Phước", ["Tổ dân phố Thuận Phước"]), typed
    assert names("bac xon") == bac_son
    assert names("to dan poh 9")[0] == "Tổ dân phố 9"
    assert names("tổ dân 9")[0] == names("9 tổ dân phố")[0] == "Tổ dân phố 9"
    # The kind words come off the front once: "Tô Hiệu" keeps its "tô".
    assert names("to hieu") == ("Khu phố Tô Hiệu", ["Khu phố Tô Hiệu"])
    assert split_words("Khu phố Tô Hiệu").key == ("to", "hieu")


def test_only_kind_words_is_vague_and_chat_finds_nothing() -> None:
    for typed in ("tổ dân phố", "thôn", "TDP", "khu phố số"):
        found = rank_groups(DEMO, typed)
        assert (found.groups, found.sure, found.vague) == ((), None, True), typed
    for typed in ("thôi", "hủy", "không đổi nữa", "xin chào", "tôi không hiểu", "?", "", "hoa sen"):
        found = rank_groups(DEMO, typed)
        assert (found.groups, found.sure) == ((), None), typed
    assert rank_groups(DEMO, "?").vague is False


def test_at_most_five_are_shown_best_first() -> None:
    many = ward("Tổ dân phố Hòa Xuân", "Tổ dân phố Hòa An", "Tổ dân phố Hòa Bình", "Tổ dân phố Hòa Lạc",
                "Tổ dân phố Hòa Phú", "Tổ dân phố Hòa Mỹ", "Tổ dân phố Hòa Khánh", "Thôn An Hòa")
    found = rank_groups(many, "hoa")
    assert found.sure is None and len(found.groups) == SHOWN == 5
    # Names starting with it, in the ward's natural order; "An Hòa" (a later word) would come after.
    assert [g.name for g in found.groups] == ["Tổ dân phố Hòa An", "Tổ dân phố Hòa Bình", "Tổ dân phố Hòa Khánh",
                                              "Tổ dân phố Hòa Lạc", "Tổ dân phố Hòa Mỹ"]
    assert [g.name for g in rank_groups(many, "hoa", shown=10).groups][-1] == "Thôn An Hòa"
    # A typo ranks the closest name first.
    assert [g.name for g in rank_groups(many, "hoa bnh").groups][0] == "Tổ dân phố Hòa Bình"
    numbered = ward(*(f"Tổ dân phố {n}" for n in range(1, 40)))
    assert names("tổ 1", numbered) == ("Tổ dân phố 1", ["Tổ dân phố 1"])


def test_the_short_code_any_case_with_or_without_g() -> None:
    groups = ward("Tổ dân phố 1", "Thôn 2") + [ResidentGroup(id=900, ward_id=2, code="DEMO-TDP09", name="Tổ dân phố Hòa An")]
    for typed in ("g_DEMO-TDP09", "G_demo-tdp09", "g-demo-tdp09", " g_DEMO-TDP09 ", "DEMO-TDP09", "demo tdp09",
                  "demotdp09"):
        assert match_code(groups, typed) is groups[-1], typed
    for typed in ("09", "9", "g_", "g_NOPE", "tổ dân phố Hòa An", "", "/start g_DEMO-TDP09"):
        assert match_code(groups, typed) is None, typed
    assert code_candidates("12") == ()  # a bare number is a group's number, never a code
    # A code is found in every ward (codes are unique); a name only in the ward being chosen from.
    assert search(groups, "g_demo-tdp09", ward_id=1).sure is groups[-1]
    assert search(groups, "hoa an", ward_id=1).groups == ()
    assert search(groups, "hoa an").sure is groups[-1]


def test_after_g_the_code_is_read_first() -> None:
    groups = [ResidentGroup(id=1, ward_id=1, code="GTDP1", name="A"), ResidentGroup(id=2, ward_id=1, code="TDP1", name="B")]
    assert match_code(groups, "g_TDP1").name == "B"  # type: ignore[union-attr]
    assert match_code(groups, "GTDP1").name == "A"  # type: ignore[union-attr]


@given(st.text(max_size=300))
def test_any_text_gives_at_most_five_known_groups(text: str) -> None:
    found = search(DEMO, text, ward_id=1)
    assert len(found.groups) <= SHOWN and all(any(g is d for d in DEMO) for g in found.groups)
    assert found.sure is None or any(found.sure is g for g in found.groups)
