"""``/lienket``: one person, several channels (Telegram and Zalo share one progress).

1. On the channel where the resident has learned, ``/lienket`` → "Lấy mã liên kết" gives a
   short code (single use, 10 minutes).
2. On the other channel the resident sends ``/lienket CODE`` (or "Tôi đã có mã" and types
   it). A valid code is *claimed* by that identity, which is told to confirm on the account
   that made the code — never whose code it is. Wrong codes are limited per identity
   (``storage.linking.MAX_FAILURES`` per ``ATTEMPT_WINDOW``).
3. The owner gets, through the outbox (kind ``link_confirm``, due now), "Có người muốn liên
   kết… Đó có phải bạn không?" with "✅ Đúng, liên kết" / "❌ Không phải tôi"; ``/lienket``
   on their side asks the same at once. Only their "yes" joins the claiming identity to
   their person (merging the two progresses, ``storage.linking.merge_people``); both sides
   are told (the claimer through the outbox, kind ``link_done``). "No" kills the code and
   tells the claimer nothing.

Actions: ``link:new`` (give a code) · ``link:enter`` (ask for one) · ``link:no`` (cancel) —
offered in this conversation · ``link:ok:<code id>`` / ``link:deny:<code id>`` (the owner's
answer; free actions, since they come in a message the outbox sent: authorised from the
database when pressed — the presser's person owns the code, which is claimed, unused and
unexpired).
"""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.messages import Option
from bot.delivery.transport import OutboundMessage
from handlers import menu
from handlers.common import int_arg, local_time, words
from handlers.fallback import stale_action
from handlers.steps import Step
from storage import audit
from storage.linking import (
    ATTEMPT_WINDOW,
    CODE_TTL,
    MAX_FAILURES,
    Claim,
    claim_code,
    claimed_code,
    create_code,
    kill,
    leave_step,
    link_identity,
    looks_like_code,
    pending_claim,
    record_attempt,
    recent_failures,
    usable_code,
    wards_of,
)
from storage.models import Identity, LinkCode, Person
from storage.outbox import enqueue, outbox_row
from storage.reach import reachable

CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo"}


async def start_linking(ctx: Context) -> None:
    """``/lienket`` or ``/lienket CODE``; with a claim waiting, the owner is asked about it."""
    t = ctx.t
    if ctx.args:
        await _enter_code(ctx, " ".join(ctx.args))
        return
    if ctx.person is None:
        _ask_code(ctx)  # nothing learned here yet: the resident can only bring a code
        return
    assert ctx.person.id is not None
    waiting = await pending_claim(ctx.session, person_id=ctx.person.id, now=ctx.now)
    if waiting is not None:
        await _ask_owner(ctx, waiting)
        return
    ctx.goto(Step.MENU)
    ctx.ask(
        t("linking.choose"),
        [(t("linking.give_code"), "link:new"), (t("linking.have_code"), "link:enter"), (t("menu.back"), "menu")],
    )


async def link_action(ctx: Context) -> None:
    kind = ctx.args[0] if ctx.args else ""
    if kind == "new" and len(ctx.args) == 1 and ctx.person is not None:
        await _give_code(ctx)
    elif kind in ("new", "enter") and len(ctx.args) == 1:
        _ask_code(ctx)
    elif kind in ("ok", "deny") and len(ctx.args) == 2:
        await _answer_claim(ctx, int_arg(ctx, 1, low=1), accept=kind == "ok")
    elif kind == "no" and len(ctx.args) == 1:
        await _finish(ctx, ctx.t("linking.cancelled"))
    else:
        await stale_action(ctx)


async def receive_code(ctx: Context) -> None:
    """Text typed after "Tôi đã có mã"."""
    await _enter_code(ctx, ctx.incoming.text or "")


