"""Rendering helpers shared by channels without buttons (terminal, Zalo)."""

from __future__ import annotations

from bot.core.i18n import Translate
from bot.core.messages import Menu


def numbered_menu(menu: Menu, t: Translate) -> str:
    """A menu as text with numbered lines and a hint: "Gõ 1, 2 hoặc 3"."""
    lines = [menu.text, ""]
    lines += [f"{i}. {option.label}" for i, option in enumerate(menu.options, 1)]
    count = len(menu.options)
    if count == 1:
        hint = t("render.type_one")
    else:
        numbers = ", ".join(str(i) for i in range(1, count))
        hint = t("render.type_number", numbers=numbers, last=count)
    return "\n".join(lines + ["", hint])


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
