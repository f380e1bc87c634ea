"""The admin's group tools: join links and their QR codes for the notice board, and leader
invitations (single use, 7 days) with the group's current leaders, who can be removed.

Actions (the ward of the group is checked against the admin's role on every one):
``adm:jl:<ward>:<page>`` groups → ``adm:jq:<group>`` link + QR ·
``adm:il:<ward>:<page>`` groups → ``adm:iv:<group>`` leaders → ``adm:ic:<group>`` a new
invitation · ``adm:rv:<role>`` asks to confirm → ``adm:ry:<role>`` removes the leader (who is
told, through the outbox).

And the ward's groups as their leaders see them: ``adm:gl:<ward>:<page>`` groups →
``adm:g:<group>`` the group's dashboard (read-only) → ``adm:n:<group>`` nudge who is behind;
``adm:nl:<ward>`` groups without a leader · ``adm:hq:<ward>`` unanswered questions ·
``adm:bk:<ward>`` people who blocked the bot, per group; ``adm:ad:<group>`` asks for the group's
adult population (a typed number, ``Step.GROUP_ADULTS``): coverage is measured against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.conversation import Context
from bot.core.i18n import Catalog
from bot.core.messages import Image, Option, Reply
from bot.delivery.transport import OutboundMessage
from bot.group_import import ADULTS_MAX, parse_adults
from bot.links import group_link, group_param, invite_link
from handlers import authz
from handlers.common import int_arg, local_time, paginate, write_file
from handlers.fallback import stale_action
from handlers.steps import Step
from storage.db import SessionFactory
from storage.groups import get_group, get_ward, list_groups, set_adults
from storage.members import blocked_per_group, groups_without_leader, open_questions, open_questions_per_group
from storage.models import Person, ResidentGroup, Role, RoleKind, Ward
from storage.outbox import enqueue, outbox_row
from storage.reach import reachable
from storage.roles import administers, create_invite, leader_roles, revoke

VERBS = {"jl", "jq", "il", "iv", "ic", "rv", "ry", "gl", "g", "n", "nl", "hq", "bk", "ad"}
QUESTIONS_SHOWN = 8


async def groups_action(ctx: Context) -> None:
    verb, count = ctx.args[0], len(ctx.args)
    if verb in ("jl", "il") and count == 3:
        ward = await authz.admin_ward(ctx)
        if ward is not None:
            await _choose_group(ctx, ward, verb, int_arg(ctx, 2) or 0)
    elif verb in ("jq", "iv", "ic") and count == 2:
        found = await authz.admin_group(ctx)
        if found is None:
            return
        ward, group = found
        if verb == "jq":
            await join_link(ctx, ward, group)
        elif verb == "iv":
            await show_leaders(ctx, ward, group)
        else:
            await new_invite(ctx, ward, group)
    elif verb in ("rv", "ry") and count == 2:
        await _revoke(ctx, confirmed=verb == "ry")
    elif verb == "gl" and count == 3:
        ward = await authz.admin_ward(ctx)
        if ward is not None:
            await _choose_group(ctx, ward, verb, int_arg(ctx, 2) or 0)
    elif verb in ("g", "n") and count == 2:
        from handlers import leader  # leader's view of a group (leader imports nothing of admin)

        found = await authz.admin_group(ctx)
        if found is None:
            return
        if verb == "g":
            await leader.show_dashboard(ctx, found[1], as_admin=True)
        else:
            await leader.nudge(ctx, found[1], as_admin=True)
    elif verb == "ad" and count == 2:
        found = await authz.admin_group(ctx)
        if found is not None:
            ask_adults(ctx, found[1])
    elif verb in ("nl", "hq", "bk") and count == 2:
        ward = await authz.admin_ward(ctx)
        if ward is not None:
            await {"nl": leaderless, "hq": questions, "bk": blocked}[verb](ctx, ward)
    else:
        await stale_action(ctx)


async def _choose_group(ctx: Context, ward: Ward, verb: str, page: int) -> None:
    t = ctx.t
    shown = paginate(await list_groups(ctx.session, ward_id=ward.id), page)
    target = {"jl": "jq", "il": "iv", "gl": "g"}[verb]
    options = [(g.name, f"adm:{target}:{g.id}") for g in shown.items]
    options += shown.nav(ctx, f"adm:{verb}:{ward.id}:")
    options.append((t("admin.back"), f"adm:w:{ward.id}"))
    key = {"jl": "admin.join_choose", "il": "admin.invite_choose", "gl": "admin.group_choose"}[verb]
    ctx.goto(Step.MENU)
    ctx.ask(t(key, hint=shown.hint(ctx)), options)


def _links(ctx: Context, make: Callable[..., str], code: str, ward_id: int | None) -> tuple[str | None, str]:
    """The Telegram deep link of the ward's bot (when its username is known) and what to send on Zalo."""
    username = ctx.services.bot_username(ward_id)
    telegram = make(code, telegram_username=username) if username else None
    return telegram, make(code, telegram_username=None, channel="zalo")


