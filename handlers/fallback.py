"""Everything no other route takes: it helps, and shows the way on and the way out.

Free text where an option was expected, "tôi không hiểu", stickers and voice notes, unknown
commands, old or forged button data: none of it changes anything. The answer says what went
wrong in one line, where she is (the lesson and page, the question), how to answer on this
channel, and asks the pending question again in full with its options, adding "🙋 Hỏi tổ
trưởng" and "🏠 Về menu chính"; the step and its data stay as they were, so a resident who
sent a sticker in the middle of joining is still joining. A second miss in a row adds an
example. "xin chào" gets a greeting; "thôi" in a step that takes free text leaves it.
"""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.messages import Notice, Option
from handlers import menu, onboarding
from handlers.steps import Step


def _where(ctx: Context) -> str | None:
    """Where she is, when she is inside a lesson or its quiz."""
    lesson = ctx.lessons.get(str(ctx.data.get("lesson", "")))
    if lesson is None:
        return None
    number = ctx.lessons.position(lesson.id)
    card, question = ctx.data.get("card"), ctx.data.get("question")
    if ctx.state.step == Step.LESSON and isinstance(card, int):
        return ctx.t("fallback.where_card", number=number, title=lesson.title, card=card + 1, cards=len(lesson.cards))
    if ctx.state.step == Step.QUIZ and isinstance(question, int):
        return ctx.t("fallback.where_question", number=number, title=lesson.title,
                     question=question + 1, questions=len(lesson.quiz.questions))
    return None


def _example(ctx: Context, options: list[Option]) -> str:
    """One line showing how to pick the first option on this channel."""
    label = options[0].label
    if ctx.capabilities.numbered_menus:
        return ctx.t("fallback.example_type", label=label, mark=ctx.pending_marks().of(0))
    return ctx.t("fallback.example_press", label=label)


async def _help(ctx: Context, lead: str, *, missed: bool = True) -> None:
    """``lead``, where she is and how to answer, then the pending question again with a way
    out; where nothing is pending, the way back (the menu, or the joining question)."""
    prompt = ctx.pending_prompt()
    member = ctx.person is not None and await onboarding.is_onboarded(ctx)
    if prompt is None:
        if member:
            await menu.show_main_menu(ctx, lead)
        elif ctx.person is not None:
            await onboarding.resume(ctx, note=lead)
        else:
            ctx.ask(lead, [(ctx.t("onboarding.begin"), "begin")])
        return
    options = ctx.pending_options()
    parts = [lead]
    if (where := _where(ctx)) is not None:
        parts.append(where)
    if options and not ctx.capabilities.numbered_menus:
        parts.append(ctx.t("fallback.how_buttons"))  # numbered channels: the menu's own hint says how
    if missed and ctx.misses() >= 1 and options:
        parts.append(_example(ctx, options))
    ctx.reoffered = True  # the step stays the step, the question the question
    ctx.missed = missed
    if member:
        actions = {o.action for o in options}
        options += [Option(label, action) for label, action in (
            (ctx.t("fallback.ask_leader"), "hotro"), (ctx.t("menu.back"), "menu")) if action not in actions]
    text = "\n\n".join([*parts, prompt])
    if options:
        ctx.ask(text, options, marks=ctx.pending_marks())
    else:
        ctx.say(text)


async def unexpected_text(ctx: Context) -> None:
    """A reply that picked nothing."""
    if ctx.person is None and not ctx.pending_options():
        # Someone new who wrote something instead of /start: greet them properly.
        await onboarding.start(ctx)
        return
    await _help(ctx, ctx.t("fallback.use_options" if ctx.pending_options() else "fallback.not_understood"))


async def confused(ctx: Context) -> None:
    """"tôi không hiểu", "giúp", "làm sao", "?"…"""
    if ctx.person is None and not ctx.pending_options():
        await onboarding.start(ctx)
        return
    await _help(ctx, ctx.t("fallback.confused"))


async def ambiguous(ctx: Context) -> None:
    """A reply that could mean several options: name them, ask again."""
    names = [f"«{o.label}»" for o in ctx.candidates]
    choices = ctx.t("fallback.or", first=", ".join(names[:-1]), last=names[-1]) if len(names) > 1 else "".join(names)
    await _help(ctx, ctx.t("fallback.ambiguous", choices=choices))


async def greeted(ctx: Context) -> None:
    """"xin chào": a greeting and the menu (the lesson she was in waits under "📖 Học tiếp")."""
    if ctx.person is None:
        await onboarding.start(ctx)
    elif await onboarding.is_onboarded(ctx):
        await menu.show_main_menu(ctx, ctx.t("menu.welcome_back", name=ctx.person.display_name or ""))
    else:
        await onboarding.resume(ctx, note=ctx.t("fallback.greeting_joining"))


async def cancelled(ctx: Context) -> None:
    """"thôi", "hủy" typed (and not an option's own word): leave the step; nothing typed in it
    is kept. What was begun waits (the card, the quiz: "📖 Học tiếp")."""
    if ctx.person is not None and await onboarding.is_onboarded(ctx):
        await menu.show_main_menu(ctx, ctx.t("fallback.cancelled"))
    elif ctx.person is not None:
        await onboarding.resume(ctx, note=ctx.t("fallback.cancel_joining"))
    else:
        await onboarding.start(ctx)


async def attachment(ctx: Context) -> None:
    """A sticker, a voice note, a photo where text was expected."""
    await _help(ctx, ctx.t("fallback.attachment"))


async def unknown_command(ctx: Context) -> None:
    await _help(ctx, ctx.t("fallback.unknown_command"), missed=False)


async def stale_action(ctx: Context) -> None:
    """A button from an old message, or data nobody could have been shown."""
    await _help(ctx, ctx.t("common.stale"), missed=False)


async def repeated_action(ctx: Context) -> None:
    """The button just handled, pressed again (a double tap, a slow network): it was done
    once; say so briefly and change nothing."""
    ctx.replies.append(Notice(ctx.t("common.already_done")))
