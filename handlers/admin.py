"""``/quantri`` and "🏛 Quản trị phường": the ward admin's menu in the chat.

Ward overview, the thi đua ranking of groups, reports (XLSX + chart) for a period, and —
in their own modules — join links and leader invitations (``handlers.admin_groups``) and
broadcasts (``handlers.composer``). Every number comes from ``storage.stats``, as in the
leader's view and the XLSX report, so the chat and the reports agree.

Actions (each checks again, from the database, that the person administers the ward):
``adm`` · ``adm:w:<ward>`` (menu) · ``adm:ov:<ward>`` · ``adm:rk:<ward>`` ·
``adm:rp:<ward>[:<period>]`` · ``adm:jl|jq|il|iv|ic|rv|ry|gl|g|n|nl|hq|bk:…`` (admin_groups) ·
``adm:bl|br|bx:…`` (composer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime


from bot.core.conversation import Context
from bot.core.messages import Document, Image, Reply
from bot.core.text import fold, progress_bar
from bot.overview import live_stats, read_ward_overview
from bot.reports.period import Period, Span, chosen_period
from handlers import admin_groups, authz, composer
from handlers.common import write_file
from handlers.fallback import stale_action
from handlers.steps import Step
from storage.db import SessionFactory
from storage.models import Ward
from storage.roles import administered_wards
from storage.stats import GroupStats, ranking

PERIODS = {  # action argument → catalogue key of its label
    "month": "admin.period_month",
    "6m": "admin.period_half",
    "year": "admin.period_year",
    "p6m": "admin.period_last_half",  # the half-year just ended (a July report of January–June)
    "pyear": "admin.period_last_year",  # the year just ended (a January report)
    "all": "admin.period_all",
}
MEDALS = ("🥇", "🥈", "🥉")


async def open_admin_menu(ctx: Context) -> None:
    """``/quantri`` and ``adm``: the menu of the one ward administered, or a choice."""
    assert ctx.person is not None and ctx.person.id is not None
    wards = await administered_wards(ctx.session, person_id=ctx.person.id)
    if not wards:
        await authz.refuse(ctx)
        return
    if len(wards) == 1:
        show_menu(ctx, wards[0])
        return
    ctx.goto(Step.MENU)
    ctx.ask(ctx.t("admin.choose_ward"), [(w.name, f"adm:w:{w.id}") for w in wards] + [(ctx.t("menu.back"), "menu")])


def show_menu(ctx: Context, ward: Ward, text: str | None = None) -> None:
    t = ctx.t
    ctx.goto(Step.MENU)
    ctx.ask(text or t("admin.menu", ward=ward.name), [
        (t("admin.overview_button"), f"adm:ov:{ward.id}"),
        (t("admin.ranking_button"), f"adm:rk:{ward.id}"),
        (t("admin.compose_button"), f"bc:new:{ward.id}"),
        (t("admin.broadcasts_button"), f"adm:bl:{ward.id}"),
        (t("admin.report_button"), f"adm:rp:{ward.id}"),
        (t("admin.join_links_button"), f"adm:jl:{ward.id}:0"),
        (t("admin.invites_button"), f"adm:il:{ward.id}:0"),
        (t("menu.back"), "menu"),
    ])


async def admin_action(ctx: Context) -> None:
    """Dispatch ``adm:<verb>:…``; every verb authorises on its own."""
    verb, count = (ctx.args[0] if ctx.args else ""), len(ctx.args)
    if not ctx.args:
        await open_admin_menu(ctx)
    elif verb in ("w", "ov", "rk", "bl") and count == 2 or verb == "rp" and count in (2, 3):
        ward = await authz.admin_ward(ctx)
        if ward is None:
            return
        if verb == "w":
            show_menu(ctx, ward)
        elif verb == "ov":
            await overview(ctx, ward)
        elif verb == "rk":
            await show_ranking(ctx, ward)
        elif verb == "bl":
            await composer.list_broadcasts(ctx, ward)
        elif count == 2:
            choose_period(ctx, ward)
        else:
            await send_report(ctx, ward, ctx.args[2])
    elif verb in ("br", "bx", "by") and count == 2:
        await composer.broadcast_action(ctx)
    elif verb in admin_groups.VERBS:
        await admin_groups.groups_action(ctx)
    else:
        await stale_action(ctx)


async def _stats(ctx: Context, ward: Ward) -> list[GroupStats]:
    return await live_stats(ctx.session, lessons=ctx.lessons, zone=ctx.services.zone, now=ctx.now, ward_id=ward.id)


def _back(ctx: Context, ward: Ward) -> list[tuple[str, str]]:
    return [(ctx.t("admin.back"), f"adm:w:{ward.id}"), (ctx.t("menu.back"), "menu")]


async def overview(ctx: Context, ward: Ward) -> None:
    """The ward's numbers, read by ``bot.overview`` as the web dashboard reads them."""
    t = ctx.t
    view = await read_ward_overview(ctx.session, ward=ward, lessons=ctx.lessons, zone=ctx.services.zone, now=ctx.now)
    groups = len(view.groups)
    coverage = [] if view.coverage is None else [
        t("figures.ward_coverage", finished=view.finished, adults=view.adults, rate=f"{view.coverage:.0f}")]
    text = "\n".join([
        t("admin.overview_head", ward=ward.name),
        t("admin.overview_people", groups=groups, members=view.members, started=view.started),
        t("admin.overview_finished", bar=progress_bar(view.finished, view.members), rate=f"{view.rate:.0f}",
          lessons=view.lessons, week=view.finished_this_week),
        *coverage,
        t("admin.overview_completions", own=view.completed_self, assisted=view.completed_assisted),
        t("admin.overview_targets", met=view.targets_met, groups=groups),
        t("admin.overview_leaders", leaders=view.leaders, led=view.led, groups=groups),
    ])
    authz.record(ctx, "admin.overview", f"ward:{ward.id}")
    ctx.goto(Step.MENU)
    ctx.ask(text, [(t("admin.ranking_button"), f"adm:rk:{ward.id}"), (t("admin.groups_button"), f"adm:gl:{ward.id}:0"),
                   (t("admin.leaderless_button", count=len(view.leaderless)), f"adm:nl:{ward.id}"),
                   (t("admin.questions_button", count=view.open_questions), f"adm:hq:{ward.id}"),
                   (t("admin.blocked_button", count=sum(g.count for g in view.blocked)), f"adm:bk:{ward.id}"),
                   *_back(ctx, ward)])