async def join_link(ctx: Context, ward: Ward, group: ResidentGroup) -> None:
    """The group's join link for every channel, and a QR code of it for the notice board."""
    from bot.reports.qr import join_qr_png  # qrcode and PIL load on demand

    t = ctx.t
    telegram, zalo = _links(ctx, group_link, group.code, group.ward_id)
    text = t("admin.join_link", group=group.name, telegram=telegram or t("admin.no_telegram_link"), zalo=zalo,
             code=group_param(group.code))
    caption, code = t("admin.qr_caption", group=group.name), group.code

    async def draw(_sessions: SessionFactory) -> list[Reply]:
        png = await asyncio.to_thread(join_qr_png, telegram or zalo, caption=group.name, code=group_param(code))
        path = await asyncio.to_thread(write_file, ctx, prefix=f"qr-{code}", suffix=".png", data=png)
        return [Image(path, caption)]

    authz.record(ctx, "admin.join_link", f"group:{group.id}")
    ctx.say(text)
    ctx.later(draw)  # drawn after the transaction: rendering never holds the database
    ctx.goto(Step.MENU)
    ctx.ask(t("admin.join_more"), [(t("admin.join_other"), f"adm:jl:{ward.id}:0"), (t("admin.back"), f"adm:w:{ward.id}")])


async def show_leaders(ctx: Context, ward: Ward, group: ResidentGroup, note: str = "", *, audit: bool = True) -> None:
    assert group.id is not None
    t = ctx.t
    leaders = await leader_roles(ctx.session, group_id=group.id)
    names = ", ".join(p.display_name or "" for _, p in leaders) or t("admin.no_leaders")
    text = t("admin.leaders", group=group.name, names=names)
    options = [(t("admin.invite_create"), f"adm:ic:{group.id}")]
    options += [(t("admin.revoke_button", name=p.display_name or ""), f"adm:rv:{r.id}") for r, p in leaders]
    options += [(t("admin.invite_other"), f"adm:il:{ward.id}:0"), (t("admin.back"), f"adm:w:{ward.id}")]
    if audit:
        authz.record(ctx, "admin.leaders", f"group:{group.id}")
    ctx.goto(Step.MENU)
    ctx.ask(f"{note}\n\n{text}" if note else text, options)


async def new_invite(ctx: Context, ward: Ward, group: ResidentGroup) -> None:
    """A single-use invitation link to lead ``group``, valid for 7 days."""
    assert ctx.person is not None and ctx.person.id is not None and group.id is not None
    t = ctx.t
    invite = await create_invite(ctx.session, group_id=group.id, created_by=ctx.person.id, now=ctx.now)
    telegram, zalo = _links(ctx, invite_link, invite.code, group.ward_id)
    authz.record(ctx, "admin.invite", f"group:{group.id}", invite=invite.id)
    ctx.goto(Step.MENU)
    ctx.ask(
        t("admin.invite_made", group=group.name, telegram=telegram or t("admin.no_telegram_link"), zalo=zalo,
          until=local_time(ctx, invite.expires_at)),
        [(t("admin.invite_leaders"), f"adm:iv:{group.id}"), (t("admin.back"), f"adm:w:{ward.id}")],
    )


