"""``/nhom`` and "👥 Tổ của tôi": a leader's view of their residential group.

The group's members, how many started and completed each lesson, the completion rate
against the group's target as text bars, the residents who are behind, a one-tap nudge,
assisted completion (``handlers.assisted``) and residents' help requests
(``handlers.support``). Every number comes from ``storage.stats``, as in the reports.

Actions (each re-checks that the person leads the group, from the database):
``lead`` (choose a group) · ``lead:g:<group>`` (the dashboard) · ``lead:m:<group>:<page>``
(members) · ``lead:n:<group>`` (nudge who is behind) · ``lead:as|an|al|ac:…`` (assisted).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import col, select

from bot.core.conversation import Context
from bot.core.messages import Option
from bot.core.text import progress_bar
from bot.delivery.transport import OutboundMessage
from bot.leading import BEHIND_AFTER, is_behind, summary_lines
from handlers import assisted, authz, support
from handlers.common import PAGE_SIZE, int_arg, local_time, paginate
from handlers.fallback import stale_action
from handlers.steps import Step
from storage.groups import get_ward
from storage.models import Person, ResidentGroup
from storage.outbox import enqueue, outbox_row
from storage.reach import reachable, sent_since
from storage.roles import led_groups
from storage.stats import GroupStats, MemberProgress, group_stats, members_progress

NUDGE_EVERY = timedelta(days=3)  # at most one nudge per resident in this time
BEHIND_SHOWN = 10  # names on the dashboard; the members list has everyone
MEMBERS_PER_PAGE = 2 * PAGE_SIZE


def lesson_ids(ctx: Context) -> list[str]:
    return [lesson.id for lesson in ctx.lessons]


async def open_group_menu(ctx: Context) -> None:
    """``/nhom`` and ``lead``: the dashboard of the one group led, or a choice of them."""
    assert ctx.person is not None and ctx.person.id is not None
    groups = await led_groups(ctx.session, person_id=ctx.person.id)
    if not groups:
        await authz.refuse(ctx)
        return
    if len(groups) == 1:
        await show_dashboard(ctx, groups[0])
        return
    ctx.goto(Step.MENU)
    options = [(g.name, f"lead:g:{g.id}") for g in groups] + [(ctx.t("menu.back"), "menu")]
    ctx.ask(ctx.t("leader.choose_group"), options)


async def lead_action(ctx: Context) -> None:
    """Dispatch ``lead:<verb>:…``; each verb authorises on its own."""
    verb = ctx.args[0] if ctx.args else ""
    if not ctx.args:
        await open_group_menu(ctx)
    elif verb == "g" and len(ctx.args) == 2:
        group = await authz.led_group(ctx)
        if group is not None:
            await show_dashboard(ctx, group)
    elif verb == "m" and len(ctx.args) == 3:
        group = await authz.led_group(ctx)
        if group is not None:
            await show_members(ctx, group, int_arg(ctx, 2) or 0)
    elif verb == "n" and len(ctx.args) == 2:
        group = await authz.led_group(ctx)
        if group is not None:
            await nudge(ctx, group)
    elif verb in assisted.VERBS:
        await assisted.assisted_action(ctx)
    else:
        await stale_action(ctx)


async def _stats(ctx: Context, group: ResidentGroup) -> GroupStats:
    [stats] = await group_stats(ctx.session, lesson_ids=lesson_ids(ctx), since=ctx.now - timedelta(days=7),
                                group_ids=[group.id])  # type: ignore[list-item]
    return stats


async def _members(ctx: Context, group: ResidentGroup) -> list[MemberProgress]:
    assert group.id is not None
    return await members_progress(ctx.session, group_id=group.id, lesson_ids=lesson_ids(ctx))


async def show_dashboard(ctx: Context, group: ResidentGroup) -> None:
    assert group.id is not None
    t = ctx.t
    ward = await get_ward(ctx.session, ward_id=group.ward_id)
    stats = await _stats(ctx, group)
    lines = [t("leader.head", group=group.name, ward=ward.name if ward else ""),
             *summary_lines(t, stats, lessons=len(ctx.lessons)), "", t("leader.lessons_head")]
    for position, lesson in enumerate(ctx.lessons, 1):
        counts = stats.lessons[lesson.id]
        assisted_note = t("leader.lesson_assisted", count=counts.completed_assisted) if counts.completed_assisted else ""
        lines.append(t("leader.lesson_line", number=position, title=lesson.title,
                       bar=progress_bar(counts.completed, stats.members, width=5), assisted=assisted_note,
                       learning=counts.started - counts.completed))
    members = await _members(ctx, group)
    behind = _behind(ctx, members)
    lines.append("")
    if behind:
        lines.append(t("leader.behind_head", count=len(behind), days=BEHIND_AFTER.days))
        lines += [_member_line(ctx, m) for m in behind[:BEHIND_SHOWN]]
        if len(behind) > BEHIND_SHOWN:
            lines.append(t("leader.behind_more", count=len(behind) - BEHIND_SHOWN))
    else:
        lines.append(t("leader.nobody_behind"))
    options: list[tuple[str, str]] = []
    if any(m.display_name and not m.added_by_leader for m in behind):
        options.append((t("leader.nudge_button", count=len(behind)), f"lead:n:{group.id}"))
    options.append((t("leader.members_button", count=len(members)), f"lead:m:{group.id}:0"))
    options.append((t("leader.assist_button"), f"lead:as:{group.id}:0"))
    open_requests = await support.open_requests(ctx, group_id=group.id)
    if open_requests:
        options.append((t("leader.help_requests_button", count=len(open_requests)), f"hotro:list:{group.id}"))
    if len(await led_groups(ctx.session, person_id=ctx.person.id)) > 1:  # type: ignore[union-attr]
        options.append((t("leader.other_group"), "lead"))
    options.append((t("menu.back"), "menu"))
    authz.record(ctx, "leader.view", f"group:{group.id}")
    ctx.goto(Step.MENU)
    ctx.ask("\n".join(lines), options)


def _behind(ctx: Context, members: Sequence[MemberProgress]) -> list[MemberProgress]:
    """Who is behind, leaving out the leader looking (a leader is often a member too)."""
    assert ctx.person is not None
    return [m for m in members if m.person_id != ctx.person.id and is_behind(m, total=len(ctx.lessons), now=ctx.now)]


def _member_line(ctx: Context, member: MemberProgress) -> str:
    t = ctx.t
    notes = ""
    if member.assisted:
        notes += " " + t("leader.member_assisted", count=member.assisted)
    if member.added_by_leader:
        notes += " " + t("leader.member_no_phone")
    last = local_time(ctx, member.last_active_at) if member.last_active_at else t("leader.never_active")
    return t("leader.member_line", name=member.display_name or "", done=member.completed, total=len(ctx.lessons),
             notes=notes, last=last)


async def show_members(ctx: Context, group: ResidentGroup, page: int) -> None:
    t = ctx.t
    members = await _members(ctx, group)
    shown = paginate(members, page, size=MEMBERS_PER_PAGE)
    lines = [t("leader.members_head", group=group.name, count=len(members))]
    lines += [_member_line(ctx, m) for m in shown.items] or [t("leader.no_members")]
    if shown.count > 1:
        lines.append(shown.hint(ctx))
    options = shown.nav(ctx, f"lead:m:{group.id}:")
    options += [(t("leader.back_to_group"), f"lead:g:{group.id}"), (t("menu.back"), "menu")]
    authz.record(ctx, "leader.members", f"group:{group.id}", page=shown.number)
    ctx.goto(Step.MENU)
    ctx.ask("\n".join(lines), options, replace=ctx.incoming.action is not None and shown.number > 0)


async def nudge(ctx: Context, group: ResidentGroup) -> None:
    """One tap: a kind reminder to every resident who is behind, through the outbox (due now;
    the sender keeps the quiet hours, and the leader is told when it goes out), at most once
    per resident every ``NUDGE_EVERY``. The message carries the leader's name: the rows name
    the leader as ``about_person_id``."""
    assert ctx.person is not None and group.id is not None
    t = ctx.t
    total = len(ctx.lessons)
    behind = _behind(ctx, await _members(ctx, group))
    ids = [m.person_id for m in behind]
    recent = await sent_since(ctx.session, kind="nudge", person_ids=ids, since=ctx.now - NUDGE_EVERY)
    people = {p.id: p for p in await _people(ctx, ids)}
    accounts = await reachable(ctx.session, person_ids=[i for i in ids if people[i].reminders_on])
    day = ctx.now.astimezone(ctx.services.zone).date().isoformat()
    rows = []
    for member in behind:
        identity = accounts.get(member.person_id)
        if member.person_id in recent or identity is None:
            continue
        person = people[member.person_id]
        rt = ctx.services.catalog.translator(person.locale)
        message = OutboundMessage(
            text=rt("leader.nudge_message", name=person.display_name or "", leader=ctx.person.display_name or "",
                    group=group.name, done=member.completed, total=total),
            options=(Option(rt("menu.continue"), "next"), Option(rt("reminders.stop_button"), "reminders:off")),
        )
        rows.append(outbox_row(kind="nudge", identity_id=identity.id, channel=identity.channel,  # type: ignore[arg-type]
                               payload=message.to_payload(), due_at=ctx.now, dedupe_key=f"nudge:{person.id}:{day}",
                               now=ctx.now, about_person_id=ctx.person.id))
    sent = await enqueue(ctx.session, rows) if rows else 0
    skipped_recent = sum(1 for m in behind if m.person_id in recent)
    unreachable = len(behind) - sent - skipped_recent
    authz.record(ctx, "leader.nudge", f"group:{group.id}", queued=sent, recent=skipped_recent,
                 unreachable=unreachable)
    parts = [t("leader.nudged", count=sent)]
    if skipped_recent:
        parts.append(t("leader.nudged_recent", count=skipped_recent, days=NUDGE_EVERY.days))
    if unreachable:
        parts.append(t("leader.nudged_unreachable", count=unreachable))
    sends_at = ctx.services.quiet.expected(ctx.now, now=ctx.now)
    if sent and sends_at > ctx.now:
        parts.append(t("leader.nudged_quiet", when=local_time(ctx, sends_at)))
    ctx.goto(Step.MENU)
    ctx.ask(" ".join(parts), [(t("leader.back_to_group"), f"lead:g:{group.id}"), (t("menu.back"), "menu")])


async def _people(ctx: Context, ids: Sequence[int]) -> list[Person]:
    if not ids:
        return []
    return list((await ctx.session.exec(select(Person).where(col(Person.id).in_(list(ids))))).all())

