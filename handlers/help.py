"""Help: what the bot does, how to use it, where to get a person's help.

Leaders and admins also read their own commands (``/nhom``, ``/quantri``); others never
see them."""

from __future__ import annotations

from bot.core.conversation import Context
from storage.models import RoleKind


async def show_help(ctx: Context) -> None:
    t = ctx.t
    key = "help.numbered" if ctx.capabilities.numbered_menus else "help.buttons"
    text = t("help.text", how=t(key))
    if ctx.person is None:
        ctx.ask(text, [(t("onboarding.begin"), "begin")])
        return
    kinds = await ctx.role_kinds()
    if RoleKind.LEADER in kinds:
        text += "\n\n" + t("help.leader")
    if RoleKind.ADMIN in kinds:
        text += "\n\n" + t("help.admin")
    ctx.ask(text, [(t("menu.back"), "menu")])
