"""``/nhom`` and "👥 Tổ của tôi": a leader's view of their residential group.

The group's members, how many started and completed each lesson, the completion rate
against the group's target as text bars, the residents who are behind, a one-tap nudge,
assisted completion (``handlers.assisted``) and residents' help requests
(``handlers.support``). Every number comes from ``storage.stats``, as in the reports.

The dashboard opens with what to do ("👋 3 người cần nhắc · 2 câu hỏi chưa trả lời"), counted
by the same functions as the lists those buttons open. Who is **behind**: members who have not
finished the programme and were not active for ``BEHIND_AFTER`` (``bot.leading``), and members
who opened a lesson today (the ward's day) and did not finish it.

A ward admin opens the same dashboard read-only (``adm:g:<group>``), with the nudge only.

Actions (each re-checks that the person leads the group, from the database):
``lead`` (choose a group) · ``lead:g:<group>`` (the dashboard) · ``lead:m:<group>:<page>``
(members) · ``lead:p:<group>:<person>`` (one member's page) · ``lead:n:<group>`` (nudge who
is behind) · ``lead:np:<group>:<person>`` (nudge one person) ·
``lead:as|an|al|ac|ad|ax|ud|ux:…`` (assisted, ``handlers.assisted``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.core.conversation import Context
from bot.core.text import progress_bar
from bot.overview import live_stats
from bot.group_actions import NUDGE_EVERY
from bot.leading import BEHIND_AFTER, summary_lines
from bot import group_actions
from handlers import assisted, authz, support
from handlers.common import PAGE_SIZE, int_arg, local_time, paginate
from handlers.fallback import stale_action
from handlers.steps import Step
from storage.groups import get_ward
from storage.members import lessons_of, member_of
from storage.models import Person, ProgressStatus, ResidentGroup
from storage.people import erasable_by_staff
from storage.roles import administers, led_groups
from storage.stats import GroupStats, MemberProgress, members_progress

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
    elif verb in ("p", "np") and len(ctx.args) == 3:
        group = await authz.led_group(ctx)
        if group is None:
            return
        person = await _named_member(ctx, group)
        if person is None:
            return
        if verb == "p":
            await show_member(ctx, group, person)
        else:
            await nudge(ctx, group, only=person)
    elif verb in assisted.VERBS:
        await assisted.assisted_action(ctx)
    else:
        await stale_action(ctx)


def curriculum(ctx: Context, moment: datetime | None = None) -> tuple[str, ...]:
    """The lessons of the programme at ``moment`` (now): what "học xong" counts against."""
    return ctx.lessons.curriculum_at(moment or ctx.now, ctx.services.zone)


async def _stats(ctx: Context, group: ResidentGroup) -> GroupStats:
    [stats] = await live_stats(ctx.session, lessons=ctx.lessons, zone=ctx.services.zone, now=ctx.now,
                               group_ids=[group.id], by_lesson=True)  # type: ignore[list-item]
    return stats


def coverage_line(ctx: Context, stats: GroupStats) -> list[str]:
    """"Độ phủ: 12/40 người lớn (30%)" against the group's adult population, when it is set."""
    if stats.coverage is None or stats.adults is None:
        return []
    mark = ctx.t("leader.target_met") if stats.coverage >= stats.target_percent else ctx.t("leader.target_not_met")
    return [ctx.t("figures.coverage_line", finished=stats.finished, adults=stats.adults,
                  rate=f"{stats.coverage:.0f}", target=stats.target_percent, mark=mark)]


async def _members(ctx: Context, group: ResidentGroup) -> list[MemberProgress]:
    assert group.id is not None
    return await members_progress(ctx.session, group_id=group.id, lesson_ids=lesson_ids(ctx))


async def behind(ctx: Context, group: ResidentGroup,
                 members: Sequence[MemberProgress] | None = None) -> tuple[list[MemberProgress], list[MemberProgress]]:
    """Who needs a nudge, leaving out the person looking (``bot.group_actions.behind``). The
    dashboard's "cần nhắc" count, its lists and the nudge all come from there."""
    assert ctx.person is not None and group.id is not None
    return await group_actions.behind(ctx.session, group_id=group.id, viewer_id=ctx.person.id, lessons=ctx.lessons,
                                      zone=ctx.services.zone, now=ctx.now, members=members)


