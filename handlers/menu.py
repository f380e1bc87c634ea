"""The main menu: the place every journey returns to."""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.i18n import Translate
from handlers.steps import Step


def main_options(t: Translate) -> list[tuple[str, str]]:
    return [
        (t("menu.continue"), "next"),
        (t("menu.lessons"), "lessons:0"),
        (t("menu.progress"), "progress"),
        (t("menu.reminders"), "reminders"),
        (t("menu.help"), "help"),
    ]


async def show_main_menu(ctx: Context, text: str | None = None) -> None:
    ctx.goto(Step.MENU)
    ctx.ask(text or ctx.t("menu.prompt"), main_options(ctx.t))


async def open_menu(ctx: Context) -> None:
    """``/menu`` and the "Menu" option everywhere."""
    await show_main_menu(ctx)
