"""The Zalo Official Account adapter: signed webhook events → ``Incoming``, replies →
consultation messages.

Receiving (webhook only): ``X-ZEvent-Signature`` is the lowercase hex SHA-256 (not an
HMAC) of ``app_id + raw body + timestamp + OA secret key``, where the timestamp is the
``timestamp`` field inside the JSON body and the header may carry a ``mac=`` prefix. A
request that fails the check is refused (403) before anything is read from it.
Events: ``user_send_text`` (text, or the payload of a pressed query button), ``follow``
(greeted like ``/start``), ``unfollow`` (the identity is marked blocked), other
``user_send_*`` (attachments the bot cannot read); ``oa_send_*`` are our own echoes.
Repeated deliveries (Zalo retries for an hour) are dropped by ``msg_id``: it is the event id the
engine records with the update's effects. The webhook is answered once the update is committed
(or 503 after ``ack_wait`` seconds — Zalo wants an answer within 2 s — so that Zalo sends it
again; the repeat changes nothing if the first one got through). Each user's updates are
handled and answered in order.

Rendering: text is split at 2,000 characters; a menu is numbered lines and, when it has
at most 5 options (the OA limit), also ``oa.query.hide`` buttons whose payload is
``#<action>``. A press comes back as ``user_send_text`` with that payload as its text and
is turned back into an action — untrusted, like every action. Larger menus are numbered
text only, which is why the engine treats this channel as a numbered one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.channels.ordering import ChatQueues, acknowledge
from bot.channels.patience import PATIENCE, Pause, send_patiently
from bot.channels.zalo.oa_client import ZaloOAClient, ZaloOAError
from bot.channels.zalo.render import TEXT_LIMIT, plan
from bot.core.conversation import Clock, Conversation
from bot.core.i18n import Catalog, Translate
from bot.core.messages import Capabilities, Incoming, Menu, Reply
from bot.media import MediaStore
from storage.db import SessionFactory
from storage.identities import set_blocked

log = logging.getLogger(__name__)

CHANNEL = "zalo_oa"
WEBHOOK_PATH = "/webhooks/zalo-oa"
SIGNATURE_HEADER = "X-ZEvent-Signature"
MAX_BUTTONS = 5
BUTTON_TITLE_LIMIT = 100
RATE_LIMITED_CODES = (-32, 429)  # Zalo's "too many requests": wait a minute (the reference's advice)
ACTION_MARK = "#"  # a button payload is "#<action>"; typed text rarely looks like one
_ACTION = re.compile(r"^[a-z]+(?::[A-Za-z0-9_.-]+)*$")
ATTACHMENT_EVENTS = {
    f"user_send_{kind}"
    for kind in ("image", "file", "sticker", "gif", "audio", "video", "location", "link", "business_card")
}


def signature_matches(raw: bytes, header: str | None, *, app_id: str, oa_id: str, secret_key: str) -> str | None:
    """Which id the signature was made with (``app_id`` as Zalo's SDK does, or ``oa_id``
    as some integrations report), or None when it does not match / is missing."""
    if not header or not secret_key:
        return None
    mac = header.strip()
    if mac[:4].lower() == "mac=":
        mac = mac[4:].strip()
    try:
        body = json.loads(raw)
        timestamp = str(body["timestamp"])
    except (ValueError, KeyError, TypeError):
        return None
    for label, first in (("app_id", app_id), ("oa_id", oa_id)):
        if not first:
            continue
        expected = hashlib.sha256(first.encode() + raw + timestamp.encode() + secret_key.encode()).hexdigest()
        if hmac.compare_digest(expected.encode(), mac.lower().encode()):
            return label
    return None


@dataclass(frozen=True)
class OAEvent:
    name: str
    user_id: str
    key: tuple[str, ...]  # what identifies a repeated delivery
    text: str | None = None
    action: str | None = None
    attachment: str | None = None


def action_of(text: str) -> str | None:
    """The action a pressed button's payload names, or None for ordinary text."""
    if not text.startswith(ACTION_MARK):
        return None
    action = text[len(ACTION_MARK) :].strip()
    return action if _ACTION.fullmatch(action) and len(action.encode()) <= 64 else None


