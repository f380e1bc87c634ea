"""The broadcast composer in the chat, and the admin's view of broadcasts sent.

text (± a photo) → "Thêm nút «📖 Học tiếp»?" (yes / no: does it invite residents to learn?)
→ audience (everyone / chosen groups / residents who have not completed lesson X / leaders
only — always within the admin's ward) → a preview exactly as a resident will see it — the
"📢 UBND phường …:" line, the text, the photo, the button — with the number of recipients,
how long sending takes at the accounts' rates and when it is done if sent now, or when the
quiet hours would delay or interrupt it (``bot.broadcasting.estimate``) → confirm → now or at
a chosen time (quick choices or a typed "2026-11-25 08:00") → queued by
``bot.broadcasting.schedule``, the same service as the CLI, and the same estimate for that
time → the delivery report, and cancel.

Whether a broadcast invites to learn is asked, not inferred from its words: the admin knows,
and the preview shows the answer (``bot.broadcasting`` has the reasons). On a channel without
buttons the preview shows the button as residents get it while busy with something else — the
words to type («Học tiếp») — so its number never collides with the composer's menu below it.

The draft lives in the conversation state (``ward``, ``text``, ``image``, ``learn``, ``aud``,
``sel``); every ``bc:`` action checks the step it belongs to and the admin's role again.
Actions: ``bc:new:<ward>`` · ``bc:b:1|0`` · ``bc:a[:all|g|nc|ld]`` · ``bc:t:<group>`` ·
``bc:gp:<page>`` · ``bc:gd`` · ``bc:l:<n>`` · ``bc:lp:<page>`` · ``bc:ok`` ·
``bc:at:now|<unix time>`` · ``bc:tm`` · ``bc:e`` · ``bc:x``; and ``adm:br|bx|by:<broadcast>``
(report, cancel).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.broadcasting import (
    LATEST_MAX,
    TEXT_MAX,
    BroadcastError,
    TimeError,
    describe_audience,
    estimate,
    estimate_lines,
    explain,
    format_report,
    message_replies,
    parse_time,
    resident_message,
    schedule,
    status_text,
    views,
)
from bot.core.conversation import Context
from bot.core.i18n import Translate
from bot.core.text import is_plain_int
from bot.delivery.transport import OutboundMessage
from handlers import admin, authz
from handlers.common import int_arg, local_time, paginate, words
from handlers.fallback import stale_action
from handlers.steps import Step
from handlers.support import clean_message
from storage.broadcasts import cancel_broadcast, group_names, parse_audience, recipients_by_channel, ward_broadcasts
from storage.groups import list_groups
from storage.models import Broadcast, BroadcastStatus, Ward
from storage.outbox import delivery_report

BROADCASTS_SHOWN = 8
DRAFT = ("ward", "text", "image", "learn", "aud", "sel", "ok")


def _go(ctx: Context, step: Step, **changes: Any) -> None:
    """Move to ``step`` keeping the draft (``goto`` starts fresh data)."""
    draft = {k: ctx.data.get(k) for k in DRAFT if ctx.data.get(k) is not None}
    ctx.goto(step, **{**draft, **changes})


async def _ward(ctx: Context) -> Ward | None:
    """The draft's ward, if this person still administers it; else refuse."""
    ward_id = ctx.data.get("ward")
    return await authz.administered(ctx, ward_id if isinstance(ward_id, int) else None)


