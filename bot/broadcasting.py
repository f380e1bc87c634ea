"""Composing, scheduling and reporting broadcasts: one service for the CLI and the chat.

What residents receive (:func:`resident_message`, the one place that says it; the outbox row
and the composer's preview both come from it): a first line naming who sends it —
"📢 UBND phường Bến Thạch:" from the ward's name (``storage.broadcasts.sender_ward``), or the
programme when a command-line broadcast goes to several wards — then the admin's text, and,
when the broadcast invites to learn, the "📖 Học tiếp" button (action ``next``, a free action:
a press, its number or the words typed pick it, see ``storage.proactive``).

Whether a broadcast invites to learn is the admin's explicit choice (the composer asks "Thêm
nút «📖 Học tiếp»?" after the text; ``--learn`` on the command line), never guessed from the
words: "học" appears in news that is not an invitation, and a button that surprises the admin
in the preview would be worse than one more question.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog, Translate
from bot.curriculum import LessonLibrary
from bot.core.messages import Capabilities, Image, Menu, Option, Reply, Text
from bot.core.render import keyword_menu
from bot.delivery.quiet import QuietHours, Run
from bot.delivery.transport import OutboundMessage
from bot.typed_time import TimeError as TimeError, explain as explain, parse_time as parse_time  # one reader of typed times
from storage import audit
from storage.broadcasts import (
    LEARN,
    AudienceError,
    Progress,
    check_groups_exist,
    count_recipients,
    create_broadcast,
    delivery_progress,
    group_names,
    invites_to_learn,
    parse_audience,
    queue_broadcast,
)
from storage.models import Broadcast, BroadcastStatus, Ward
from storage.outbox import DeliveryReport

LATEST_MAX = timedelta(days=90)  # how far ahead a broadcast may be scheduled (the chat, the web)
TEXT_MAX = 4000  # one Telegram message (4,096) with room to spare; Zalo splits at 2,000
IMAGE_TYPES = {".jpg", ".jpeg", ".png"}
IMAGE_MAX_BYTES = 10 * 1024 * 1024  # Telegram's photo limit
STATUS_TEXT = {
    "scheduled": "broadcast.status_scheduled",
    "queued": "broadcast.status_queued",
    "cancelled": "broadcast.status_cancelled",
}


LEARN_ACTION = "next"  # the "📖 Học tiếp" button: the lesson in progress, else the next one
# A ward's name starts with its kind ("Phường Bến Thạch"); after "UBND" it is written small.
WARD_KINDS = ("phường", "xã", "thị trấn", "đặc khu")


class BroadcastError(ValueError):
    """Something in the request is wrong; ``str()`` says what, in Vietnamese."""


@dataclass(frozen=True)
class Scheduled:
    broadcast: Broadcast
    recipients: int | None  # known once queued (immediately for "now")
    sends_at: datetime  # when it starts to go out: :func:`sends_at`, the time every view shows
    expected: int = 0  # while scheduled: how many it would reach now (the audience query it will use)


def sends_at(broadcast: Broadcast, *, quiet: QuietHours, now: datetime) -> datetime:
    """When a broadcast starts (or started) to go out, by the quiet hours the sender keeps:
    the first allowed moment from its scheduled time, or from when it was queued, or from
    ``now`` while it waits. The command line, the chat and the delivery report all show it."""
    assert broadcast.scheduled_at is not None
    return quiet.expected(broadcast.scheduled_at, now=broadcast.queued_at or now)


def sender_line(t: Translate, ward_name: str | None) -> str:
    """"📢 UBND phường Bến Thạch:" — or the programme's name when no one ward sends it."""
    if not ward_name:
        return t("broadcast.from_programme")
    name = unicodedata.normalize("NFC", " ".join(ward_name.split()))
    for kind in WARD_KINDS:
        if name[: len(kind)].casefold() == kind and name[len(kind) : len(kind) + 1] == " ":
            name = kind + name[len(kind) :]
            break
    return t("broadcast.from_ward", ward=name)


