"""Everything no other route takes: it answers kindly and shows the way back.

Free text where an option was expected, stickers and photos, unknown commands, old or
forged button data: none of it changes anything, and the pending options are shown again.
"""

from __future__ import annotations

from bot.core.conversation import Context
from handlers import menu, onboarding


async def _offer_again(ctx: Context, text: str) -> None:
    options = ctx.pending_options()
    if options:
        hint = ctx.t("fallback.numbered_hint", count=len(options)) if ctx.capabilities.numbered_menus else ""
        ctx.ask(f"{text}\n{hint}".strip(), options)
    elif ctx.person is not None:
        await menu.show_main_menu(ctx, text)
    else:
        ctx.ask(text, [(ctx.t("onboarding.begin"), "begin")])


async def unexpected_text(ctx: Context) -> None:
    if ctx.person is None and not ctx.pending_options():
        # Someone new who wrote "xin chào" instead of /start: greet them properly.
        await onboarding.start(ctx)
        return
    key = "fallback.use_options" if ctx.pending_options() else "fallback.not_understood"
    await _offer_again(ctx, ctx.t(key))


async def attachment(ctx: Context) -> None:
    await _offer_again(ctx, ctx.t("fallback.attachment"))


async def unknown_command(ctx: Context) -> None:
    await _offer_again(ctx, ctx.t("fallback.unknown_command"))


async def stale_action(ctx: Context) -> None:
    """A button from an old message, or data nobody could have been shown."""
    await _offer_again(ctx, ctx.t("common.stale"))
