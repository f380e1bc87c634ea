"""Rendering helpers shared by channels without buttons (terminal, Zalo)."""

from __future__ import annotations

from bot.core.i18n import Translate
from bot.core.messages import Marks, Menu


def numbered_menu(menu: Menu, t: Translate) -> str:
    """A menu as text with numbered (or lettered) lines and one hint: "Gõ 1, 2 hoặc 3"."""
    marks = [menu.marks.of(i) for i in range(len(menu.options))]
    lines = [menu.text, ""]
    lines += [f"{m}. {option.label}" for m, option in zip(marks, menu.options, strict=True)]
    return "\n".join(lines + ["", type_hint(menu.marks, len(menu.options), t)])


def type_hint(marks: Marks, count: int, t: Translate) -> str:
    """"(Gõ 1, 2 hoặc 3 rồi gửi.)" or "(Gõ chữ A, B hoặc C rồi gửi.)"."""
    shown = [marks.of(i) for i in range(count)]
    letters = marks is Marks.LETTERS
    if count == 1:
        return t("render.type_letter_one" if letters else "render.type_one", mark=shown[0])
    return t("render.type_letter" if letters else "render.type_number", numbers=", ".join(shown[:-1]), last=shown[-1])


def keyword(label: str) -> str:
    """What to type for an option: its label without the leading emoji and symbols
    ("📖 Học tiếp" → "Học tiếp"). Typed, it folds like the label, so it picks the option."""
    start = next((i for i, char in enumerate(label) if char.isalnum()), len(label))
    return label[start:].strip() or label.strip()


def keyword_menu(menu: Menu, t: Translate) -> str:
    """A menu as text with its options as words to type, not numbers: for a message that
    arrives unasked while the person is answering something else, where a typed "2" must
    keep answering that ("Gõ «Học tiếp» hoặc «Tắt nhắc nhở» rồi gửi.")."""
    words = [f"«{keyword(option.label)}»" for option in menu.options]
    if len(words) == 1:
        hint = t("render.type_word", word=words[0])
    else:
        hint = t("render.type_words", words=", ".join(words[:-1]), last=words[-1])
    return "\n".join([menu.text, "", hint])