def resident_message(
    t: Translate, *, text: str, ward_name: str | None, learn: bool, image: str | None = None
) -> OutboundMessage:
    """A broadcast as residents receive it: who sends it, the text, the button if it invites
    to learn, the photo. Stored with the broadcast when queued; shown as is by the composer's preview."""
    options = (Option(t("menu.continue"), LEARN_ACTION),) if learn else ()
    return OutboundMessage(text=f"{sender_line(t, ward_name)}\n{text}", options=options, image=image)


def message_replies(message: OutboundMessage, t: Translate, capabilities: Capabilities) -> list[Reply]:
    """The broadcast as residents receive it on this channel (the outbox transports send it
    this way): the photo with the text as its caption, or the photo and then the text
    (``OutboundMessage.caption``); the button as a button, or where there are none as the
    words to type (see the module)."""
    replies: list[Reply] = []
    if message.image:
        caption = message.caption
        replies.append(Image(Path(message.image), caption or ""))
        if caption is not None:
            return replies
    if not message.options:
        replies.append(Text(message.text))
    elif capabilities.buttons:
        replies.append(Menu(message.text, message.options))
    else:
        replies.append(Text(keyword_menu(Menu(message.text, message.options), t)))
    return replies


def message_for(catalog: Catalog) -> Callable[[Broadcast, Ward | None], dict[str, Any]]:
    """What ``storage.broadcasts.queue_broadcast`` stores, once, as the broadcast's message."""
    t = catalog.translator(None)

    def message(broadcast: Broadcast, ward: Ward | None) -> dict[str, Any]:
        made = resident_message(t, text=broadcast.text, image=broadcast.image,
                                ward_name=ward.name if ward else None, learn=invites_to_learn(broadcast))
        return made.to_payload()

    return message


def check_image(path: str | None) -> str | None:
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise BroadcastError(f"không tìm thấy ảnh {file.name}")  # the name only: no server path on a page
    if file.suffix.lower() not in IMAGE_TYPES or file.stat().st_size > IMAGE_MAX_BYTES:
        raise BroadcastError("ảnh phải là tệp .jpg hoặc .png, nhỏ hơn 10 MB")
    return str(file.resolve())


async def schedule(
    session: AsyncSession,
    *,
    author: str,
    text: str,
    audience_text: str,
    lesson_ids: set[str],
    now: datetime,
    quiet: QuietHours,
    at: datetime | None = None,
    catalog: Catalog,
    image: str | None = None,
    ward: str | None = None,
    learn: bool = False,
) -> Scheduled:
    """Validate and store a broadcast; queue it at once when it is due now. ``ward`` (a
    ward's code) limits the audience to that ward and names it as the sender (the chat's
    composer always gives it); ``learn``: it invites to learn (the "📖 Học tiếp" button).
    ``Scheduled.sends_at`` is when it starts to go out (:func:`sends_at`)."""
    text = text.strip()
    if not text:
        raise BroadcastError("nội dung thông báo đang trống")
    if len(text) > TEXT_MAX:
        raise BroadcastError(f"nội dung dài {len(text)} ký tự, tối đa {TEXT_MAX}")
    try:
        audience = parse_audience(audience_text, lesson_ids=lesson_ids)
        if ward is not None:
            audience["ward"] = ward
        if learn:
            audience[LEARN] = True
        await check_groups_exist(session, audience=audience)
    except AudienceError as exc:
        raise BroadcastError(str(exc)) from None
    when = max(at or now, now)
    broadcast = await create_broadcast(
        session, author=author, text=text, audience=audience, scheduled_at=when, now=now, image=check_image(image)
    )
    audit.record(session, actor=author, action="broadcast.create", target=f"broadcast:{broadcast.id}", now=now,
                 details={"audience": audience, "scheduled_at": when.isoformat()})
    recipients = None
    if when <= now:
        assert broadcast.id is not None
        recipients = await queue_broadcast(session, broadcast_id=broadcast.id, now=now,
                                           message=message_for(catalog))
    expected = recipients if recipients is not None else await count_recipients(session, audience=audience)
    return Scheduled(broadcast, recipients, sends_at(broadcast, quiet=quiet, now=now), expected)