async def composer_action(ctx: Context) -> None:
    args, verb = ctx.args, (ctx.args[0] if ctx.args else "")
    if verb == "new" and len(args) == 2:
        ward = await authz.admin_ward(ctx)
        if ward is not None:
            _drop_image(ctx)
            ctx.goto(Step.COMPOSE_TEXT, ward=ward.id)
            _ask_text(ctx)
        return
    drafting = ctx.state.step in (Step.COMPOSE_TEXT, Step.COMPOSE_AUDIENCE, Step.COMPOSE_CONFIRM, Step.COMPOSE_TIME)
    if not drafting or not ctx.data.get("ward"):
        await stale_action(ctx)  # an old button: no draft to act on
        return
    ward = await _ward(ctx)
    if ward is None:
        return
    has_text = bool(ctx.data.get("text"))
    if verb == "x" and len(args) == 1:
        _drop_image(ctx)
        admin.show_menu(ctx, ward, ctx.t("composer.cancelled"))
    elif verb == "e" and len(args) == 1:
        _go(ctx, Step.COMPOSE_TEXT)
        _ask_text(ctx)
    elif not has_text:
        await stale_action(ctx)
    elif verb == "b" and len(args) == 2 and args[1] in ("1", "0"):
        _go(ctx, Step.COMPOSE_AUDIENCE, learn=args[1] == "1")
        _ask_audience(ctx)
    elif verb == "a" and len(args) == 1:
        _ask_audience(ctx)
    elif verb == "a" and len(args) == 2 and args[1] in ("all", "ld"):
        await _preview(ctx, ward, "all" if args[1] == "all" else "leaders")
    elif verb == "a" and args[1:] == ("g",):
        await _choose_groups(ctx, ward, 0, selected=[])
    elif verb in ("t", "gp") and len(args) == 2 and ctx.state.step == Step.COMPOSE_AUDIENCE:
        await _groups_step(ctx, ward, verb)
    elif verb == "gd" and len(args) == 1 and ctx.state.step == Step.COMPOSE_AUDIENCE:
        await _groups_done(ctx, ward)
    elif verb == "a" and args[1:] == ("nc",):
        _choose_lesson(ctx, 0)
    elif verb == "lp" and len(args) == 2:
        _choose_lesson(ctx, int_arg(ctx, 1) or 0)
    elif verb == "l" and len(args) == 2:
        number = int_arg(ctx, 1, low=1, high=len(ctx.lessons) + 1)
        if number is None:
            await stale_action(ctx)
        else:
            await _preview(ctx, ward, f"not-completed:{list(ctx.lessons)[number - 1].id}")
    elif ctx.state.step not in (Step.COMPOSE_CONFIRM, Step.COMPOSE_TIME) or not ctx.data.get("aud"):
        await stale_action(ctx)  # confirming needs the preview first
    elif verb == "ok" and len(args) == 1:
        _ask_time(ctx)
    elif not ctx.data.get("ok"):
        await stale_action(ctx)  # a time only after "Đồng ý, gửi" under the preview
    elif verb == "tm" and len(args) == 1:
        _go(ctx, Step.COMPOSE_TIME)
        ctx.ask(ctx.t("composer.type_time"), [(ctx.t("composer.cancel"), "bc:x")])
    elif verb == "at" and len(args) == 2:
        await _at(ctx, ward, args[1])
    else:
        await stale_action(ctx)


def _ask_text(ctx: Context) -> None:
    ctx.ask(ctx.t("composer.ask_text", limit=TEXT_MAX), [(ctx.t("composer.cancel"), "bc:x")])


def _drop_image(ctx: Context) -> None:
    image = ctx.data.get("image")
    if isinstance(image, str):
        Path(image).unlink(missing_ok=True)


async def receive_text(ctx: Context) -> None:
    """The broadcast's text, or a photo (its caption, if any, is the text)."""
    ward = await _ward(ctx)
    if ward is None:
        return
    t = ctx.t
    incoming = ctx.incoming
    photo = await ctx.fetch_media() if incoming.attachment else None
    if incoming.attachment and photo is None:
        _go(ctx, Step.COMPOSE_TEXT)
        ctx.ask(t("composer.photo_unsupported"), [(t("composer.cancel"), "bc:x")])
        return
    changes: dict[str, Any] = {}
    if photo is not None:
        _drop_image(ctx)
        changes["image"] = str(photo)
    # One limit for a broadcast, the dashboard's and the CLI's too (bot.broadcasting.TEXT_MAX):
    # a longer text is refused with its length, never cut short.
    if len(incoming.text or "") > TEXT_MAX:
        _go(ctx, Step.COMPOSE_TEXT, **changes)
        ctx.ask(t("composer.too_long", length=len(incoming.text or ""), limit=TEXT_MAX), [(t("composer.cancel"), "bc:x")])
        return
    text = clean_message(incoming.text, limit=TEXT_MAX) if incoming.text else ctx.data.get("text") or ""
    if not text:
        _go(ctx, Step.COMPOSE_TEXT, **changes)
        ctx.ask(t("composer.photo_needs_text"), [(t("composer.cancel"), "bc:x")])
        return
    _go(ctx, Step.COMPOSE_AUDIENCE, text=text, **changes)
    _ask_learn(ctx)


def _ask_learn(ctx: Context) -> None:
    """Does the broadcast invite residents to learn? Then it carries "📖 Học tiếp"."""
    t = ctx.t
    ctx.ask(t("composer.ask_learn", button=t("menu.continue")), [
        (t("composer.learn_yes"), "bc:b:1", words(ctx, "words.yes")),
        (t("composer.learn_no"), "bc:b:0", words(ctx, "words.no")),
        (t("composer.edit_text"), "bc:e"),
        (t("composer.cancel"), "bc:x"),
    ])


