"""Help from a person: "🙋 Nhờ hỗ trợ" and ``/hotro``.

A resident types what they need → a ``help_request`` row → forwarded through the outbox
(kind ``help``) to the leaders of their group with "✍️ Trả lời"; with no leader, to the
ward's admins; with nobody, the resident is told where to ask in person. A leader's
typed answer goes back through the outbox (kind ``help_reply``). Leaders also find the
open requests on their group's dashboard. Both sides are audited (ids only).

Actions: ``hotro`` (ask) · ``hotro:no`` (cancel) · ``hotro:list:<group>`` (open requests,
leaders of the group) · ``hotro:rep:<request>`` (answer: a leader of the request's group or
an admin of its ward, checked again when the answer is typed).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from sqlmodel import col, select

from bot.core.conversation import Context
from bot.core.messages import Option
from bot.delivery.transport import OutboundMessage
from handlers import authz, menu
from handlers.common import int_arg, local_time, words
from handlers.fallback import stale_action
from handlers.steps import Step
from storage.groups import get_group
from storage.models import HelpRequest, Person
from storage.outbox import enqueue, outbox_row
from storage.reach import reachable
from storage.roles import administers, admins_of, leaders_of, leads

TEXT_MAX = 1000
EXCERPT = 120


def clean_message(text: str) -> str:
    """A typed message: no control characters but line breaks, at most ``TEXT_MAX``."""
    kept = "".join(c for c in text if c == "\n" or unicodedata.category(c)[0] != "C")
    return kept.strip()[:TEXT_MAX].strip()


async def ask_for_help(ctx: Context) -> None:
    """``/hotro`` and ``hotro``: ask the resident to type what they need."""
    t = ctx.t
    ctx.goto(Step.HELP_TEXT)
    ctx.ask(t("support.ask"), [(t("support.cancel"), "hotro:no", words(ctx, "words.no"))])


async def support_action(ctx: Context) -> None:
    verb = ctx.args[0] if ctx.args else ""
    if not ctx.args:
        await ask_for_help(ctx)
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
    allowed = group is not None and (
        await leads(ctx.session, person_id=ctx.person.id, group_id=group.id)  # type: ignore[arg-type]
        or await administers(ctx.session, person_id=ctx.person.id, ward_id=group.ward_id)
    )
    if request is None or not allowed:
        await authz.refuse(ctx)
        return None
    return request


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


async def receive_request(ctx: Context) -> None:
    """The resident's typed message: forward it to who can help."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    text = clean_message(ctx.incoming.text or "")
    if not text:
        await ask_for_help(ctx)
        return
    group = await get_group(ctx.session, group_id=ctx.person.group_id) if ctx.person.group_id else None
    helpers: list[Person] = []
    to = "leaders"
    if group is not None:
        assert group.id is not None
        helpers = [p for p in await leaders_of(ctx.session, group_id=group.id) if p.id != ctx.person.id]
        if not helpers:
            to = "admins"
            helpers = [p for p in await admins_of(ctx.session, ward_id=group.ward_id) if p.id != ctx.person.id]
    accounts = await reachable(ctx.session, person_ids=[p.id for p in helpers])  # type: ignore[misc]
    if not accounts:
        await menu.show_main_menu(ctx, t("support.nobody"))
        return
    request = HelpRequest(person_id=ctx.person.id, group_id=group.id if group else None, text=text, created_at=ctx.now)
    ctx.session.add(request)
    await ctx.session.flush()
    due = ctx.services.quiet.next_allowed(ctx.now)
    rows = []
    for helper in helpers:
        identity = accounts.get(helper.id)  # type: ignore[arg-type]
        if identity is None:
            continue
        ht = ctx.services.catalog.translator(helper.locale)
        message = OutboundMessage(
            text=ht("support.forwarded", name=ctx.person.display_name or "", group=group.name if group else "",
                    text=text),
            options=(Option(ht("support.reply_button"), f"hotro:rep:{request.id}"),),
        )
        rows.append(outbox_row(kind="help", identity_id=identity.id, channel=identity.channel,  # type: ignore[arg-type]
                               payload=message.to_payload(), due_at=due, dedupe_key=f"help:{request.id}:{helper.id}",
                               now=ctx.now))
    await enqueue(ctx.session, rows)
    authz.record(ctx, "help.ask", f"help:{request.id}", to=to, recipients=len(rows))
    key = "support.sent_leaders" if to == "leaders" else "support.sent_admins"
    reply = t(key, count=len(rows))
    if due > ctx.now:
        reply += " " + t("support.sent_quiet", when=local_time(ctx, due))
    await menu.show_main_menu(ctx, reply)


async def open_requests(ctx: Context, *, group_id: int) -> Sequence[HelpRequest]:
    query = (
        select(HelpRequest)
        .where(HelpRequest.group_id == group_id, col(HelpRequest.answered_at).is_(None))
        .order_by(col(HelpRequest.created_at))
    )
    return (await ctx.session.exec(query)).all()


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
    """The leader's typed answer: back to the resident through the outbox."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    request_id = ctx.data.get("request")
    request = await _answerable(ctx, request_id if isinstance(request_id, int) else None)
    if request is None:
        return
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
        options=(Option(rt("support.ask_more"), "hotro"), Option(rt("menu.back"), "menu")),
    )
    stamp = int(ctx.now.timestamp())
    await enqueue(ctx.session, [outbox_row(
        kind="help_reply", identity_id=identity.id, channel=identity.channel,  # type: ignore[arg-type]
        payload=message.to_payload(), due_at=ctx.services.quiet.next_allowed(ctx.now),
        dedupe_key=f"help_reply:{request.id}:{ctx.person.id}:{stamp}", now=ctx.now,
    )])
    request.answered_by = ctx.person.id
    request.answered_at = ctx.now
    ctx.session.add(request)
    authz.record(ctx, "help.reply", f"help:{request.id}")
    await menu.show_main_menu(ctx, t("support.reply_sent", name=asker.display_name or ""))