def ranking_lines(ctx: Context, stats: Sequence[GroupStats]) -> list[str]:
    t = ctx.t
    lines = []
    for place, s in enumerate(ranking(stats), 1):
        medal = MEDALS[place - 1] if place <= len(MEDALS) and s.finished else f"{place}."
        change = round(s.change)
        trend = t("admin.trend_up", points=change) if change > 0 else (
            t("admin.trend_down", points=-change) if change < 0 else t("admin.trend_same"))
        target = t("admin.target_met") if s.meets_target else ""
        lines.append(t("admin.ranking_line", medal=medal, group=s.name, rate=f"{s.rate:.0f}", target=s.target_percent,
                       met=target, trend=trend, finished=s.finished, members=s.members))
        if s.coverage is not None:
            lines.append(t("figures.ranking_coverage", finished=s.finished, adults=s.adults, rate=f"{s.coverage:.0f}"))
    return lines


async def show_ranking(ctx: Context, ward: Ward) -> None:
    t = ctx.t
    stats = await _stats(ctx, ward)
    lines = [t("admin.ranking_head", ward=ward.name), *ranking_lines(ctx, stats)]
    if not stats:
        lines.append(t("admin.no_groups"))
    authz.record(ctx, "admin.ranking", f"ward:{ward.id}")
    ctx.goto(Step.MENU)
    ctx.ask("\n".join(lines), _back(ctx, ward))


def choose_period(ctx: Context, ward: Ward) -> None:
    t = ctx.t
    ctx.goto(Step.MENU)
    options = [(t(key), f"adm:rp:{ward.id}:{span}") for span, key in PERIODS.items()]
    ctx.ask(t("admin.report_choose"), [*options, *_back(ctx, ward)])


def report_span(span: str, now: datetime, ctx: Context) -> tuple[Span | None, Period]:
    """The period of a chat choice (``bot.reports.period.chosen_period``: the web dashboard's
    report page picks its periods with the same function)."""
    return chosen_period(span, now=now, zone=ctx.services.zone)


def report_file_name(kind: str, ward_code: str, words: str) -> str:
    """A file's name that says what it is: "bao-cao-DEMO-6-thang-dau-nam-2026"."""
    return "-".join([kind, ward_code, *fold(words).split()])


async def send_report(ctx: Context, ward: Ward, span: str) -> None:
    """The period's report: the Word report, the workbook, the thi đua annex and the three
    charts — the files ``hocvuso report`` writes for the same period and clock — with a
    caption of the period's numbers."""
    from bot.reports.docx import Signer  # python-docx, XlsxWriter and matplotlib load on demand
    from bot.reports.exports import CHARTS, build_report
    from bot.reports.wording import percent

    t = ctx.t
    if span not in PERIODS:
        await stale_action(ctx)
        return
    chosen, period = report_span(span, ctx.now, ctx)
    zone, lessons, now = ctx.services.zone, ctx.lessons, ctx.now
    signer = Signer(*ctx.services.report_signer)
    ward_id, ward_code = ward.id, ward.code
    assert ward_id is not None

    async def build(sessions: SessionFactory) -> list[Reply]:
        # After the update's transaction: read in a session of its own, drawn in the drawing process.
        made = await build_report(sessions, ward_id=ward_id, lessons=lessons, start=period.start, end=period.end,
                                  zone=zone, span=chosen.value if chosen else None, now=now, signer=signer)
        total = made.figures.total
        caption = t("admin.report_period_caption", ward=made.figures.ward.name, period=made.period,
                    new=total.new_participants, own=total.completed_self, assisted=total.completed_assisted,
                    finished_period=total.finished_in_period, finished=total.finished, members=total.members,
                    rate=t("admin.report_no_members") if total.rate is None else percent(total.rate))
        files = [("bao-cao", ".docx", made.report, caption),
                 ("so-lieu", ".xlsx", made.workbook, t("admin.report_workbook_caption", period=made.period)),
                 ("de-xuat-khen-thuong", ".docx", made.annex, t("admin.report_annex_caption", period=made.period))]
        replies: list[Reply] = []
        for kind, suffix, content, text in files:
            path = await asyncio.to_thread(write_file, ctx, prefix=report_file_name(kind, ward_code, made.period),
                                           suffix=suffix, data=content)
            replies.append(Document(path, text))
        for name in CHARTS:
            path = await asyncio.to_thread(write_file, ctx, prefix=report_file_name(f"bieu-do-{name}", ward_code,
                                                                                     made.period),
                                           suffix=".png", data=made.charts[name])
            replies.append(Image(path, t("admin.report_chart_caption", period=made.period)))
        return replies

    ctx.later(build)
    authz.record(ctx, "admin.report", f"ward:{ward.id}", period=span)
    ctx.goto(Step.MENU)
    ctx.ask(t("admin.report_sent"), _back(ctx, ward))