def parse_oa_event(body: Mapping[str, Any], *, oa_id: str) -> OAEvent | None:
    """The event if it is one the bot acts on; None for echoes and everything else."""
    name = str(body.get("event_name") or "")
    sender = str((body.get("sender") or {}).get("id") or "") if isinstance(body.get("sender"), dict) else ""
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    timestamp = str(body.get("timestamp") or "")
    if name.startswith("oa_send_") or (oa_id and sender == oa_id):
        return None  # our own message, echoed back
    if name in ("follow", "unfollow"):
        follower = body.get("follower") if isinstance(body.get("follower"), dict) else {}
        user = str(follower.get("id") or "")
        return OAEvent(name, user, (name, user, timestamp)) if user else None
    if not sender:
        return None
    key = (name, str(message.get("msg_id") or timestamp))
    if name == "user_send_text":
        text = str(message.get("text") or "")
        action = action_of(text)
        return OAEvent(name, sender, key, text=None if action else text, action=action)
    if name in ATTACHMENT_EVENTS:
        return OAEvent(name, sender, key, attachment=name.removeprefix("user_send_"))
    return None


def cs_messages(reply: Reply, pieces: Sequence[Any]) -> list[dict[str, Any]]:
    """Consultation message bodies for ``reply``, from the Bot Platform plan ``pieces``."""
    messages: list[dict[str, Any]] = []
    for piece in pieces:
        if piece.photo:
            element = {"media_type": "image", "url": piece.photo}
            messages.append({"attachment": {"type": "template",
                                            "payload": {"template_type": "media", "elements": [element]}}})
            if piece.caption:
                messages.append({"text": piece.caption[:TEXT_LIMIT]})
        else:
            messages.append({"text": piece.text})
    if isinstance(reply, Menu) and 0 < len(reply.options) <= MAX_BUTTONS and messages:
        buttons = [
            {"title": o.label[:BUTTON_TITLE_LIMIT], "type": "oa.query.hide", "payload": ACTION_MARK + o.action}
            for o in reply.options
        ]
        messages[-1]["attachment"] = {"type": "template", "payload": {"buttons": buttons}}
    return messages


async def oa_messages(
    reply: Reply, t: Translate, media: MediaStore | None, *, numbered: bool = True
) -> list[dict[str, Any]]:
    """Consultation messages for ``reply``. With ``numbered=False`` a menu's text names its
    options as words to type instead of numbers; its query buttons stay (a press is an
    action, whatever the conversation is in the middle of)."""
    return cs_messages(reply, await plan(reply, t, media, numbered=numbered))


