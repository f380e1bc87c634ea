"""Help from a person: "🙋 Nhờ hỗ trợ" and ``/hotro``.

Before the resident types anything they are told who will answer (``bot.helpdesk.route``:
the group's leaders, else the ward's admins, else nobody yet — then they may leave the
question anyway, or ask in person). The typed question is always kept (a ``help_request``
row with ``routed_to``) and forwarded through the outbox (kind ``help``, checked again by
``bot.helpdesk.HelpCheck`` just before it is sent) with "✍️ Trả lời"; open questions stay
on the group's dashboard. A leader's typed answer goes back through the outbox (kind
``help_reply``), the question's other forwards still waiting are cancelled, and the leader
is told when the answer will arrive (the quiet hours). Both sides are audited (ids only).

Actions: ``hotro`` / ``hotro:ask`` (ask; ``ask`` is the button of an answer sent through
the outbox) · ``hotro:leave`` (nobody can answer yet: leave the question anyway) ·
``hotro:no`` (cancel) · ``hotro:list:<group>`` (open requests, leaders of the group) ·
``hotro:rep:<request>`` (answer: a leader of the request's group or an admin of its ward,
checked again when the answer is typed).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from bot.core.conversation import Context
from bot.core.messages import Option
from bot.delivery.transport import OutboundMessage
from bot.helpdesk import forward, may_answer, route
from handlers import authz, menu
from handlers.common import int_arg, local_time, words
from handlers.fallback import stale_action
from handlers.steps import Step
from storage import help_requests
from storage.groups import get_group
from storage.help_requests import RoutedTo, cancel_forwards, create_request, ref_of
from storage.models import HelpRequest, Person, ResidentGroup
from storage.outbox import enqueue, outbox_row
from storage.reach import reachable

TEXT_MAX = 1000
EXCERPT = 120


def clean_message(text: str, *, limit: int = TEXT_MAX) -> str:
    """A typed message: no control characters but line breaks, at most ``limit`` characters
    (a question to the leaders: ``TEXT_MAX``; a broadcast has its own limit)."""
    kept = "".join(c for c in text if c == "\n" or unicodedata.category(c)[0] != "C")
    return kept.strip()[:limit].strip()


async def _group(ctx: Context) -> ResidentGroup | None:
    assert ctx.person is not None
    return await get_group(ctx.session, group_id=ctx.person.group_id) if ctx.person.group_id else None


async def ask_for_help(ctx: Context) -> None:
    """``/hotro``, ``hotro``, ``hotro:ask``: say who will answer, then ask for the question
    (or, with nobody to answer yet, offer to leave it anyway)."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    group = await _group(ctx)
    found = await route(ctx.session, asker_id=ctx.person.id, group=group)
    cancel = (t("support.cancel"), "hotro:no", words(ctx, "words.no"))
    if found.to == RoutedTo.NOBODY:
        ctx.goto(Step.MENU)
        ctx.ask(t("support.ask_nobody"), [(t("support.leave_anyway"), "hotro:leave"), cancel])
        return
    group_name = group.name if group else ""
    key = "support.ask_leaders" if found.to == RoutedTo.LEADERS else "support.ask_admins"
    ctx.goto(Step.HELP_TEXT)
    ctx.ask(t(key, group=group_name, count=len(found.helpers)), [cancel])


async def support_action(ctx: Context) -> None:
    verb = ctx.args[0] if ctx.args else ""
    if not ctx.args or (verb == "ask" and len(ctx.args) == 1):
        await ask_for_help(ctx)
    elif verb == "leave" and len(ctx.args) == 1:
        ctx.goto(Step.HELP_TEXT)
        ctx.ask(ctx.t("support.ask_kept"), [(ctx.t("support.cancel"), "hotro:no", words(ctx, "words.no"))])
    elif verb == "no" and len(ctx.args) == 1:
        await menu.show_main_menu(ctx, ctx.t("support.cancelled"))
    elif verb == "list" and len(ctx.args) == 2:
        group = await authz.led_group(ctx)
        if group is not None:
            await list_requests(ctx, group.id)  # type: ignore[arg-type]
    elif verb == "rep" and len(ctx.args) == 2:
        request = await _answerable(ctx, int_arg(ctx, 1, low=1))
        if request is not None:
            ctx.goto(Step.HELP_REPLY, request=request.id)
            ctx.ask(ctx.t("support.reply_ask", question=_excerpt(request.text)),
                    [(ctx.t("support.cancel"), "menu", words(ctx, "words.no"))])
    else:
        await stale_action(ctx)


async def _answerable(ctx: Context, request_id: int | None) -> HelpRequest | None:
    """The request if this person may answer it (leads its group, or administers its ward)."""
    assert ctx.person is not None and ctx.person.id is not None
    request = await ctx.session.get(HelpRequest, request_id) if request_id is not None else None
    group = await get_group(ctx.session, group_id=request.group_id) if request and request.group_id else None
    if request is None or group is None or not await may_answer(ctx.session, person_id=ctx.person.id, group=group):
        await authz.refuse(ctx)
        return None
    return request


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


