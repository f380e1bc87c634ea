"""Help: what the bot does, how to use it, where to get a person's help."""

from __future__ import annotations

from bot.core.conversation import Context


async def show_help(ctx: Context) -> None:
    t = ctx.t
    key = "help.numbered" if ctx.capabilities.numbered_menus else "help.buttons"
    text = t("help.text", how=t(key))
    if ctx.person is None:
        ctx.ask(text, [(t("onboarding.begin"), "begin")])
    else:
        ctx.ask(text, [(t("menu.back"), "menu")])