async def show_dashboard(ctx: Context, group: ResidentGroup, *, as_admin: bool = False) -> None:
    """The group's page; ``as_admin``: a ward admin looking (read-only, plus the nudge)."""
    assert group.id is not None and ctx.person is not None
    t = ctx.t
    ward = await get_ward(ctx.session, ward_id=group.ward_id)
    stats = await _stats(ctx, group)
    members = await _members(ctx, group)
    idle, stalled = await behind(ctx, group, members)
    open_requests = await support.open_requests(ctx, group_id=group.id)
    to_nudge = len(idle) + len(stalled)
    lines = [t("leader.head", group=group.name, ward=ward.name if ward else "")]
    if to_nudge or open_requests:
        lines.append(t("leader.todo", behind=to_nudge, questions=len(open_requests)))
    else:
        lines.append(t("leader.todo_none"))
    lines += ["", *summary_lines(t, stats, lessons=len(curriculum(ctx))), *coverage_line(ctx, stats), "",
              t("leader.lessons_head")]
    for position, lesson in enumerate(ctx.lessons, 1):
        counts = stats.lessons[lesson.id]
        assisted_note = t("leader.lesson_assisted", count=counts.completed_assisted) if counts.completed_assisted else ""
        lines.append(t("leader.lesson_line", number=position, title=lesson.title,
                       bar=progress_bar(counts.completed, stats.members, width=5), assisted=assisted_note,
                       learning=counts.started - counts.completed))
    lines.append("")
    if idle:
        lines.append(t("leader.behind_head", count=len(idle), days=BEHIND_AFTER.days))
        lines += [_member_line(ctx, m) for m in idle[:BEHIND_SHOWN]]
        if len(idle) > BEHIND_SHOWN:
            lines.append(t("leader.behind_more", count=len(idle) - BEHIND_SHOWN))
    if stalled:
        lines.append(t("leader.stalled_head", count=len(stalled)))
        lines += [_member_line(ctx, m) for m in stalled[:BEHIND_SHOWN]]
        if len(stalled) > BEHIND_SHOWN:
            lines.append(t("leader.behind_more", count=len(stalled) - BEHIND_SHOWN))
    if not idle and not stalled:
        lines.append(t("leader.nobody_behind"))
    options: list[tuple[str, str]] = []
    if any(m.display_name and not m.added_by_leader for m in (*idle, *stalled)):
        options.append((t("leader.nudge_button", count=to_nudge), f"{'adm' if as_admin else 'lead'}:n:{group.id}"))
    if as_admin:
        adults = (t("figures.adults_button", adults=group.adults) if group.adults is not None
                  else t("figures.adults_button_unset"))
        options += [(adults, f"adm:ad:{group.id}"), (t("admin.group_other"), f"adm:gl:{group.ward_id}:0"),
                    (t("admin.back"), f"adm:w:{group.ward_id}"), (t("menu.back"), "menu")]
        authz.record(ctx, "admin.group", f"group:{group.id}")
        ctx.goto(Step.MENU)
        ctx.ask("\n".join(lines), options)
        return
    options.append((t("leader.members_button", count=stats.members), f"lead:m:{group.id}:0"))
    options.append((t("leader.assist_button"), f"lead:as:{group.id}:0"))
    if open_requests:
        options.append((t("leader.help_requests_button", count=len(open_requests)), f"hotro:list:{group.id}"))
    if len(await led_groups(ctx.session, person_id=ctx.person.id)) > 1:  # type: ignore[arg-type]
        options.append((t("leader.other_group"), "lead"))
    options.append((t("menu.back"), "menu"))
    authz.record(ctx, "leader.view", f"group:{group.id}")
    ctx.goto(Step.MENU)
    ctx.ask("\n".join(lines), options)


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
    """The named members (a page at a time, each a button to their page). The count is the
    group's members as the dashboard counts them (``group_stats``): people who erased their
    data stay counted, without a name, and are said apart."""
    t = ctx.t
    members = await _members(ctx, group)
    stats = await _stats(ctx, group)
    shown = paginate(members, page, size=MEMBERS_PER_PAGE)
    lines = [t("leader.members_head", group=group.name, count=stats.members)]
    lines += [_member_line(ctx, m) for m in shown.items] or [t("leader.no_members")]
    if stats.members > len(members):
        lines.append(t("leader.members_erased", count=stats.members - len(members)))
    if shown.count > 1:
        lines.append(shown.hint(ctx))
    options = [(m.display_name or "", f"lead:p:{group.id}:{m.person_id}") for m in shown.items]
    options += shown.nav(ctx, f"lead:m:{group.id}:")
    options += [(t("leader.back_to_group"), f"lead:g:{group.id}"), (t("menu.back"), "menu")]
    authz.record(ctx, "leader.members", f"group:{group.id}", page=shown.number)
    ctx.goto(Step.MENU)
    ctx.ask("\n".join(lines), options, replace=ctx.incoming.action is not None and shown.number > 0)


async def _named_member(ctx: Context, group: ResidentGroup, index: int = 2) -> Person | None:
    """The member named by action argument ``index``: a named person of this group; else refuse."""
    person_id = int_arg(ctx, index, low=1)
    assert group.id is not None
    person = await member_of(ctx.session, group_id=group.id, person_id=person_id) if person_id else None
    if person is None:
        await authz.refuse(ctx)
    return person


