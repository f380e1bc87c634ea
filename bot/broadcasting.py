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

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog, Translate
from bot.core.messages import Option
from bot.delivery.quiet import QuietHours
from bot.delivery.transport import OutboundMessage
from bot.typed_time import TimeError as TimeError, explain as explain, parse_time as parse_time  # one reader of typed times
from storage import audit
from storage.broadcasts import (
    LEARN,
    AudienceError,
    check_groups_exist,
    create_broadcast,
    invites_to_learn,
    parse_audience,
    queue_broadcast,
)
from storage.models import Broadcast, Ward
from storage.outbox import DeliveryReport

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
    to learn, the photo. Queued as the outbox payload; shown as is by the composer's preview."""
    options = (Option(t("menu.continue"), LEARN_ACTION),) if learn else ()
    return OutboundMessage(text=f"{sender_line(t, ward_name)}\n{text}", options=options, image=image)


def payload_for(catalog: Catalog) -> Callable[[Broadcast, Ward | None], dict[str, Any]]:
    """What ``storage.broadcasts.queue_broadcast`` stores in each recipient's outbox row."""
    t = catalog.translator(None)

    def payload(broadcast: Broadcast, ward: Ward | None) -> dict[str, Any]:
        message = resident_message(t, text=broadcast.text, image=broadcast.image,
                                   ward_name=ward.name if ward else None, learn=invites_to_learn(broadcast))
        return message.to_payload()

    return payload


def check_image(path: str | None) -> str | None:
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise BroadcastError(f"không tìm thấy ảnh {path}")
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
                                           payload=payload_for(catalog))
    return Scheduled(broadcast, recipients, sends_at(broadcast, quiet=quiet, now=now))


def format_report(
    catalog: Catalog,
    broadcast: Broadcast,
    report: DeliveryReport,
    *,
    zone: ZoneInfo,
    quiet: QuietHours,
    now: datetime,
) -> str:
    """The delivery report. Its time is :func:`sends_at`, the one the command line and the chat
    announced (the quiet hours as they are now)."""
    t = catalog.translator(None)
    when = sends_at(broadcast, quiet=quiet, now=now).astimezone(zone).strftime("%H:%M %d/%m/%Y")
    lines = [t("broadcast.report_head", id=broadcast.id, status=t(STATUS_TEXT[broadcast.status]),
               recipients=broadcast.recipients if broadcast.recipients is not None else "?", when=when)]
    lines.append(t("broadcast.report_line", label=t("broadcast.total"), **report.totals))
    if report.by_group:
        lines.append(t("broadcast.by_group"))
        for group, counts in report.by_group.items():
            lines.append("  " + t("broadcast.report_line", label=group or t("broadcast.no_group"), **counts))
    return "\n".join(lines)