# What the estimate counts per recipient: the photo and the text, the text never split (a text
# over a channel's limit goes as several messages, which the estimate leaves out).
ESTIMATED = Capabilities(buttons=True, edit=False, text_limit=None)


@dataclass(frozen=True)
class Estimate:
    """How long a broadcast takes to go out (:func:`estimate`): ``sending`` is the time its
    senders send; ``run`` when that begins and ends with the quiet hours kept."""

    recipients: int
    sending: timedelta
    run: Run


def estimate(message: OutboundMessage, *, recipients: Mapping[str, int], rates: Mapping[str, float],
             start: datetime, quiet: QuietHours) -> Estimate | None:
    """When a broadcast of ``message`` to ``recipients`` (how many through each channel)
    starting at ``start`` is done. Each channel's sender keeps its own rate (messages per
    second) and they all run at once, so the slowest bounds it: its recipients × the calls
    each message takes (a photo with a button: two) ÷ its rate. Other messages already waiting
    for the same account are not counted. None when a channel with recipients has no rate."""
    calls = message.calls(ESTIMATED)
    seconds = 0.0
    for channel, count in recipients.items():
        if count and not rates.get(channel):
            return None
        if count:
            seconds = max(seconds, count * calls / rates[channel])
    sending = timedelta(seconds=seconds)
    return Estimate(sum(recipients.values()), sending, quiet.run(start, sending))