class ZaloOAChannel:
    """Receives OA webhook events and answers with consultation messages.

    The web server calls :meth:`handle_webhook`; ``run()`` only waits for ``stop()`` (there
    is nothing to poll), ``close()`` waits for the updates in hand and closes the client.
    """

    webhook_path = WEBHOOK_PATH

    def __init__(
        self,
        *,
        client: ZaloOAClient,
        conversation: Conversation,
        catalog: Catalog,
        sessions: SessionFactory,
        oa_id: str,
        app_id: str,
        secret_key: str,
        media: MediaStore | None = None,
        clock: Clock,
        concurrency: int = 16,
        ack_wait: float = 1.5,
        reply_patience: float = PATIENCE,
        rate_wait: float = 60.0,
        retry_delay: float = 1.0,
        channel: str = CHANNEL,
        webhook_path: str = WEBHOOK_PATH,
    ) -> None:
        self.client = client
        self.channel = channel  # the channel account (this OA) its identities are stored under
        self.webhook_path = webhook_path
        self._conversation = conversation
        self.t = catalog.translator(None)
        self._sessions = sessions
        self.oa_id, self._app_id, self._secret_key = oa_id, app_id, secret_key
        self.media = media
        self.clock = clock
        # Menus of more than 5 options are numbered text, so the engine must accept typed
        # numbers here: for the core this is a numbered channel (buttons are a shortcut).
        self.capabilities = Capabilities(
            buttons=False, edit=False, text_limit=TEXT_LIMIT, images=bool(media and media.serves_urls),
            documents=False,
        )
        self.tasks = ChatQueues(concurrency=concurrency)
        self._ack_wait = ack_wait
        self._patience, self._rate_wait, self._retry_delay = reply_patience, rate_wait, retry_delay
        self._stopped = asyncio.Event()
        self._reported_oa_id_signature = False

    async def run(self) -> None:
        await self._stopped.wait()
        await self.tasks.drain()

    async def stop(self) -> None:
        self._stopped.set()

    async def close(self) -> None:
        await self.tasks.drain()
        await self.client.close()

    async def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> int:
        matched = signature_matches(
            body, headers.get(SIGNATURE_HEADER), app_id=self._app_id, oa_id=self.oa_id, secret_key=self._secret_key
        )
        if matched is None:
            log.warning("Zalo OA webhook refused: missing or wrong signature")
            return 403
        if matched == "oa_id" and not self._reported_oa_id_signature:
            # Sources disagree on the first term; say once which one real traffic uses.
            log.info("Zalo OA signatures are made with the OA id, not the app id")
            self._reported_oa_id_signature = True
        data = json.loads(body)
        event = parse_oa_event(data, oa_id=self.oa_id) if isinstance(data, dict) else None
        if event is None:
            return 200  # acknowledged: Zalo must not retry what we chose to ignore
        if event.name == "unfollow":
            async with self._sessions() as session, session.begin():
                await set_blocked(session, channel=self.channel, external_id=event.user_id, blocked_at=self.clock.now())
            return 200
        if event.name == "follow":
            async with self._sessions() as session, session.begin():
                await set_blocked(session, channel=self.channel, external_id=event.user_id, blocked_at=None)
        incoming = Incoming(
            channel=self.channel,
            external_id=event.user_id,
            text="/start" if event.name == "follow" else event.text,
            action=event.action,
            attachment=event.attachment,
            update_id=f"{self.channel}:{':'.join(event.key[1:])}",
            event_id=":".join(event.key),
        )

        async def work(ack: asyncio.Future[None]) -> None:
            replies = await self._conversation.handle(incoming, self.capabilities)
            acknowledge(ack)
            await self.render(event.user_id, replies)

        ack = self.tasks.submit(event.user_id, work)
        try:
            await asyncio.wait_for(asyncio.shield(ack), self._ack_wait)
        except TimeoutError:
            return 503  # not committed yet: Zalo sends it again, and a repeat changes nothing
        return 200

    async def render(self, user_id: str, replies: Sequence[Reply]) -> None:
        """Send the replies in order; after a send that fails for good the rest would be out of
        context, so they are dropped (and logged)."""
        for reply in replies:
            for message in await oa_messages(reply, self.t, self.media):
                try:
                    await self._send(user_id, message)
                except ZaloOAError as exc:
                    log.warning("reply to a Zalo OA user dropped: %s", exc)
                    return

    async def _send(self, user_id: str, message: dict[str, Any]) -> None:
        """One consultation message; rate limited (-32, HTTP 429: Zalo says to wait a minute) or
        a passing error, it is sent again, within ``reply_patience`` seconds."""

        def pause_for(exc: Exception) -> Pause | None:
            if not isinstance(exc, ZaloOAError):
                return None
            if exc.code in RATE_LIMITED_CODES:
                return Pause(self._rate_wait)
            return Pause(self._retry_delay, transient=True) if exc.transient else None

        await send_patiently(lambda: self.client.send_cs(user_id, message), pause_for=pause_for,
                             patience=self._patience)
