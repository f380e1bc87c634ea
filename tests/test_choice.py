"""The one rule by which a typed reply picks an option (``bot.core.choice``), as a table."""

from __future__ import annotations

import pytest

from bot.core.choice import marks_for, pick
from bot.core.messages import Marks, Option

CARD = [Option("Tiếp ▶", "next"), Option("◀ Quay lại", "prev"), Option("🏠 Về menu chính", "menu")]
MAIN = [Option("📖 Học tiếp", "next"), Option("📚 Tất cả bài học", "lessons"), Option("📊 Tiến độ của tôi", "progress"),
        Option("⏰ Nhắc nhở", "reminders"), Option("🙋 Nhờ hỗ trợ", "hotro"), Option("❓ Hướng dẫn", "help")]
QUIZ = [Option("Tài khoản mức 1", "a"), Option("Tài khoản mức 2", "b"), Option("Không cần tài khoản", "c")]
FAILED = [Option("🔁 Làm lại bài kiểm tra", "retry"), Option("📖 Xem lại bài học", "review"), Option("🏠 Về menu chính", "menu")]
YES_NO = [Option("✅ Đồng ý", "yes", ("có", "vâng", "ok")), Option("Không đồng ý", "no", ("không", "thôi"))]

PICKS = [
    # numbers, however they are written, on a numbered menu
    ("2", CARD, Marks.NUMBERS, "prev"), ("2.", CARD, Marks.NUMBERS, "prev"), (" 2 ", CARD, Marks.NUMBERS, "prev"),
    ("số 2", CARD, Marks.NUMBERS, "prev"), ("so 2", CARD, Marks.NUMBERS, "prev"), ("2️⃣", CARD, Marks.NUMBERS, "prev"),
    ("②", CARD, Marks.NUMBERS, "prev"), ("２", CARD, Marks.NUMBERS, "prev"), ("hai", CARD, Marks.NUMBERS, "prev"),
    ("Một", CARD, Marks.NUMBERS, "next"), ("chọn 3", CARD, Marks.NUMBERS, "menu"),
    # letters on a lettered menu; a number there is the answer's own number
    ("b", QUIZ, Marks.LETTERS, "b"), ("B", QUIZ, Marks.LETTERS, "b"), ("câu b", QUIZ, Marks.LETTERS, "b"),
    ("ý B", QUIZ, Marks.LETTERS, "b"), ("Câu C.", QUIZ, Marks.LETTERS, "c"), ("đáp án a", QUIZ, Marks.LETTERS, "a"),
    ("2", QUIZ, Marks.LETTERS, "b"), ("mức 2", QUIZ, Marks.LETTERS, "b"), ("muc 1", QUIZ, Marks.LETTERS, "a"),
    # labels and aliases, with or without diacritics
    ("Học tiếp", MAIN, Marks.NUMBERS, "next"), ("hoc tiep", MAIN, Marks.NUMBERS, "next"),
    ("HỌC TIẾP!", MAIN, Marks.NUMBERS, "next"), ("vâng", YES_NO, Marks.NUMBERS, "yes"), ("thoi", YES_NO, Marks.NUMBERS, "no"),
    # a prefix or whole words of a label
    ("tiep", CARD, Marks.NUMBERS, "next"), ("lam lai", FAILED, Marks.NUMBERS, "retry"), ("xem lai", FAILED, Marks.NUMBERS, "review"),
    ("tien do", MAIN, Marks.NUMBERS, "progress"), ("huong dan", MAIN, Marks.NUMBERS, "help"), ("menu", CARD, Marks.NUMBERS, "menu"),
    ("tat ca", MAIN, Marks.NUMBERS, "lessons"),
    # small typos
    ("lam lia", FAILED, Marks.NUMBERS, "retry"), ("nhac nhơ", MAIN, Marks.NUMBERS, "reminders"),
    ("tat ca bai hco", MAIN, Marks.NUMBERS, "lessons"), ("huong dna", MAIN, Marks.NUMBERS, "help"),
]


@pytest.mark.parametrize(("typed", "options", "marks", "action"), PICKS)
def test_a_typed_reply_picks_the_option_meant(typed: str, options: list[Option], marks: Marks, action: str) -> None:
    picked = pick(typed, options, marks=marks)
    assert picked.option is not None and picked.option.action == action, (typed, picked)


NOTHING = [
    ("9", CARD, Marks.NUMBERS), ("0", CARD, Marks.NUMBERS), ("d", QUIZ, Marks.LETTERS), ("xyz", MAIN, Marks.NUMBERS),
    ("tôi không hiểu", CARD, Marks.NUMBERS), ("", CARD, Marks.NUMBERS), ("👍", CARD, Marks.NUMBERS),
    ("hoc tiep " * 30, MAIN, Marks.NUMBERS),  # too long to be a choice
]


@pytest.mark.parametrize(("typed", "options", "marks"), NOTHING)
def test_a_reply_that_means_none_picks_nothing(typed: str, options: list[Option], marks: Marks) -> None:
    picked = pick(typed, options, marks=marks)
    assert picked.option is None and not picked.ambiguous


@pytest.mark.parametrize(("typed", "options", "marks", "meant"), [
    ("hoc", MAIN, Marks.NUMBERS, {"next", "lessons"}),
    ("lai", FAILED, Marks.NUMBERS, {"retry", "review"}),
    ("tai khoan", QUIZ, Marks.LETTERS, {"a", "b", "c"}),
])
def test_a_reply_that_could_mean_several_is_ambiguous(typed: str, options: list[Option], marks: Marks, meant: set[str]) -> None:
    picked = pick(typed, options, marks=marks)
    assert picked.ambiguous and {o.action for o in picked.candidates} == meant


def test_in_a_step_that_takes_text_only_an_exact_reply_picks() -> None:
    cancel = [Option("✖ Thôi, không hỏi nữa", "hotro:no", ("không", "thôi"))]
    assert pick("thôi", cancel, loose=False).option == cancel[0]
    assert pick("1", cancel, loose=False).option == cancel[0]
    assert pick("thoi khong hoi", cancel, loose=False).option is None  # a question, not a press
    assert pick("thoi khong hoi", cancel, loose=True).option == cancel[0]


def test_the_labels_of_a_message_sent_unasked_are_picked_by_label_only() -> None:
    extra = [Option("📖 Học tiếp", "next"), Option("🔕 Tắt nhắc nhở", "reminders:off")]
    assert pick("tat nhac nho", QUIZ, marks=Marks.LETTERS, extra=extra).option == extra[1]
    assert pick("2", CARD, extra=extra).option == CARD[1]  # a number belongs to the question asked


def test_a_menu_whose_text_holds_a_numbered_list_is_lettered() -> None:
    assert marks_for("Các bước:\n1. Mở App Store.\n2. Tìm VNeID.", None) is Marks.LETTERS
    assert marks_for("Bạn muốn làm gì tiếp theo?", None) is Marks.NUMBERS
    assert marks_for("Năm 2025 có 2 đợt.", None) is Marks.NUMBERS
    assert marks_for("1. Một", Marks.NUMBERS) is Marks.NUMBERS
