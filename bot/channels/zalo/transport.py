"""Outbox transports for Zalo: deliver one proactive message, say what happened.

The sender owns pacing, retries and bookkeeping (``bot.delivery.transport``); these only
turn Zalo's answers into a :class:`Delivery`. A message split into several Zalo sends is
retried whole, so after a failure in the middle its first part may arrive twice.

Zalo takes images by URL only: nothing is uploaded per message, Zalo fetches the URL. A local
photo (a broadcast's) is published on the bot's own endpoint (``bot.media``) once per
transport and its URL reused for every recipient (:class:`PublishedImages`), instead of
reading and hashing the file for each of 100,000 sends.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.channels.zalo.client import RATE_LIMITED, ZaloBotClient, ZaloBotError
from bot.channels.zalo.oa import oa_messages
from bot.channels.zalo.oa_client import TOKEN_REJECTED, ZaloOAClient, ZaloOAError
from bot.channels.zalo.render import TEXT_LIMIT, Outgoing, plan, texts
from bot.core.conversation import Clock
from bot.core.i18n import Catalog
from bot.core.messages import Capabilities, Reply
from bot.delivery.transport import SENT, Delivery, OutboundMessage, Pacing, Recipient, Result
from bot.media import MediaStore

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 5.0  # seconds, when a 429 carries no hint (Zalo publishes no limits)
OA_WINDOW = timedelta(days=7)  # an OA may message a user only this long after their last interaction
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")  # Zalo's night rule is in Vietnam time, whatever the ward's zone
NIGHT_ENDS = time(6, 0)


def _reason(text: str) -> str:
    return text[:200]


class PublishedImages:
    """The public URLs of the local images a transport sends: published the first time,
    remembered by path, size and modification time (a file changed in place is published
    again), and published again once half of ``bot.media``'s keeping time has passed, so a
    URL handed out is always still served."""

    KEPT = 64

    def __init__(self, media: MediaStore | None) -> None:
        self.media = media
        self._urls: OrderedDict[tuple[str, int, int], tuple[str, float]] = OrderedDict()

    async def photo(self, image: str) -> Outgoing | None:
        """A photo send for an outbox image: an https URL as is, a local file if we serve files."""
        if image.startswith("https://"):
            return Outgoing(photo=image)
        media = self.media
        if media is None or not media.serves_urls or not Path(image).is_file():
            return None
        info = Path(image).stat()
        key, now = (image, info.st_mtime_ns, info.st_size), media.clock.now().timestamp()
        known = self._urls.get(key)
        if known is None or now - known[1] >= media.keep_seconds / 2:
            url = await media.url_for(Path(image))
            if url is None:
                return None
            known = self._urls[key] = (url, now)
            while len(self._urls) > self.KEPT:
                self._urls.popitem(last=False)
        return Outgoing(photo=known[0])


class ZaloBotTransport:
    """Proactive messages over the Zalo Bot Platform (``sendMessage`` / ``sendPhoto``).

    Zalo documents no rule for messaging a chat long after its last message (an open
    question), so nothing is refused up front; errors are mapped as the reference lists.
    """

    channel = "zalo"

    def __init__(
        self, *, client: ZaloBotClient, catalog: Catalog, pacing: Pacing, media: MediaStore | None = None,
        channel: str = "zalo",
    ) -> None:
        self.channel = channel  # the channel account (bot) whose outbox rows this sends
        self.client = client
        self.t = catalog.translator(None)
        self.pacing = pacing
        self.media = media
        self.images = PublishedImages(media)
        self.capabilities = Capabilities(
            buttons=False, edit=False, text_limit=TEXT_LIMIT, images=bool(media and media.serves_urls), documents=False
        )

    async def _plan(self, message: OutboundMessage) -> list[Outgoing]:
        sends = await plan(message.as_reply(), self.t, self.media, numbered=message.numbered)
        if message.image:
            photo = await self.images.photo(message.image)
            if photo is None:
                return sends + texts(self.t("zalo.image_fallback"))  # said, not silently dropped
            if message.caption is not None:
                return [Outgoing(photo=photo.photo, caption=message.caption)]  # one message: photo + text
            return [photo, *sends]
        return sends

    async def deliver(self, recipient: Recipient, message: OutboundMessage) -> Delivery:
        try:
            for outgoing in await self._plan(message):
                if outgoing.photo:
                    await self.client.send_photo(recipient.external_id, outgoing.photo, outgoing.caption)
                else:
                    await self.client.send_message(recipient.external_id, outgoing.text)
        except ZaloBotError as exc:
            return bot_delivery(exc)
        return SENT


def bot_delivery(exc: ZaloBotError) -> Delivery:
    if exc.code == RATE_LIMITED:
        wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER
        return Delivery(Result.RETRY_AFTER, retry_after=wait, reason=_reason(str(exc)))
    if exc.transient:
        return Delivery(Result.TRANSIENT, reason=_reason(str(exc)))
    if exc.code == 401:
        log.error("Zalo rejected the bot token (401): check ZALO_BOT_TOKEN")
    return Delivery(Result.FAILED, reason=_reason(str(exc)))


class ZaloOATransport:
    """Proactive consultation messages from a Zalo Official Account.

    A user whose last interaction (``Identity.last_seen_at``) is more than 7 days old is
    not attempted: Zalo would refuse with -230, and the outbox row should say why.
    """

    def __init__(
        self,
        *,
        client: ZaloOAClient,
        catalog: Catalog,
        pacing: Pacing,
        media: MediaStore | None = None,
        clock: Clock,
        channel: str = "zalo_oa",
    ) -> None:
        self.channel = channel  # the channel account (OA) whose outbox rows this sends
        self.client = client
        self.t = catalog.translator(None)
        self.pacing = pacing
        self.media = media
        self.images = PublishedImages(media)
        self.clock = clock
        self.capabilities = Capabilities(
            buttons=False, edit=False, text_limit=TEXT_LIMIT, images=bool(media and media.serves_urls), documents=False
        )

    async def _messages(self, message: OutboundMessage) -> list[dict]:
        reply: Reply = message.as_reply()
        bodies = await oa_messages(reply, self.t, self.media, numbered=message.numbered)
        if message.image:
            photo = await self.images.photo(message.image)
            if photo is None:
                bodies.append({"text": self.t("zalo.image_fallback")})
            else:
                element = {"media_type": "image", "url": photo.photo}
                media_body = {"attachment": {"type": "template",
                                             "payload": {"template_type": "media", "elements": [element]}}}
                bodies.insert(0, media_body)
        return bodies

    async def deliver(self, recipient: Recipient, message: OutboundMessage) -> Delivery:
        now = self.clock.now()
        seen = recipient.last_seen_at
        if seen is None or now - seen > OA_WINDOW:
            when = seen.date().isoformat() if seen else "never"
            return Delivery(Result.NOT_ALLOWED, reason=f"outside Zalo OA's 7-day window (last interaction: {when})")
        try:
            for body in await self._messages(message):
                await self.client.send_cs(recipient.external_id, body)
        except ZaloOAError as exc:
            return oa_delivery(exc, now)
        return SENT


def _until_morning(now: datetime) -> float:
    local = now.astimezone(VIETNAM)
    morning = datetime.combine(local.date(), NIGHT_ENDS, VIETNAM)
    if local >= morning:
        morning += timedelta(days=1)
    return (morning - local).total_seconds()


def oa_delivery(exc: ZaloOAError, now: datetime) -> Delivery:
    """Zalo OA error codes (reference table) → what the outbox does with the row."""
    code, reason = exc.code, _reason(str(exc))
    if code in (-230, -232, -305, -311):
        return Delivery(Result.NOT_ALLOWED, reason=_reason(f"outside Zalo OA's interaction window ({reason})"))
    if code == -218:
        return Delivery(Result.NOT_ALLOWED, reason=_reason(f"the user's receive quota is used up ({reason})"))
    if code in (-227, -213):
        return Delivery(Result.BLOCKED, reason=reason)  # banned / inactive 45 days, or not a follower
    if code == -32 or code == 429:
        return Delivery(Result.RETRY_AFTER, retry_after=60.0, reason=reason)  # a per-minute limit
    if code == -234:
        return Delivery(Result.TRANSIENT, retry_after=_until_morning(now), reason=reason)
    if exc.transient:
        return Delivery(Result.TRANSIENT, reason=reason)
    if code in TOKEN_REJECTED or code in (-211, -221, -224, -320, -321):
        log.error("Zalo OA cannot send (%s): the OA or its app needs attention", exc)
    return Delivery(Result.FAILED, reason=reason)