async def _give_code(ctx: Context) -> None:
    assert ctx.person is not None and ctx.person.id is not None
    code = await create_code(ctx.session, person_id=ctx.person.id, now=ctx.now)
    ctx.goto(Step.MENU)
    minutes = int(CODE_TTL.total_seconds() // 60)
    ctx.ask(ctx.t("linking.code", code=code.code, minutes=minutes), [(ctx.t("menu.back"), "menu")])


def _ask_code(ctx: Context) -> None:
    ctx.goto(Step.LINK_CODE)
    ctx.ask(ctx.t("linking.ask_code"), [(ctx.t("linking.cancel"), "link:no", words(ctx, "words.no"))])


def _too_many(ctx: Context) -> None:
    ctx.goto(Step.MENU)
    minutes = int(ATTEMPT_WINDOW.total_seconds() // 60)
    ctx.ask(ctx.t("linking.too_many", minutes=minutes), [(ctx.t("menu.back"), "menu")])


async def _enter_code(ctx: Context, typed: str) -> None:
    """A code typed on the new channel: limited attempts; a valid one is claimed and its
    owner asked to confirm. The answer never says whose code it is."""
    t = ctx.t
    identity_id = ctx.identity.id
    assert identity_id is not None
    if await recent_failures(ctx.session, identity_id=identity_id, now=ctx.now) >= MAX_FAILURES:
        _too_many(ctx)  # even a right code: its answer would tell a guesser it is right
        return
    shaped = looks_like_code(typed)
    code = await usable_code(ctx.session, code=typed, now=ctx.now) if shaped else None
    if code is not None and code.person_id == ctx.identity.person_id:
        await _finish(ctx, t("linking.already"))
        return
    if code is not None and not await _same_ward(ctx, code.person_id):
        # A ward's own bot serves that ward's residents only: a profile learning in another
        # ward's channel stays there. Counted like a wrong code (no oracle for guessers).
        await record_attempt(ctx.session, identity_id=identity_id, ok=False, now=ctx.now)
        await _finish(ctx, t("linking.other_ward"))
        return
    claim = await claim_code(ctx.session, code=code, identity_id=identity_id, now=ctx.now) if code else None
    if shaped:
        right = claim in (Claim.CLAIMED, Claim.AGAIN)
        await record_attempt(ctx.session, identity_id=identity_id, ok=right, now=ctx.now)
    if code is None or claim == Claim.KILLED:
        if shaped and await recent_failures(ctx.session, identity_id=identity_id, now=ctx.now) >= MAX_FAILURES:
            _too_many(ctx)
            return
        ctx.goto(Step.LINK_CODE)
        ctx.ask(t("linking.code_invalid"), [(t("linking.cancel"), "link:no", words(ctx, "words.no"))])
        return
    if claim == Claim.CLAIMED:
        await _ask_owner_later(ctx, code)
        audit.record(ctx.session, actor=f"identity:{identity_id}", action="identity.link_claim",
                     target=f"link_code:{code.id}", now=ctx.now)
    await _finish(ctx, t("linking.claimed", until=local_time(ctx, code.expires_at, "%H:%M")))


async def _same_ward(ctx: Context, owner_id: int) -> bool:
    """Whether the code's owner may be joined from this account: it serves every ward, or the
    owner belongs to no ward but its own (:func:`wards_of`)."""
    if ctx.ward_scope is None:
        return True
    return await wards_of(ctx.session, person_id=owner_id) <= {ctx.ward_scope}


async def _ask_owner_later(ctx: Context, code: LinkCode) -> None:
    """The owner's confirmation, through the outbox to the account they use most."""
    assert code.id is not None
    owner = (await reachable(ctx.session, person_ids=[code.person_id])).get(code.person_id)
    person = await ctx.session.get(Person, code.person_id)
    if owner is None or owner.id is None or person is None:
        return  # they can still answer with /lienket on their own channel
    ot = ctx.services.catalog.translator(person.locale)
    message = OutboundMessage(
        text=ot("linking.owner_question", channel=CHANNEL_NAMES.get(ctx.identity.channel, ctx.identity.channel)),
        options=(Option(ot("linking.owner_yes"), f"link:ok:{code.id}"),
                 Option(ot("linking.owner_no"), f"link:deny:{code.id}")),
    )
    await enqueue(ctx.session, [outbox_row(
        kind="link_confirm", identity_id=owner.id, channel=owner.channel, payload=message.to_payload(),
        due_at=ctx.now, dedupe_key=f"link_confirm:{code.id}", now=ctx.now, ref=f"link_code:{code.id}",
    )])


async def _ask_owner(ctx: Context, code: LinkCode) -> None:
    t = ctx.t
    claimer = await ctx.session.get(Identity, code.claimed_by) if code.claimed_by is not None else None
    channel = CHANNEL_NAMES.get(claimer.channel, claimer.channel) if claimer else ""
    ctx.goto(Step.MENU)
    ctx.ask(t("linking.owner_question", channel=channel),
            [(t("linking.owner_yes"), f"link:ok:{code.id}"), (t("linking.owner_no"), f"link:deny:{code.id}")])


async def _answer_claim(ctx: Context, code_id: int | None, *, accept: bool) -> None:
    """The owner's "✅ Đúng, liên kết" or "❌ Không phải tôi", authorised from the database:
    anyone else's press, a second press, or a press after expiry changes nothing."""
    t = ctx.t
    code = None
    if code_id is not None and ctx.person is not None and ctx.person.id is not None:
        code = await claimed_code(ctx.session, code_id=code_id, person_id=ctx.person.id, now=ctx.now)
    claimer = await ctx.session.get(Identity, code.claimed_by) if code and code.claimed_by is not None else None
    if code is None or claimer is None:
        await _finish(ctx, t("linking.request_gone"))
        return
    if not accept:
        kill(code, now=ctx.now)
        ctx.session.add(code)
        audit.record(ctx.session, actor=f"person:{code.person_id}", action="identity.link_refused",
                     target=f"identity:{claimer.id}", now=ctx.now)
        await _finish(ctx, t("linking.refused"))
        return
    scope = ctx.services.accounts.get(claimer.channel).ward_id
    if scope is not None and not await wards_of(ctx.session, person_id=code.person_id) <= {scope}:
        kill(code, now=ctx.now)  # the owner joined another ward's group since the code was typed
        ctx.session.add(code)
        await _finish(ctx, t("linking.other_ward"))
        return
    await _link(ctx, code, claimer)


async def _link(ctx: Context, code: LinkCode, claimer: Identity) -> None:
    t = ctx.t
    assert claimer.id is not None and code.id is not None
    previous = claimer.person_id
    summary = await link_identity(ctx.session, identity=claimer, code=code, now=ctx.now)
    await leave_step(ctx.session, person_id=code.person_id, step=Step.QUIZ, to=Step.MENU)
    audit.record(
        ctx.session,
        actor=f"person:{code.person_id}",
        action="identity.link",
        target=f"identity:{claimer.id}",
        now=ctx.now,
        details={
            "channel": claimer.channel,
            "merged_person": previous if summary is not None else None,
            "moved_lessons": summary.moved_lessons if summary else 0,
            "combined_lessons": summary.combined_lessons if summary else 0,
            "moved_roles": summary.moved_roles if summary else 0,
            "moved_requests": summary.moved_requests if summary else 0,
        },
    )
    if claimer.blocked_at is None:
        ct = ctx.services.catalog.translator(ctx.person.locale if ctx.person else None)
        await enqueue(ctx.session, [outbox_row(
            kind="link_done", identity_id=claimer.id, channel=claimer.channel,
            payload=OutboundMessage(text=ct("linking.done_claimer")).to_payload(), due_at=ctx.now,
            dedupe_key=f"link_done:{code.id}", now=ctx.now, ref=f"link_code:{code.id}",
        )])
    channel = CHANNEL_NAMES.get(claimer.channel, claimer.channel)
    await menu.show_main_menu(ctx, t("linking.done_owner", channel=channel))


async def _finish(ctx: Context, text: str) -> None:
    if ctx.person is not None:
        await menu.show_main_menu(ctx, text)
    else:
        ctx.goto(Step.NEW)
        ctx.ask(text, [(ctx.t("onboarding.begin"), "begin")])