def _ask_audience(ctx: Context) -> None:
    t = ctx.t
    _go(ctx, Step.COMPOSE_AUDIENCE)
    ctx.ask(t("composer.ask_audience"), [
        (t("composer.audience_all"), "bc:a:all"),
        (t("composer.audience_groups"), "bc:a:g"),
        (t("composer.audience_not_completed"), "bc:a:nc"),
        (t("composer.audience_leaders"), "bc:a:ld"),
        (t("composer.edit_text"), "bc:e"),
        (t("composer.cancel"), "bc:x"),
    ])


async def _choose_groups(ctx: Context, ward: Ward, page: int, *, selected: list[int], replace: bool = False) -> None:
    t = ctx.t
    shown = paginate(await list_groups(ctx.session, ward_id=ward.id), page)
    options = [(f"{'✅' if g.id in selected else '▫️'} {g.name}", f"bc:t:{g.id}") for g in shown.items]
    options += shown.nav(ctx, "bc:gp:")
    options += [(t("composer.groups_done", count=len(selected)), "bc:gd"), (t("composer.back_audience"), "bc:a")]
    _go(ctx, Step.COMPOSE_AUDIENCE, sel=selected, page=shown.number)
    ctx.ask(t("composer.choose_groups"), options, replace=replace)


async def _groups_step(ctx: Context, ward: Ward, verb: str) -> None:
    """``bc:t:<group>`` toggles a group of this ward; ``bc:gp:<page>`` turns the page."""
    selected = [g for g in ctx.data.get("sel") or [] if isinstance(g, int)]
    page = ctx.data.get("page") if isinstance(ctx.data.get("page"), int) else 0
    if verb == "gp":
        page = int_arg(ctx, 1) or 0
    else:
        group_id = int_arg(ctx, 1, low=1)
        ward_groups = {g.id for g in await list_groups(ctx.session, ward_id=ward.id)}
        if group_id not in ward_groups:
            await authz.refuse(ctx)  # a group of another ward, or none at all
            return
        selected = [g for g in selected if g != group_id] if group_id in selected else [*selected, group_id]
    await _choose_groups(ctx, ward, page, selected=selected, replace=True)  # type: ignore[arg-type]


async def _groups_done(ctx: Context, ward: Ward) -> None:
    selected = {g for g in ctx.data.get("sel") or [] if isinstance(g, int)}
    codes = [g.code for g in await list_groups(ctx.session, ward_id=ward.id) if g.id in selected]
    if not codes:
        page = ctx.data.get("page") if isinstance(ctx.data.get("page"), int) else 0
        ctx.say(ctx.t("composer.no_group_chosen"))
        await _choose_groups(ctx, ward, page, selected=[])  # type: ignore[arg-type]
        return
    await _preview(ctx, ward, "group:" + ",".join(codes))


def _choose_lesson(ctx: Context, page: int) -> None:
    t = ctx.t
    shown = paginate(list(ctx.lessons), page)
    options = [(f"{ctx.lessons.position(l.id)}. {l.title}", f"bc:l:{ctx.lessons.position(l.id)}")
               for l in shown.items]
    options += shown.nav(ctx, "bc:lp:")
    options.append((t("composer.back_audience"), "bc:a"))
    _go(ctx, Step.COMPOSE_AUDIENCE)
    ctx.ask(t("composer.choose_lesson"), options)


async def _preview(ctx: Context, ward: Ward, audience: str) -> None:
    """The message exactly as residents will see it, and how many will get it."""
    t = ctx.t
    stored = parse_audience(audience, lesson_ids={l.id for l in ctx.lessons})
    stored["ward"] = ward.code
    by_channel = await recipients_by_channel(ctx.session, audience=stored)  # the query the send will use
    names = await group_names(ctx.session, codes=stored.get("codes", []))
    _go(ctx, Step.COMPOSE_CONFIRM, aud=audience, ok=False)
    ctx.say(t("composer.preview_head"))
    message = _message(ctx, ward)
    ctx.replies.extend(message_replies(message, t, ctx.capabilities))
    words = describe_audience(t, stored, names=names, lessons=ctx.lessons)
    lines = [t("composer.preview_count", count=sum(by_channel.values()), audience=words),
             *_estimate(ctx, message, by_channel, start=ctx.now, lead=t("composer.if_now")),
             t("composer.confirm_question")]
    ctx.ask("\n".join(lines), [
        (t("composer.confirm"), "bc:ok"),
        (t("composer.change_audience"), "bc:a"),
        (t("composer.edit_text"), "bc:e"),
        (t("composer.cancel"), "bc:x"),
    ])


