"""Everything no other route takes: it answers kindly and shows the way back.

Free text where an option was expected, stickers and photos, unknown commands, old or
forged button data: none of it changes anything. The question the bot asked last is asked
again, with its options (the step and its data stay as they were), so a resident who sent a
sticker in the middle of joining is still joining.
"""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.messages import Notice
from handlers import menu, onboarding


async def _offer_again(ctx: Context, text: str) -> None:
    """``text``, then the pending question again; where nothing is pending, the way back."""
    prompt = ctx.pending_prompt()
    options = ctx.pending_options()
    if prompt is not None:
        ctx.reoffered = True  # what was offered stays offered, the step stays the step
        ctx.ask(f"{text}\n\n{prompt}", options) if options else ctx.say(f"{text}\n\n{prompt}")
    elif ctx.person is not None and await onboarding.is_onboarded(ctx):
        await menu.show_main_menu(ctx, text)
    elif ctx.person is not None:
        await onboarding.resume(ctx, note=text)
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


async def repeated_action(ctx: Context) -> None:
    """The button just handled, pressed again (a double tap, a slow network): it was done
    once; say so briefly and change nothing."""
    ctx.replies.append(Notice(ctx.t("common.already_done")))