def duration_text(t: Translate, duration: timedelta) -> str:
    """"dưới 1 phút" · "khoảng 58 phút" · "khoảng 1 giờ 5 phút" (whole minutes, rounded up)."""
    if duration < timedelta(minutes=1):
        return t("broadcast.duration_under_minute")
    minutes = math.ceil(duration.total_seconds() / 60)
    if minutes < 60:
        return t("broadcast.duration_minutes", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if not minutes:
        return t("broadcast.duration_hours", hours=hours)
    return t("broadcast.duration_hours_minutes", hours=hours, minutes=minutes)


def estimate_lines(t: Translate, found: Estimate, *, lead: str, quiet: QuietHours, now: datetime,
                   start: datetime, say_start: bool = True) -> list[str]:
    """How long, done when, in the ward's time: "⏱ Nếu gửi ngay, gửi hết mất khoảng 58 phút,
    xong lúc 20:13." (``lead``: "Nếu gửi ngay," or "Dự kiến"). When the quiet hours delay the
    start (``say_start``) or interrupt the sending, it says when it begins, stops and resumes."""
    def clock(moment: datetime) -> str:
        local = moment.astimezone(quiet.zone)
        same_day = local.date() == now.astimezone(quiet.zone).date()
        return local.strftime("%H:%M" if same_day else "%H:%M %d/%m")

    window = f"{quiet.start.strftime('%H:%M')}–{quiet.end.strftime('%H:%M')}"
    run, duration = found.run, duration_text(t, found.sending)
    finish = run.ends.replace(second=0, microsecond=0)
    if finish < run.ends:
        finish += timedelta(minutes=1)  # "done by": the minute rounded up, like the duration
    lines = []
    if say_start and run.begins - start >= timedelta(minutes=1):
        lines.append(t("broadcast.starts_after_quiet", quiet=window, begins=clock(run.begins)))
    if run.stopped is not None and run.resumed is not None:
        lines.append(t("broadcast.estimate_into_quiet", lead=lead, duration=duration, quiet=window,
                       stopped=clock(run.stopped), resumed=clock(run.resumed), finish=clock(finish)))
    else:
        lines.append(t("broadcast.estimate", lead=lead, duration=duration, finish=clock(finish)))
    return lines


@dataclass(frozen=True)
class View:
    """A broadcast as the admin reads it: who it goes to in words, how many, when it starts
    (the quiet hours applied) or started (the first message sent), and how far it got."""

    broadcast: Broadcast
    audience: str  # group names and lesson titles, never codes
    recipients: int  # stored once queued; while scheduled, counted now with the send's query
    sends_at: datetime  # :func:`sends_at`
    progress: Progress

    @property
    def state(self) -> str:
        """``scheduled`` · ``waiting`` (queued, nothing out yet) · ``sending`` · ``done`` · ``cancelled``."""
        if self.broadcast.status == BroadcastStatus.CANCELLED:
            return "cancelled"
        if self.broadcast.status == BroadcastStatus.SCHEDULED:
            return "scheduled"
        if self.progress.pending == 0:
            return "done"  # every row has an outcome (or there was nobody to send to)
        return "sending" if self.progress.rows > self.progress.pending else "waiting"


def describe_audience(t: Translate, audience: dict[str, Any], *, names: dict[str, str],
                      lessons: LessonLibrary) -> str:
    """"Tổ dân phố 3, Tổ dân phố 5" · "người chưa hoàn thành bài «…»" · … from a stored audience."""
    kind = audience.get("kind")
    if kind == "groups":
        return t("composer.to_groups", names=", ".join(names.get(c, c) for c in audience.get("codes", [])))
    if kind == "not_completed":
        lesson = lessons.get(str(audience.get("lesson")))
        return t("composer.to_not_completed", title=lesson.title if lesson else audience.get("lesson"))
    return t("composer.to_leaders") if kind == "leaders" else t("composer.to_all")


async def views(session: AsyncSession, broadcasts: list[Broadcast], *, t: Translate, lessons: LessonLibrary,
                quiet: QuietHours, now: datetime) -> list[View]:
    """:class:`View` of each broadcast: one query for the outcomes, one for the group names,
    and a count per broadcast still scheduled."""
    progress = await delivery_progress(session, broadcast_ids=[b.id for b in broadcasts if b.id is not None])
    names = await group_names(session, codes={c for b in broadcasts if b.audience.get("kind") == "groups"
                                              for c in b.audience.get("codes", [])})
    shown = []
    for b in broadcasts:
        count = b.recipients
        if b.status == BroadcastStatus.SCHEDULED or count is None:
            count = await count_recipients(session, audience=b.audience)
        shown.append(View(b, describe_audience(t, b.audience, names=names, lessons=lessons), count,
                          sends_at(b, quiet=quiet, now=now), progress.get(b.id or 0, Progress())))
    return shown


def status_text(t: Translate, view: View, *, zone: ZoneInfo) -> str:
    """One line: scheduled for when and for how many; waiting; sending, how far; sent, with
    the outcomes; cancelled."""
    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%H:%M %d/%m/%Y") if moment is not None else "—"

    p, state = view.progress, view.state
    if state == "cancelled":
        return t("broadcast.state_cancelled_after", sent=p.sent) if p.sent else t("broadcast.state_cancelled")
    if state in ("scheduled", "waiting"):
        key = "broadcast.state_scheduled" if state == "scheduled" else "broadcast.state_waiting"
        line = t(key, when=local(view.sends_at), count=view.recipients)
        planned = view.broadcast.scheduled_at
        if planned is not None and view.sends_at - max(planned, view.broadcast.queued_at or planned) > timedelta(minutes=1):
            line += " " + t("broadcast.after_quiet", planned=local(planned))
        return line
    if state == "sending":
        return t("broadcast.state_sending", started=local(p.first_sent_at or view.sends_at),
                 done=p.rows - p.pending, count=p.rows)
    line = t("broadcast.state_done", sent=p.sent, failed=p.failed, blocked=p.blocked)
    if p.first_sent_at is not None:
        line += " " + t("broadcast.sent_between", started=local(p.first_sent_at), finished=local(p.last_sent_at))
    return line


def format_report(catalog: Catalog, view: View, report: DeliveryReport, *, zone: ZoneInfo) -> str:
    """The delivery report: who it goes to, its state (:func:`status_text`), then the rows'
    outcomes overall and per group once there are rows."""
    t = catalog.translator(None)
    lines = [t("broadcast.report_head", id=view.broadcast.id, audience=view.audience),
             status_text(t, view, zone=zone)]
    if report.total:
        lines.append(t("broadcast.report_line", label=t("broadcast.total"), **report.totals))
    if report.by_group and report.total:
        lines.append(t("broadcast.by_group"))
        for group, counts in report.by_group.items():
            lines.append("  " + t("broadcast.report_line", label=group or t("broadcast.no_group"), **counts))
    return "\n".join(lines)