def _message(ctx: Context, ward: Ward) -> OutboundMessage:
    return resident_message(ctx.t, text=str(ctx.data["text"]), image=ctx.data.get("image"),
                            ward_name=ward.name, learn=ctx.data.get("learn") is True)


def _estimate(ctx: Context, message: OutboundMessage, recipients: dict[str, int], *, start: datetime,
              lead: str, say_start: bool = True) -> list[str]:
    """How long sending takes and when it is done, in the ward's time, with a warning when the
    quiet hours delay or interrupt it (``bot.broadcasting.estimate``); nothing when a channel's
    rate is unknown or there is nobody to send to."""
    services = ctx.services
    found = estimate(message, recipients=recipients, rates=services.send_rates, start=start, quiet=services.quiet)
    if found is None or not found.recipients:
        return []
    return estimate_lines(ctx.t, found, lead=lead, quiet=services.quiet, now=ctx.now, start=start,
                          say_start=say_start)


def _ask_time(ctx: Context) -> None:
    t = ctx.t
    zone = ctx.services.zone
    local = ctx.now.astimezone(zone)
    choices = [(t("composer.send_now"), "bc:at:now")]
    tonight = local.replace(hour=19, minute=0, second=0, microsecond=0)
    if tonight > local:
        choices.append((t("composer.send_tonight"), f"bc:at:{int(tonight.timestamp())}"))
    tomorrow = (local + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    choices.append((t("composer.send_tomorrow"), f"bc:at:{int(tomorrow.timestamp())}"))
    choices += [(t("composer.send_other"), "bc:tm"), (t("composer.cancel"), "bc:x")]
    _go(ctx, Step.COMPOSE_CONFIRM, ok=True)
    ctx.ask(t("composer.ask_time"), choices)


async def _at(ctx: Context, ward: Ward, value: str) -> None:
    when = None
    if value != "now":
        if not is_plain_int(value, max_digits=12):
            await stale_action(ctx)
            return
        when = datetime.fromtimestamp(int(value), UTC)
    await _schedule(ctx, ward, when)


async def receive_time(ctx: Context) -> None:
    """A typed time in the ward's time ("10/12 8h", "8 giờ sáng mai", "2026-12-10 08:00"): the
    one reader the command line's ``--at`` uses too (``bot.typed_time``)."""
    ward = await _ward(ctx)
    if ward is None:
        return
    typed = clean_message(ctx.incoming.text or "")[:80]
    try:
        when = parse_time(typed, now=ctx.now, zone=ctx.services.zone)
    except TimeError as exc:
        _go(ctx, Step.COMPOSE_TIME)
        ctx.ask(ctx.t("composer.time_invalid", text=typed, error=explain(ctx.t, exc)),
                [(ctx.t("composer.cancel"), "bc:x")])
        return
    await _schedule(ctx, ward, when)


async def _schedule(ctx: Context, ward: Ward, when: datetime | None) -> None:
    t = ctx.t
    if when is not None and not ctx.now - timedelta(minutes=1) <= when <= ctx.now + LATEST_MAX:
        _go(ctx, Step.COMPOSE_TIME)
        ctx.ask(t("composer.time_out_of_range", days=LATEST_MAX.days), [(t("composer.cancel"), "bc:x")])
        return
    try:
        done = await schedule(
            ctx.session, author=authz.actor(ctx), text=str(ctx.data["text"]), audience_text=str(ctx.data["aud"]),
            lesson_ids={l.id for l in ctx.lessons}, now=ctx.now, quiet=ctx.services.quiet, at=when,
            image=ctx.data.get("image"), ward=ward.code, learn=ctx.data.get("learn") is True,
            catalog=ctx.services.catalog,
        )
    except BroadcastError as exc:
        _go(ctx, Step.COMPOSE_CONFIRM)
        ctx.ask(t("composer.failed", error=str(exc)), [(t("composer.edit_text"), "bc:e"), (t("composer.cancel"), "bc:x")])
        return
    broadcast = done.broadcast
    sends_at = local_time(ctx, done.sends_at)
    if done.recipients is not None:
        text = t("composer.queued", id=broadcast.id, count=done.recipients, when=sends_at)
    else:
        text = t("composer.scheduled", id=broadcast.id, count=done.expected, when=sends_at)
    by_channel = await recipients_by_channel(ctx.session, audience=broadcast.audience)
    # The text above says when it starts; this, how long it takes and whether it meets the quiet hours.
    text = "\n".join([text, *_estimate(ctx, _message(ctx, ward), by_channel, start=done.sends_at,
                                         lead=t("broadcast.expected"), say_start=False)])
    ctx.goto(Step.MENU)  # the draft is now a broadcast: its image file belongs to it
    ctx.ask(text, [
        (t("composer.report_button"), f"adm:br:{broadcast.id}"),
        (t("composer.cancel_broadcast"), f"adm:bx:{broadcast.id}"),
        (t("admin.back"), f"adm:w:{ward.id}"),
    ])


# -- broadcasts sent ------------------------------------------------------------------

async def list_broadcasts(ctx: Context, ward: Ward) -> None:
    """The ward's latest broadcasts: made in the chat, or on the command line with ``--ward``."""
    t = ctx.t
    mine = await ward_broadcasts(ctx.session, ward_code=ward.code, limit=BROADCASTS_SHOWN)
    shown = await views(ctx.session, mine, t=t, lessons=ctx.lessons, quiet=ctx.services.quiet, now=ctx.now)
    lines = [t("composer.list_head", ward=ward.name)] if mine else [t("composer.list_empty")]
    for view in shown:
        b = view.broadcast
        excerpt = b.text if len(b.text) <= 60 else b.text[:59] + "…"
        lines.append(t("composer.list_line", id=b.id, audience=view.audience,
                       status=status_text(t, view, zone=ctx.services.zone), text=excerpt))
    authz.record(ctx, "admin.broadcasts", f"ward:{ward.id}")
    ctx.goto(Step.MENU)
    options = [(t("composer.report_of", id=b.id), f"adm:br:{b.id}") for b in mine]
    ctx.ask("\n".join(lines), [*options, (t("admin.compose_button"), f"bc:new:{ward.id}"),
                               (t("admin.back"), f"adm:w:{ward.id}")])


async def broadcast_action(ctx: Context) -> None:
    """``adm:br:<id>`` the delivery report · ``adm:bx:<id>`` asks · ``adm:by:<id>`` cancels."""
    t = ctx.t
    verb = ctx.args[0]
    broadcast_id = int_arg(ctx, 1, low=1)
    broadcast = await ctx.session.get(Broadcast, broadcast_id) if broadcast_id is not None else None
    ward_code = broadcast.audience.get("ward") if broadcast is not None else None
    found = (await ctx.session.exec(select(Ward.id).where(Ward.code == ward_code))).first() if ward_code else None
    ward = await authz.administered(ctx, found)  # a broadcast of no ward or another ward: refused
    if broadcast is None or ward is None:
        return
    back = [(t("composer.list_button"), f"adm:bl:{ward.id}"), (t("admin.back"), f"adm:w:{ward.id}")]
    ctx.goto(Step.MENU)
    if verb == "bx":
        ctx.ask(t("composer.cancel_confirm", id=broadcast.id),
                [(t("composer.cancel_yes"), f"adm:by:{broadcast.id}"), *back])
        return
    if verb == "by":
        if await cancel_broadcast(ctx.session, broadcast_id=broadcast.id):  # type: ignore[arg-type]
            authz.record(ctx, "broadcast.cancel", f"broadcast:{broadcast.id}")
        await ctx.session.refresh(broadcast)
    else:
        authz.record(ctx, "admin.broadcast_report", f"broadcast:{broadcast.id}")
    report = await delivery_report(ctx.session, broadcast_id=broadcast.id)  # type: ignore[arg-type]
    [view] = await views(ctx.session, [broadcast], t=t, lessons=ctx.lessons, quiet=ctx.services.quiet, now=ctx.now)
    text = format_report(ctx.services.catalog, view, report, zone=ctx.services.zone)
    options = []
    if broadcast.status != BroadcastStatus.CANCELLED and (
            broadcast.status == BroadcastStatus.SCHEDULED or report.totals.get("pending")):
        options.append((t("composer.cancel_broadcast"), f"adm:bx:{broadcast.id}"))
    options.append((t("composer.refresh"), f"adm:br:{broadcast.id}"))
    ctx.ask(text, [*options, *back])

