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