async def show_member(ctx: Context, group: ResidentGroup, person: Person, *, note: str = "",
                      audit: bool = True) -> None:
    """One member's page: each lesson done (date, on their own or with a leader), the lesson
    they are in, last activity; nudge them, undo an assisted completion the looking leader
    recorded (an admin: any), erase someone added by name."""
    assert ctx.person is not None and ctx.person.id is not None and person.id is not None and group.id is not None
    t = ctx.t
    progress = await lessons_of(ctx.session, person_id=person.id)
    admin = await administers(ctx.session, person_id=ctx.person.id, ward_id=group.ward_id)
    done = [(n, lesson, progress[lesson.id]) for n, lesson in enumerate(ctx.lessons, 1)
            if lesson.id in progress and progress[lesson.id].status == ProgressStatus.COMPLETED]
    learning = [(n, lesson, progress[lesson.id]) for n, lesson in enumerate(ctx.lessons, 1)
                if lesson.id in progress and progress[lesson.id].status != ProgressStatus.COMPLETED]
    last = local_time(ctx, person.last_active_at) if person.last_active_at else t("leader.never_active")
    lines = [t("leader.member_head", name=person.display_name or "", group=group.name),
             t("leader.member_summary", done=len(done), total=len(ctx.lessons), last=last)]
    if person.added_by is not None:
        lines.append(t("leader.member_no_phone"))
    options: list[tuple[str, str]] = []
    if done:
        lines += ["", t("leader.member_done_head")]
    for number, lesson, row in done:
        when = local_time(ctx, row.completed_at, "%d/%m/%Y")
        if row.assisted_by is None:
            lines.append(t("leader.member_done_self", number=number, title=lesson.title, when=when))
        else:
            lines.append(t("leader.member_done_assisted", number=number, title=lesson.title, when=when))
            if row.assisted_by == ctx.person.id or admin:
                options.append((t("leader.undo_button", number=number), f"lead:ud:{group.id}:{person.id}:{number}"))
    if learning:
        lines += ["", t("leader.member_learning_head")]
        lines += [t("leader.member_learning", number=number, title=lesson.title, when=local_time(ctx, row.updated_at))
                  for number, lesson, row in learning]
    if person.added_by is None and person.id != ctx.person.id and len(done) < len(ctx.lessons):
        options.insert(0, (t("leader.nudge_one_button"), f"lead:np:{group.id}:{person.id}"))
    if await erasable_by_staff(ctx.session, person=person):
        options.append((t("assisted.erase_button"), f"lead:ad:{group.id}:{person.id}"))
    options += [(t("leader.members_back"), f"lead:m:{group.id}:0"), (t("leader.back_to_group"), f"lead:g:{group.id}")]
    if audit:
        authz.record(ctx, "leader.member", f"person:{person.id}", group=group.id)
    ctx.goto(Step.MENU)
    text = "\n".join(lines)
    ctx.ask(f"{note}\n\n{text}" if note else text, options)


async def nudge(ctx: Context, group: ResidentGroup, *, only: Person | None = None, as_admin: bool = False) -> None:
    """One tap: a kind reminder to every resident who is behind (or to ``only`` that one
    member), through the outbox (due now; the sender keeps the quiet hours, and the one who
    pressed is told when it goes out), at most once per resident every ``NUDGE_EVERY``. The
    message carries the sender's name: the rows name the sender as ``about_person_id``."""
    assert ctx.person is not None and group.id is not None
    t = ctx.t
    done = await group_actions.nudge(ctx.session, group=group, sender=ctx.person, lessons=ctx.lessons,
                                     zone=ctx.services.zone, catalog=ctx.services.catalog, now=ctx.now,
                                     only_id=only.id if only is not None else None, as_admin=as_admin)
    sent, skipped_recent, unreachable = done.sent, done.recent, done.unreachable
    if only is not None:
        name = only.display_name or ""
        parts = [t("leader.nudged_one", name=name) if sent else
                 t("leader.nudged_one_recent", name=name, days=NUDGE_EVERY.days) if skipped_recent else
                 t("leader.nudged_one_unreachable", name=name)]
    else:
        parts = [t("leader.nudged", count=sent)]
        if skipped_recent:
            parts.append(t("leader.nudged_recent", count=skipped_recent, days=NUDGE_EVERY.days))
        if unreachable:
            parts.append(t("leader.nudged_unreachable", count=unreachable))
    sends_at = ctx.services.quiet.expected(ctx.now, now=ctx.now)
    if sent and sends_at > ctx.now:
        parts.append(t("leader.nudged_quiet", when=local_time(ctx, sends_at)))
    ctx.goto(Step.MENU)
    if as_admin:
        back = [(t("admin.group_back"), f"adm:g:{group.id}"), (t("admin.back"), f"adm:w:{group.ward_id}")]
    elif only is not None:
        back = [(t("leader.member_back", name=only.display_name or ""), f"lead:p:{group.id}:{only.id}"),
                (t("leader.back_to_group"), f"lead:g:{group.id}")]
    else:
        back = [(t("leader.back_to_group"), f"lead:g:{group.id}")]
    ctx.ask(" ".join(parts), [*back, (t("menu.back"), "menu")])
