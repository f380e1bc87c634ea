"""``/lienket``: one person, several channels (Telegram and Zalo share one progress).

On the channel where the resident has learned, ``/lienket`` → "Lấy mã liên kết" gives a
short code (single use, 10 minutes). On the other channel the resident sends
``/lienket CODE`` (or "Tôi đã có mã" and types it); after one confirmation that identity
joins the code's person. If it had learned there too, both progresses are merged
(``storage.linking.merge_people``): no completion is lost.

Actions: ``link:new`` (give a code), ``link:enter`` (ask for one), ``link:yes`` (confirm;
only valid right after the confirmation question, with the code kept in the step data),
``link:no`` (cancel).
"""

from __future__ import annotations

from bot.core.conversation import Context
from handlers import menu
from handlers.common import words
from handlers.steps import Step
from storage import audit
from storage.linking import CODE_TTL, create_code, leave_step, link_identity, normalise_code, usable_code
from storage.models import Person
from storage.people import get_person

CODE_MAX = 16  # longer input is not a code: do not even look it up


async def start_linking(ctx: Context) -> None:
    """``/lienket`` or ``/lienket CODE``."""
    t = ctx.t
    if ctx.args:
        await _check_code(ctx, " ".join(ctx.args))
        return
    if ctx.person is None:
        _ask_code(ctx)  # nothing learned here yet: the resident can only bring a code
        return
    ctx.goto(Step.MENU)
    ctx.ask(
        t("linking.choose"),
        [(t("linking.give_code"), "link:new"), (t("linking.have_code"), "link:enter"), (t("menu.back"), "menu")],
    )


async def link_action(ctx: Context) -> None:
    kind = ctx.args[0] if len(ctx.args) == 1 else ""
    if kind == "new" and ctx.person is not None:
        await _give_code(ctx)
    elif kind in ("new", "enter"):
        _ask_code(ctx)
    elif kind == "yes":
        await _confirm(ctx)
    else:
        await _cancel(ctx, ctx.t("linking.cancelled"))


async def receive_code(ctx: Context) -> None:
    """Text typed after "Tôi đã có mã"."""
    await _check_code(ctx, ctx.incoming.text or "")


async def _give_code(ctx: Context) -> None:
    assert ctx.person is not None and ctx.person.id is not None
    code = await create_code(ctx.session, person_id=ctx.person.id, now=ctx.now)
    ctx.goto(Step.MENU)
    minutes = int(CODE_TTL.total_seconds() // 60)
    ctx.ask(ctx.t("linking.code", code=code.code, minutes=minutes), [(ctx.t("menu.back"), "menu")])


def _ask_code(ctx: Context) -> None:
    ctx.goto(Step.LINK_CODE)
    ctx.ask(ctx.t("linking.ask_code"), [(ctx.t("linking.cancel"), "link:no", words(ctx, "words.no"))])


async def _check_code(ctx: Context, typed: str) -> None:
    t = ctx.t
    code = None
    if len(typed) <= CODE_MAX and normalise_code(typed):
        code = await usable_code(ctx.session, code=typed, now=ctx.now)
    if code is None:
        ctx.goto(Step.LINK_CODE)
        ctx.ask(t("linking.code_invalid"), [(t("linking.cancel"), "link:no", words(ctx, "words.no"))])
        return
    if code.person_id == ctx.identity.person_id:
        await _cancel(ctx, t("linking.already"))
        return
    owner = await ctx.session.get(Person, code.person_id)
    assert owner is not None
    ctx.goto(Step.LINK_CONFIRM, code=code.code)
    ctx.ask(
        t("linking.confirm", name=owner.display_name or ""),
        [
            (t("linking.yes"), "link:yes", words(ctx, "words.yes")),
            (t("linking.no"), "link:no", words(ctx, "words.no")),
        ],
    )


async def _confirm(ctx: Context) -> None:
    t = ctx.t
    typed = ctx.data.get("code")
    if ctx.state.step != Step.LINK_CONFIRM or not isinstance(typed, str):
        await _cancel(ctx, t("common.stale"))  # a forged or old "yes": nothing happens
        return
    code = await usable_code(ctx.session, code=typed, now=ctx.now)
    if code is None:
        ctx.goto(Step.LINK_CODE)
        ctx.ask(t("linking.code_invalid"), [(t("linking.cancel"), "link:no", words(ctx, "words.no"))])
        return
    assert ctx.identity.id is not None
    previous = ctx.identity.person_id
    summary = await link_identity(ctx.session, identity=ctx.identity, code=code, now=ctx.now)
    await leave_step(ctx.session, person_id=code.person_id, step=Step.QUIZ, to=Step.MENU)
    audit.record(
        ctx.session,
        actor=f"person:{code.person_id}",
        action="identity.link",
        target=f"identity:{ctx.identity.id}",
        now=ctx.now,
        details={
            "channel": ctx.identity.channel,
            "merged_person": previous if summary is not None else None,
            "moved_lessons": summary.moved_lessons if summary else 0,
            "combined_lessons": summary.combined_lessons if summary else 0,
        },
    )
    ctx.person = await get_person(ctx.session, person_id=code.person_id)
    assert ctx.person is not None
    await menu.show_main_menu(ctx, t("linking.done", name=ctx.person.display_name or ""))


async def _cancel(ctx: Context, text: str) -> None:
    if ctx.person is not None:
        await menu.show_main_menu(ctx, text)
    else:
        ctx.goto(Step.NEW)
        ctx.ask(text, [(ctx.t("onboarding.begin"), "begin")])
