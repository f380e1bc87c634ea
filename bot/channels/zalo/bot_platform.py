"""The Zalo Bot Platform adapter: updates → ``Incoming``, ``Reply`` → Bot API sends.

Receiving: long polling with ``getUpdates`` (one update per call; 408 means "none yet",
so poll again) or a webhook whose ``X-Bot-Api-Secret-Token`` is compared in constant time.
Webhook bodies come wrapped (``{ok, result}``) or flat (``{event_name, message}``); both
are read. Zalo sends no update id, so an event is known by its name and message id
(``Incoming.event_id``): the engine records it with the update's effects, so a repeat — a
webhook retry, an event seen again after a restart — changes nothing. A webhook is answered
only once the update is committed (or 503 after ``ack_wait`` seconds: Zalo sends it again, and
the repeat is dropped if the first one got through). ``getUpdates`` has no offset to confirm:
an update is Zalo's to forget once fetched, so the window between fetching and committing is
the one place an update can be lost (a crash there). The bot's own messages echoed back are
ignored. Each chat's updates are handled and answered in order (``ChatQueues``).

Rendering: Zalo has no buttons, so menus are numbered lines ("Gõ 1, 2 hoặc 3") and the
engine resolves a typed "2" against the menu it stored; text is split at 2,000
characters; nothing is edited (``replace`` replies are new messages); images go by URL
from the bot's own web endpoint, or become a text when there is no public URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.channels.ordering import ChatQueues, acknowledge
from bot.channels.patience import PATIENCE, Pause, send_patiently
from bot.channels.zalo.client import RATE_LIMITED, ZaloBotClient, ZaloBotError
from bot.channels.zalo.render import Outgoing, plan
from bot.core.conversation import Conversation
from bot.core.i18n import Catalog
from bot.core.messages import Capabilities, Incoming, Reply
from bot.media import MediaStore

log = logging.getLogger(__name__)

CHANNEL = "zalo"
WEBHOOK_PATH = "/webhooks/zalo-bot"
SECRET_HEADER = "X-Bot-Api-Secret-Token"
ACK_WAIT = 1.5  # seconds a webhook waits for the update to be committed before answering 503
PHOTO_MAX_BYTES = 10 * 1024 * 1024

# What a non-text event carries, for the engine's friendly "text only" answer.
ATTACHMENTS = {
    "message.image.received": "photo",
    "message.sticker.received": "sticker",
    "message.voice.received": "voice",
    "message.unsupported.received": "unsupported",
}


@dataclass(frozen=True)
class BotEvent:
    """One Bot Platform event, with what the adapter needs from it."""

    name: str
    message_id: str
    chat_id: str
    user_id: str
    display_name: str | None
    is_bot: bool
    text: str | None
    attachment: str | None
    private: bool
    photo_url: str | None = None  # an image event's picture, fetched for steps that take one
    caption: str | None = None


def unwrap(body: object) -> dict[str, Any] | None:
    """The event of a webhook body or getUpdates result: ``{ok, result: {…}}`` or flat."""
    if not isinstance(body, dict):
        return None
    if "event_name" in body:
        return body
    result = body.get("result")
    return result if isinstance(result, dict) and "event_name" in result else None


def parse_event(update: Mapping[str, Any]) -> BotEvent | None:
    """The event, or None when it is not a message from a user we can answer."""
    name = str(update.get("event_name") or "")
    message = update.get("message")
    if not name.startswith("message.") or not isinstance(message, dict):
        return None
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    user_id = str(sender.get("id") or "")
    chat_id = str(chat.get("id") or user_id)
    if not user_id:
        return None
    # Copies of the docs disagree on the name field: display_name, first_name or name.
    display = next((str(sender[k]) for k in ("display_name", "first_name", "name") if sender.get(k)), None)
    text = message.get("text") if name == "message.text.received" else None
    attachment = None if name == "message.text.received" else ATTACHMENTS.get(name, "other")
    photo_url = message.get("photo_url") if name == "message.image.received" else None
    caption = message.get("caption") if name == "message.image.received" else None
    return BotEvent(
        name=name,
        message_id=str(message.get("message_id") or ""),
        chat_id=chat_id,
        user_id=user_id,
        display_name=display,
        is_bot=bool(sender.get("is_bot")),
        text=str(text) if text is not None else None,
        attachment=attachment,
        private=str(chat.get("chat_type") or "PRIVATE").upper() == "PRIVATE",
        photo_url=str(photo_url) if isinstance(photo_url, str) and photo_url.startswith(("https://", "http://")) else None,
        caption=str(caption) if caption else None,
    )


class ZaloBotChannel:
    """Receives Zalo Bot Platform updates and answers them through the Bot API.

    ``run()`` polls, or — when a webhook URL and secret are given — registers the webhook
    and waits; the web server then calls :meth:`handle_webhook`. ``stop()`` ends ``run()``
    after the updates being handled are answered; ``close()`` releases the HTTP client.
    """

    webhook_path = WEBHOOK_PATH

    def __init__(
        self,
        *,
        client: ZaloBotClient,
        conversation: Conversation,
        catalog: Catalog,
        media: MediaStore | None = None,
        webhook_secret: str | None = None,
        webhook_url: str | None = None,
        concurrency: int = 16,
        retry_delay: float = 1.0,
        backoff: tuple[float, float] = (1.0, 60.0),
        files_dir: Path | None = None,
        reply_patience: float = PATIENCE,
        ack_wait: float = ACK_WAIT,
        channel: str = CHANNEL,
        webhook_path: str = WEBHOOK_PATH,
    ) -> None:
        """``files_dir``: where a photo a user sends is downloaded for the engine
        (``Incoming.fetch_media``); without it photos stay unread attachments."""
        self.channel = channel  # the channel account's key (``bot.accounts``)
        self.webhook_path = webhook_path
        self.client = client
        self._files_dir = files_dir
        self._conversation = conversation
        self.t = catalog.translator(None)
        self.media = media
        self._secret = webhook_secret.encode() if webhook_secret else None
        self._webhook_url = webhook_url if webhook_secret else None
        self._retry_delay = retry_delay
        self._backoff = backoff
        self._patience = reply_patience
        self._ack_wait = ack_wait
        self.capabilities = Capabilities(
            buttons=False, edit=False, text_limit=2000, images=bool(media and media.serves_urls), documents=False
        )
        self.bot_id: str | None = None
        self.received = 0  # updates read from getUpdates or accepted from the webhook
        self.tasks = ChatQueues(concurrency=concurrency)
        self._stopped = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    @property
    def uses_webhook(self) -> bool:
        return self._webhook_url is not None

    async def run(self, *, poll_timeout: float = 30) -> None:
        """Receive until :meth:`stop`: by webhook if configured, else by long polling."""
        if self._webhook_url:
            await self._run_webhook()
        else:
            await self.run_polling(poll_timeout=poll_timeout)

    async def stop(self) -> None:
        self._stopped.set()

    async def close(self) -> None:
        await self.tasks.drain()
        await self.client.close()

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` or until stopped, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def _prepare(self, *, webhook: bool) -> None:
        me = await self.client.get_me()
        self.bot_id = str(me.get("id") or "") or None
        if webhook:
            assert self._webhook_url and self._secret
            await self.client.set_webhook(self._webhook_url, self._secret.decode())
        else:
            await self.client.delete_webhook()  # getUpdates does not work while one is set

    async def _run_webhook(self) -> None:
        delay = self._backoff[0]
        while not self._stopped.is_set():
            try:
                await self._prepare(webhook=True)
                log.info("Zalo bot webhook registered")
                break
            except ZaloBotError as exc:
                log.warning("Zalo webhook setup failed (%s); retrying in %.0f s", exc, delay)
                await self._pause(delay)
                delay = min(delay * 2, self._backoff[1])
        await self._stopped.wait()
        await self.tasks.drain()

    async def run_polling(self, *, poll_timeout: float = 30) -> None:
        """Long-poll ``getUpdates`` until stopped. Errors back off (doubling up to a limit)
        and never end the loop: a Zalo outage must not stop the bot."""
        delay = self._backoff[0]
        ready = False
        stop_wait = asyncio.create_task(self._stopped.wait())
        try:
            while not self._stopped.is_set():
                try:
                    if not ready:
                        await self._prepare(webhook=False)
                        ready = True
                    poll = asyncio.create_task(self.client.get_updates(timeout=poll_timeout))
                    done, _ = await asyncio.wait({poll, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                    if poll not in done:
                        poll.cancel()
                        with contextlib.suppress(asyncio.CancelledError, ZaloBotError):
                            await poll
                        break
                    update = poll.result()
                except ZaloBotError as exc:
                    if exc.code == 401:
                        log.error("Zalo rejected the bot token (401): check ZALO_BOT_TOKEN")
                    elif exc.code == 409:
                        ready = False  # a webhook was set meanwhile: delete it again first
                        log.warning("Zalo getUpdates refused: a webhook is set; removing it")
                    else:
                        log.warning("Zalo getUpdates failed (%s); retrying in %.1f s", exc, delay)
                    await self._pause(delay)
                    delay = min(delay * 2, self._backoff[1])
                    continue
                delay = self._backoff[0]
                if update is not None:
                    self.received += 1
                    await self.tasks.room()
                    self.accept(update)
        finally:
            stop_wait.cancel()
            await self.tasks.drain()

    # -- receiving -------------------------------------------------------------------

    async def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> int:
        """Check the secret header, read the body, start handling it; an HTTP status.

        A missing or wrong secret is refused with 403 before the body is even parsed.
        """
        given = headers.get(SECRET_HEADER)
        if self._secret is None or given is None or not hmac.compare_digest(given.encode(), self._secret):
            log.warning("Zalo bot webhook refused: missing or wrong secret")
            return 403
        try:
            update = unwrap(json.loads(body))
        except ValueError:
            return 400
        if update is None:
            return 400
        self.received += 1
        ack = self.accept(update)
        if ack is None:
            return 200  # nothing to handle (an echo, a group chat)
        try:
            await asyncio.wait_for(asyncio.shield(ack), self._ack_wait)
        except TimeoutError:
            return 503  # not committed yet: Zalo sends it again, and a repeat changes nothing
        return 200

    def accept(self, update: Mapping[str, Any]) -> asyncio.Future[None] | None:
        """Drop echoes and group chats; queue the rest behind the chat's earlier updates. The
        future resolves once the update is committed (None: nothing to handle)."""
        event = parse_event(update)
        if event is None or not event.private:
            return None
        if event.is_bot or (self.bot_id is not None and event.user_id == self.bot_id):
            return None  # the bot's own message echoed back

        async def fetch() -> Path | None:
            return await self._download_photo(event)

        async def work(ack: asyncio.Future[None]) -> None:
            incoming = Incoming(
                channel=self.channel,
                external_id=event.user_id,
                display_name=event.display_name,
                text=event.text if event.text is not None else event.caption,
                attachment=event.attachment,
                update_id=f"zalo:{event.message_id}",
                event_id=f"{event.name}:{event.message_id}" if event.message_id else None,
                fetch_media=fetch if event.photo_url and self._files_dir is not None else None,
            )
            replies = await self._conversation.handle(incoming, self.capabilities)
            acknowledge(ack)
            await self.render(event.chat_id, replies)

        return self.tasks.submit(event.chat_id, work)

    async def _download_photo(self, event: BotEvent) -> Path | None:
        """The picture of an image event, saved under the files folder — only when a step
        asks for it (an admin's broadcast photo)."""
        if self._files_dir is None or event.photo_url is None:
            return None
        folder = self._files_dir / "in"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"zl-{secrets.token_urlsafe(12)}.jpg"
        try:
            path.write_bytes(await self.client.download(event.photo_url, max_bytes=PHOTO_MAX_BYTES))
        except (ZaloBotError, OSError) as exc:
            log.info("photo of Zalo message %s not downloaded: %s", event.message_id, exc)
            path.unlink(missing_ok=True)
            return None
        return path

    # -- sending ---------------------------------------------------------------------

    async def render(self, chat_id: str, replies: Sequence[Reply]) -> None:
        """Send the replies in order; after a send that fails for good, the rest would be
        out of context, so they are dropped (and logged)."""
        for reply in replies:
            for outgoing in await plan(reply, self.t, self.media):
                try:
                    await self._send(chat_id, outgoing)
                except ZaloBotError as exc:
                    log.warning("reply to a Zalo chat dropped: %s", exc)
                    return

    async def _send(self, chat_id: str, outgoing: Outgoing) -> None:
        """One send; after a 429 it is sent again once ``retry_after`` has passed, after a
        passing error a few times with growing pauses, within ``reply_patience`` seconds."""

        async def send() -> None:
            if outgoing.photo:
                await self.client.send_photo(chat_id, outgoing.photo, outgoing.caption)
            else:
                await self.client.send_message(chat_id, outgoing.text)

        def pause_for(exc: Exception) -> Pause | None:
            if not isinstance(exc, ZaloBotError):
                return None
            if exc.code == RATE_LIMITED:
                return Pause(exc.retry_after if exc.retry_after is not None else self._retry_delay)
            return Pause(self._retry_delay, transient=True) if exc.transient else None

        await send_patiently(send, pause_for=pause_for, patience=self._patience)
