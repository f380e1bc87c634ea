"""``/nhacnho``, ``/dung``, ``/batdau`` and the "Nhắc nhở" menu: the resident decides
whether and when to be reminded of an unfinished lesson."""

from __future__ import annotations

from bot.core.conversation import Context
from handlers import menu
from handlers.common import int_arg
from handlers.fallback import stale_action
from handlers.steps import Step


def _status(ctx: Context) -> str:
    assert ctx.person is not None
    if not ctx.person.reminders_on:
        return ctx.t("reminders.status_off")
    return ctx.t("reminders.status_on", hour=f"{ctx.person.reminder_hour:02d}:00")


async def show_reminders(ctx: Context) -> None:
    """The current setting and the hours to choose from."""
    assert ctx.person is not None
    t = ctx.t
    options = [(f"{'✅ ' if ctx.person.reminders_on and h == ctx.person.reminder_hour else ''}{h:02d}:00",
                f"reminders:hour:{h}") for h in ctx.services.reminder_hours]
    if ctx.person.reminders_on:
        options.append((t("reminders.stop_button"), "reminders:off"))
    options.append((t("menu.back"), "menu"))
    ctx.goto(Step.MENU)
    ctx.ask(_status(ctx) + "\n\n" + t("reminders.choose"), options, columns=3)


async def stop_reminders(ctx: Context) -> None:
    """``/dung``."""
    assert ctx.person is not None
    ctx.person.reminders_on = False
    await menu.show_main_menu(ctx, ctx.t("reminders.stopped"))


async def resume_reminders(ctx: Context) -> None:
    """``/batdau``: on again, and the count of unanswered reminders starts afresh."""
    assert ctx.person is not None
    ctx.person.reminders_on = True
    ctx.person.reminders_unanswered = 0
    await menu.show_main_menu(ctx, ctx.t("reminders.resumed", hour=f"{ctx.person.reminder_hour:02d}:00"))


async def reminders_action(ctx: Context) -> None:
    """``reminders:hour:<h>``, ``reminders:off``, ``reminders:on``."""
    assert ctx.person is not None
    kind = ctx.args[0] if ctx.args else ""
    if kind == "hour":
        hour = int_arg(ctx, 1, high=24)
        if hour is None or hour not in ctx.services.reminder_hours:
            await stale_action(ctx)
            return
        ctx.person.reminder_hour = hour
        ctx.person.reminders_on = True
        ctx.person.reminders_unanswered = 0
        await menu.show_main_menu(ctx, ctx.t("reminders.saved", hour=f"{hour:02d}:00"))
    elif kind == "off":
        await stop_reminders(ctx)
    elif kind == "on":
        await resume_reminders(ctx)
    else:
        await show_reminders(ctx)