async def _revoke(ctx: Context, *, confirmed: bool) -> None:
    """Remove a leader: ``rv`` asks, ``ry`` does it (only for a leader role in this admin's ward)."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    role_id = int_arg(ctx, 1, low=1)
    role = await ctx.session.get(Role, role_id) if role_id is not None else None
    group = await get_group(ctx.session, group_id=role.group_id) if role and role.group_id else None
    ward = await get_ward(ctx.session, ward_id=group.ward_id) if group is not None else None
    if (role is None or role.kind != RoleKind.LEADER or group is None or ward is None
            or not await administers(ctx.session, person_id=ctx.person.id, ward_id=ward.id)):  # type: ignore[arg-type]
        await authz.refuse(ctx)
        return
    leader = await ctx.session.get(Person, role.person_id)
    name = leader.display_name if leader is not None and leader.display_name else ""
    if not confirmed:
        ctx.goto(Step.MENU)
        ctx.ask(t("admin.revoke_confirm", name=name, group=group.name),
                [(t("admin.revoke_yes"), f"adm:ry:{role.id}"), (t("admin.revoke_no"), f"adm:iv:{group.id}")])
        return
    await revoke(ctx.session, role_id=role.id)  # type: ignore[arg-type]
    told = await tell_role_removed(ctx.session, role=role, group=group, ward=ward, catalog=ctx.services.catalog,
                                   now=ctx.now)
    authz.record(ctx, "admin.revoke", f"group:{group.id}", person=role.person_id, told=told)
    await show_leaders(ctx, ward, group, note=t("admin.revoked", name=name, group=group.name), audit=False)


async def tell_role_removed(session: AsyncSession, *, role: Role, group: ResidentGroup, ward: Ward, catalog: Catalog,
                            now: datetime) -> bool:
    """The person whose leader role was removed is told, through the outbox (due now: the
    sender keeps the quiet hours), in their own language; False if they cannot be reached.
    Their menu no longer shows "👥 Tổ của tôi": it reads the roles each time. Channel-free and
    without a conversation, so a CLI command removing a leader can call it as the chat does."""
    person = await session.get(Person, role.person_id)
    if person is None or person.id is None or person.deleted_at is not None:
        return False
    identity = (await reachable(session, person_ids=[person.id])).get(person.id)
    if identity is None or identity.id is None:
        return False
    rt = catalog.translator(person.locale)
    message = OutboundMessage(text=rt("roles.leader_removed", group=group.name, ward=ward.name),
                              options=(Option(rt("menu.back"), "menu"),))
    row = outbox_row(kind="role", identity_id=identity.id, channel=identity.channel, payload=message.to_payload(),
                     due_at=now, dedupe_key=f"role-removed:{role.id}", now=now)
    return await enqueue(session, [row]) > 0


async def leaderless(ctx: Context, ward: Ward) -> None:
    """Groups of the ward without a leader, each a button to invite one."""
    t = ctx.t
    assert ward.id is not None
    groups = await groups_without_leader(ctx.session, ward_id=ward.id)
    lines = [t("admin.leaderless_head", ward=ward.name, count=len(groups))]
    lines += [f"• {g.name}" for g in groups] or [t("admin.leaderless_none")]
    options = [(g.name, f"adm:iv:{g.id}") for g in groups[:QUESTIONS_SHOWN]]
    authz.record(ctx, "admin.leaderless", f"ward:{ward.id}", count=len(groups))
    ctx.goto(Step.MENU)
    ctx.ask("\n".join(lines), [*options, (t("admin.back"), f"adm:w:{ward.id}"), (t("menu.back"), "menu")])


async def questions(ctx: Context, ward: Ward) -> None:
    """The ward's unanswered questions: how many per group, the oldest with a reply button
    (an admin of the ward may answer, ``hotro:rep``)."""
    t = ctx.t
    assert ward.id is not None
    per_group = await open_questions_per_group(ctx.session, ward_id=ward.id)
    total = sum(g.count for g in per_group)
    lines = [t("admin.questions_head", ward=ward.name, count=total)]
    lines += [t("admin.questions_group", group=g.name, count=g.count) for g in per_group] or [t("admin.questions_none")]
    options = []
    oldest = await open_questions(ctx.session, ward_id=ward.id, limit=QUESTIONS_SHOWN)
    if oldest:
        lines.append("")
    for request, name, group_name in oldest:
        text = request.text if len(request.text) <= 80 else request.text[:79] + "…"
        lines.append(t("admin.question_line", name=name, group=group_name, when=local_time(ctx, request.created_at),
                       text=text))
        options.append((t("admin.question_reply", name=name), f"hotro:rep:{request.id}"))
    authz.record(ctx, "admin.questions", f"ward:{ward.id}", count=total)
    ctx.goto(Step.MENU)
    ctx.ask("\n".join(lines), [*options, (t("admin.back"), f"adm:w:{ward.id}"), (t("menu.back"), "menu")])


async def blocked(ctx: Context, ward: Ward) -> None:
    """How many people of each group blocked the bot (counts only: no names)."""
    t = ctx.t
    assert ward.id is not None
    per_group = await blocked_per_group(ctx.session, ward_id=ward.id)
    total = sum(g.count for g in per_group)
    lines = [t("admin.blocked_head", ward=ward.name, count=total)]
    lines += [t("admin.blocked_group", group=g.name, count=g.count) for g in per_group] or [t("admin.blocked_none")]
    options = [(g.name, f"adm:g:{g.group_id}") for g in per_group[:QUESTIONS_SHOWN]]
    authz.record(ctx, "admin.blocked", f"ward:{ward.id}", count=total)
    ctx.goto(Step.MENU)
    ctx.ask("\n".join(lines), [*options, (t("admin.back"), f"adm:w:{ward.id}"), (t("menu.back"), "menu")])


def ask_adults(ctx: Context, group: ResidentGroup, *, problem: str = "") -> None:
    """Ask for the group's adult population; "thôi" / "hủy" leave the step (the engine)."""
    t = ctx.t
    current = t("figures.adults_current", adults=group.adults) if group.adults is not None else t("figures.adults_none")
    text = t("figures.adults_ask", group=group.name, current=current, most=f"{ADULTS_MAX:,}".replace(",", "."))
    ctx.goto(Step.GROUP_ADULTS, group=group.id)
    ctx.ask(f"{problem}\n\n{text}" if problem else text, [(t("admin.group_back"), f"adm:g:{group.id}")])


async def receive_adults(ctx: Context) -> None:
    """The typed number: stored (audited) and the group's page shown again with its coverage.
    The admin's role on the group's ward is checked again now, from the database."""
    from handlers import leader

    group_id = ctx.data.get("group")
    group = await get_group(ctx.session, group_id=group_id) if isinstance(group_id, int) else None
    if group is None or ctx.person is None or ctx.person.id is None or not await administers(
        ctx.session, person_id=ctx.person.id, ward_id=group.ward_id
    ):
        await authz.refuse(ctx)
        return
    typed = (ctx.incoming.text or "").strip()
    adults = parse_adults(typed)
    if adults is None:
        ask_adults(ctx, group, problem=ctx.t("figures.adults_invalid", typed=typed[:20],
                                             most=f"{ADULTS_MAX:,}".replace(",", ".")))
        return
    before = group.adults
    assert group.id is not None
    await set_adults(ctx.session, group_id=group.id, adults=adults)
    authz.record(ctx, "admin.group_adults", f"group:{group.id}", before=before, adults=adults)
    ctx.say(ctx.t("figures.adults_saved", group=group.name, adults=adults))
    await leader.show_dashboard(ctx, group, as_admin=True)