async def receive_request(ctx: Context) -> None:
    """The resident's typed question: kept, and forwarded to whoever can answer it now."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    text = clean_message(ctx.incoming.text or "")
    if not text:
        await ask_for_help(ctx)
        return
    group = await _group(ctx)
    found = await route(ctx.session, asker_id=ctx.person.id, group=group)
    request = await create_request(ctx.session, person_id=ctx.person.id, group_id=group.id if group else None,
                                   text=text, routed_to=found.to, now=ctx.now)
    queued = await forward(ctx.session, catalog=ctx.services.catalog, request=request, asker=ctx.person,
                           group=group, helpers=found.helpers, now=ctx.now)
    authz.record(ctx, "help.ask", f"help:{request.id}", to=found.to.value, recipients=queued)
    if found.to == RoutedTo.NOBODY:
        await menu.show_main_menu(ctx, t("support.kept"))
        return
    key = "support.sent_leaders" if found.to == RoutedTo.LEADERS else "support.sent_admins"
    reply = t(key, count=queued)
    arrives = ctx.services.quiet.next_allowed(ctx.now)  # the rows are due now; the sender waits out the night
    if arrives > ctx.now:
        reply += " " + t("support.sent_quiet", when=local_time(ctx, arrives))
    await menu.show_main_menu(ctx, reply)


async def open_requests(ctx: Context, *, group_id: int) -> Sequence[HelpRequest]:
    return await help_requests.open_requests(ctx.session, group_id=group_id)


async def list_requests(ctx: Context, group_id: int) -> None:
    t = ctx.t
    requests = list(await open_requests(ctx, group_id=group_id))[:8]
    lines = [t("support.list_head", count=len(requests))]
    options = []
    for request in requests:
        asker = await ctx.session.get(Person, request.person_id)
        name = asker.display_name if asker is not None and asker.display_name else ""
        lines.append(t("support.list_line", name=name, when=local_time(ctx, request.created_at),
                       text=_excerpt(request.text)))
        options.append((t("support.reply_to", name=name), f"hotro:rep:{request.id}"))
    options += [(t("leader.back_to_group"), f"lead:g:{group_id}"), (t("menu.back"), "menu")]
    authz.record(ctx, "help.list", f"group:{group_id}")
    ctx.goto(Step.MENU)
    ctx.ask("\n\n".join(lines), options)


async def receive_reply(ctx: Context) -> None:
    """The leader's typed answer: back to the resident through the outbox (due now; the
    leader is told when it will actually arrive); forwards of the question still waiting
    for the morning are cancelled — it is answered."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    request_id = ctx.data.get("request")
    request = await _answerable(ctx, request_id if isinstance(request_id, int) else None)
    if request is None:
        return
    assert request.id is not None
    text = clean_message(ctx.incoming.text or "")
    if not text:
        ctx.ask(t("support.reply_ask", question=_excerpt(request.text)), [(t("support.cancel"), "menu")])
        return
    asker = await ctx.session.get(Person, request.person_id)
    identity = (await reachable(ctx.session, person_ids=[request.person_id])).get(request.person_id)
    if asker is None or asker.deleted_at is not None or identity is None:
        await menu.show_main_menu(ctx, t("support.reply_unreachable"))
        return
    rt = ctx.services.catalog.translator(asker.locale)
    message = OutboundMessage(
        text=rt("support.reply_message", leader=ctx.person.display_name or "", question=_excerpt(request.text),
                text=text),
        options=(Option(rt("support.ask_more"), "hotro:ask"), Option(rt("menu.back"), "menu")),
    )
    stamp = int(ctx.now.timestamp())
    assert identity.id is not None
    await enqueue(ctx.session, [outbox_row(
        kind="help_reply", identity_id=identity.id, channel=identity.channel,
        payload=message.to_payload(), due_at=ctx.now,
        dedupe_key=f"help_reply:{request.id}:{ctx.person.id}:{stamp}", now=ctx.now,
        about_person_id=ctx.person.id, ref=ref_of(request.id),  # it carries the leader's name
    )])
    request.answered_by = ctx.person.id
    request.answered_at = ctx.now
    ctx.session.add(request)
    answered = ctx.services.catalog.text("support.check_answered")
    await cancel_forwards(ctx.session, request_id=request.id, reason=answered)
    authz.record(ctx, "help.reply", f"help:{request.id}")
    arrives = ctx.services.quiet.next_allowed(ctx.now)
    name = asker.display_name or ""
    if arrives > ctx.now:
        note = t("support.reply_queued_quiet", name=name, when=local_time(ctx, arrives))
    else:
        note = t("support.reply_queued", name=name)
    await menu.show_main_menu(ctx, note)
