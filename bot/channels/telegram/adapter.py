"""Telegram on aiogram 3: updates → ``Incoming``, ``Reply`` → Bot API calls.

Receiving: long polling with our own small loop (aiogram parses the updates; each goes straight
to the handler of its kind, without aiogram's ``Dispatcher``), so that (1) each chat's updates
are handled and answered strictly in order — the answer to a pressed button included — through
:class:`~bot.channels.ordering.ChatQueues`, and (2) an update is confirmed to Telegram (the next
``getUpdates`` offset) only once its effects are committed: a process that dies mid-update gets
it again after a restart, and the handled-event table makes a second delivery of a committed one
change nothing. Or by webhook (``TELEGRAM_WEBHOOK_SECRET`` with ``PUBLIC_BASE_URL``: any number
of web replicas): the secret header is checked in constant time first, and the POST is answered
only once the update is committed (else 503: Telegram posts it again).

Rendering: menus become inline keyboards whose ``callback_data`` is the option's action (≤ 64
bytes, checked by the core). A reply marked ``replace`` edits the message whose button was just
pressed (a lesson card turned in place). Long text is split at 4,096 characters. A ``Notice``
is the pressed button's toast. A reply refused with 429 is sent again after ``retry_after``; a
5xx or network error is retried a few times: the resident's state has already moved on, so a
dropped reply would leave them with nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageText,
    GetFile,
    GetMe,
    GetUpdates,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    SetWebhook,
)
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    ChatMemberUpdated,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from aiohttp import ClientError
from pydantic import ValidationError

from bot.channels.ordering import ChatQueues, acknowledge
from bot.channels.telegram import models
from bot.channels.telegram.session import JsonBodySession
from bot.channels.patience import PATIENCE, Pause, send_patiently
from bot.core.conversation import Conversation
from bot.core.i18n import Catalog
from bot.core.messages import Capabilities, Document, Image, Incoming, Menu, Notice, Reply, Text
from bot.core.text import split_text
from bot.delivery.limiter import RateLimiter

log = logging.getLogger(__name__)


class SendReply(SendMessage):
    """``sendMessage`` for a reply: Telegram's answer is checked (sent, or the error that says
    what to do: wait, give up, try again) but not made into a ``Message`` — nothing reads the
    message sent back, and parsing it (the chat, the sender, every button) cost about 40 µs
    of CPU per reply here (docs/benchmarks.md, "Updates per second")."""

    __returning__ = dict[str, Any]


class EditReply(EditMessageText):
    """``editMessageText`` for a card turned in place, its answer checked as :class:`SendReply`'s."""

    __returning__ = dict[str, Any] | bool


# What this adapter and the outbox's transport use, built now rather than by a resident's update.
models.build(Update, InlineKeyboardMarkup, InlineKeyboardButton, BotCommand, methods=(
    GetUpdates, SendMessage, EditMessageText, SendReply, EditReply, AnswerCallbackQuery, SendPhoto, SendDocument,
    GetFile, GetMe, SetMyCommands, SetWebhook, DeleteWebhook))

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CAPABILITIES = Capabilities(buttons=True, edit=True, text_limit=TEXT_LIMIT)
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # as a broadcast photo may be; larger ones are not fetched
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
NOTICE_LIMIT = 200  # answerCallbackQuery text
ACK_WAIT = 1.0  # seconds to wait for the updates in hand to commit before polling again
WEBHOOK_ACK_WAIT = 10.0  # seconds a webhook call waits for its update to commit before answering 503
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
T = TypeVar("T")
# The acknowledgement of the update being handled in this task (resolved once committed).
_ack: ContextVar[asyncio.Future[None] | None] = ContextVar("telegram_update_ack", default=None)

# What an update that is not text tells us it carries, for a friendly "text only" answer.
_ATTACHMENT_KINDS = (
    "sticker", "photo", "voice", "video", "video_note", "audio", "document",
    "animation", "contact", "location", "venue", "poll", "dice",
)


def keyboard(menu: Menu) -> InlineKeyboardMarkup:
    return _keyboard(tuple((o.label, o.action) for o in menu.options), max(1, menu.columns))


@lru_cache(maxsize=256)
def _keyboard(buttons: tuple[tuple[str, str], ...], columns: int) -> InlineKeyboardMarkup:
    # Built once for each set of buttons (the main menu is the same for nearly everyone); the
    # markup is only ever serialised, never changed.
    made = [InlineKeyboardButton(text=label, callback_data=action) for label, action in buttons]
    return InlineKeyboardMarkup(inline_keyboard=[made[i : i + columns] for i in range(0, len(made), columns)])


def _display_name(user: object) -> str | None:
    first = getattr(user, "first_name", None) or ""
    last = getattr(user, "last_name", None) or ""
    return f"{first} {last}".strip() or None


class TelegramChannel:
    """Receives updates by long polling or by its webhook, and answers through the Bot API."""

    capabilities = CAPABILITIES
    webhook_path = "/webhooks/telegram"

    def __init__(
        self,
        *,
        token: str,
        api_url: str,
        conversation: Conversation,
        catalog: Catalog,
        commands: Sequence[tuple[str, str]] = (),
        files_dir: Path | None = None,
        concurrency: int = 64,
        reply_patience: float = PATIENCE,
        backoff: tuple[float, float] = (1.0, 60.0),
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        ack_wait: float = WEBHOOK_ACK_WAIT,
        channel: str = CHANNEL,
        webhook_path: str | None = None,
        pace: RateLimiter | None = None,
    ) -> None:
        """``files_dir``: where a photo a user sends is downloaded for the engine
        (``Incoming.fetch_media``); without it photos stay unread attachments.
        ``concurrency``: chats answered at once; ``reply_patience``: how long one reply is
        retried; ``backoff``: pauses after a failed ``getUpdates`` or ``setWebhook``.
        ``webhook_url`` and ``webhook_secret`` together: receive by webhook (Telegram posts
        each update to the URL with the secret in ``X-Telegram-Bot-Api-Secret-Token``).
        ``channel``: the key of the channel account (bot) this is (``bot.accounts``), stored
        with its users' identities; ``webhook_path``: where this bot's webhook is served.
        ``pace``: the bot's rate limiter, shared with its outbox sender: every reply spends from
        it without waiting (a resident is waiting) and a 429 pauses it, so the outbox keeps the
        bot within its cap and replies go first."""
        if (webhook_url is None) != (webhook_secret is None):
            raise ValueError("a Telegram webhook needs both its URL and its secret")
        self.channel = channel
        self._pace = pace
        if webhook_path is not None:
            self.webhook_path = webhook_path
        self._webhook_url = webhook_url
        self._secret = webhook_secret.encode() if webhook_secret is not None else None
        self._ack_wait = ack_wait
        self.received = 0  # updates accepted by the webhook (for observers such as tests)
        session = JsonBodySession(api=TelegramAPIServer.from_base(api_url.rstrip("/")))
        self.bot = Bot(token, session=session, default=DefaultBotProperties(link_preview_is_disabled=True))
        self._conversation = conversation
        self._catalog = catalog
        self._commands = commands
        self._files_dir = files_dir
        self._patience = reply_patience
        self._backoff = backoff
        self.queues = ChatQueues(concurrency=concurrency)
        self._stopped = asyncio.Event()

    async def set_commands(self) -> None:
        """Register the command menu with Vietnamese descriptions (``setMyCommands``)."""
        t = self._catalog.translator(None)
        commands = [BotCommand(command=name, description=t(key)) for name, key in self._commands]
        await self.bot.set_my_commands(commands)

    @property
    def uses_webhook(self) -> bool:
        return self._webhook_url is not None

    async def run(self) -> None:
        """Receive until :meth:`stop`: by webhook if configured, else by long polling."""
        if self.uses_webhook:
            await self.run_webhook()
        else:
            await self.run_polling()

    async def run_webhook(self) -> None:
        """Register the webhook (``setWebhook`` with the secret; retried with backoff while
        Telegram cannot be reached), then wait for :meth:`stop`; the updates in hand are
        finished before it returns. Every replica registers the same URL: it is idempotent."""
        assert self._webhook_url is not None and self._secret is not None
        delay = self._backoff[0]
        while not self._stopped.is_set():
            try:
                await self.set_commands()
                await self.bot.set_webhook(self._webhook_url, secret_token=self._secret.decode(),
                                           allowed_updates=ALLOWED_UPDATES)
                log.info("Telegram webhook registered")
                break
            except TelegramAPIError as exc:
                log.warning("Telegram setWebhook failed (%s); retrying in %.1f s", type(exc).__name__, delay)
                await self._pause(delay)
                delay = min(delay * 2, self._backoff[1])
        await self._stopped.wait()
        await self.queues.drain()

    async def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> int:
        """One update posted by Telegram; an HTTP status. A missing or wrong secret is refused
        (403) before the body is read, a body that is not an update is 400; otherwise the
        update joins its chat's queue and the answer waits until it is committed (200) — after
        ``ack_wait`` it is 503 and Telegram posts it again; the handled-event table makes the
        repeat change nothing."""
        given = headers.get(SECRET_HEADER)
        if self._secret is None or given is None or not hmac.compare_digest(given.encode(), self._secret):
            log.warning("Telegram webhook refused: missing or wrong secret")
            return 403
        try:
            update = Update.model_validate(json.loads(body), context={"bot": self.bot})
        except (ValueError, ValidationError):
            return 400
        self.received += 1
        ack = self.feed(update)
        try:
            await asyncio.wait_for(asyncio.shield(ack), self._ack_wait)
        except TimeoutError:
            return 503
        return 200

    async def run_polling(self, *, polling_timeout: int = 30) -> None:
        """Long-poll until :meth:`stop`. Each update is handed to its chat's queue in order; the
        offset sent with the next ``getUpdates`` (which confirms everything before it) never
        passes an update that is not yet committed. While one is still in hand after
        ``ACK_WAIT`` (its chat's previous reply waits out a 429, say), polling goes on: what
        comes back again is already queued and skipped, new updates of other chats are handled.
        Errors back off and never end the loop."""
        await self.set_commands()
        with contextlib.suppress(TelegramAPIError):
            await self.bot.delete_webhook()  # getUpdates is refused while a webhook is set
        in_hand: dict[int, asyncio.Future[None]] = {}  # fetched, queued, not yet confirmed
        offset: int | None = None
        delay = self._backoff[0]
        stop = asyncio.create_task(self._stopped.wait())
        try:
            while not self._stopped.is_set():
                poll = asyncio.create_task(self.bot.get_updates(
                    offset=offset, timeout=polling_timeout, allowed_updates=ALLOWED_UPDATES,
                    request_timeout=polling_timeout + 30,
                ))
                done, _ = await asyncio.wait({poll, stop}, return_when=asyncio.FIRST_COMPLETED)
                if poll not in done:
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TelegramAPIError):
                        await poll
                    break
                try:
                    updates = poll.result()
                except TelegramAPIError as exc:
                    log.warning("Telegram getUpdates failed (%s); retrying in %.1f s", type(exc).__name__, delay)
                    await self._pause(delay)
                    delay = min(delay * 2, self._backoff[1])
                    continue
                delay = self._backoff[0]
                for update in updates:
                    if update.update_id not in in_hand:  # else fetched again while in hand
                        in_hand[update.update_id] = self.feed(update)
                waiting = [ack for ack in in_hand.values() if not ack.done()]
                if waiting:
                    await asyncio.wait(waiting, timeout=ACK_WAIT)
                offset = _confirmable(in_hand, offset)
        finally:
            stop.cancel()
            await self.queues.drain()
            offset = _confirmable(in_hand, offset)
            if offset is not None:
                await self._confirm(offset)

    def feed(self, update: Update) -> asyncio.Future[None]:
        """Queue one update behind its chat's earlier ones; the future resolves once its
        effects are committed (or it ended). Synchronous, so the order of calls is the order."""
        return self.queues.submit(_chat_of(update), lambda ack: self._process(update, ack))

    async def _process(self, update: Update, ack: asyncio.Future[None]) -> None:
        token = _ack.set(ack)
        try:
            # Straight to the handler of its kind. aiogram's Dispatcher would add nothing here
            # (the core routes; ``ChatQueues`` orders and logs a failure), and its middlewares,
            # observers and per-update log line cost about 0.2 ms of CPU per update here
            # (docs/benchmarks.md, "Updates per second").
            if update.message is not None:
                await self._on_message(update.message, update)
            elif update.callback_query is not None:
                await self._on_callback(update.callback_query, update)
            elif update.my_chat_member is not None:
                await self._on_membership(update.my_chat_member)
        finally:
            _ack.reset(token)

    async def _confirm(self, offset: int) -> None:
        """Tell Telegram the last batch is done, so a restart does not receive it again."""
        with contextlib.suppress(TelegramAPIError, asyncio.TimeoutError):
            await self.bot.get_updates(offset=offset, limit=1, timeout=0, request_timeout=10)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def stop(self) -> None:
        """Stop receiving; the updates in hand are finished first (``run_polling`` returns then)."""
        self._stopped.set()

    async def close(self) -> None:
        await self.queues.drain()
        await self.bot.session.close()

    # -- receiving ---------------------------------------------------------------------

    async def _on_message(self, message: Message, event_update: Update) -> None:
        user = message.from_user
        if user is None or user.is_bot or message.chat.type != "private":
            return  # group chats come with the leaders' work; bots are ignored
        attachment = None
        if message.text is None:
            attachment = next((k for k in _ATTACHMENT_KINDS if getattr(message, k, None)), "other")

        async def fetch() -> Path | None:
            return await self._download_photo(message, event_update.update_id)

        incoming = Incoming(
            channel=self.channel,
            external_id=str(user.id),
            display_name=_display_name(user),
            locale=user.language_code,
            text=message.text if message.text is not None else message.caption,
            attachment=attachment,
            update_id=str(event_update.update_id),
            event_id=str(event_update.update_id),
            fetch_media=fetch if message.photo and self._files_dir is not None else None,
        )
        replies = await self._conversation.handle(incoming, CAPABILITIES)
        acknowledge(_ack.get())
        await self.render(message.chat.id, replies, pressed=None)

    async def _download_photo(self, message: Message, update_id: int) -> Path | None:
        """The largest size of a photo, saved under the files folder — only when a step asks
        for it (an admin's broadcast photo)."""
        if self._files_dir is None or not message.photo:
            return None
        largest = message.photo[-1]
        if largest.file_size is not None and largest.file_size > PHOTO_MAX_BYTES:
            return None
        folder = self._files_dir / "in"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"tg-{secrets.token_urlsafe(12)}.jpg"
        try:
            await self.bot.download(largest.file_id, destination=path)
        except (TelegramAPIError, ClientError, TimeoutError, OSError) as exc:
            # The update is still handled, without the photo (the step says so).
            log.info("photo of update %s not downloaded: %s", update_id, type(exc).__name__)
            path.unlink(missing_ok=True)
            return None
        return path

    async def _on_callback(self, query: CallbackQuery, event_update: Update) -> None:
        message = query.message if isinstance(query.message, Message) else None
        if message is None or message.chat.type != "private":
            await self._answer(query, None)
            return
        incoming = Incoming(
            channel=self.channel,
            external_id=str(query.from_user.id),
            display_name=_display_name(query.from_user),
            locale=query.from_user.language_code,
            action=query.data or "",
            update_id=str(event_update.update_id),
            event_id=str(event_update.update_id),
        )
        replies = await self._conversation.handle(incoming, CAPABILITIES)
        acknowledge(_ack.get())
        # The button's spinner stops here, in this chat's turn: a later message of the same
        # resident cannot be answered before this press is.
        notices = [r for r in replies if isinstance(r, Notice)]
        await self._answer(query, notices[0].text if notices else None)
        await self.render(message.chat.id, [r for r in replies if not isinstance(r, Notice)],
                          pressed=message.message_id)

    async def _answer(self, query: CallbackQuery, text: str | None) -> None:
        try:
            await query.answer(text=text[:NOTICE_LIMIT] if text else None)
        except TelegramAPIError as exc:  # too old (Telegram allows ~15 s), or answered already
            log.info("answerCallbackQuery failed: %s", type(exc).__name__)

    async def _on_membership(self, update: ChatMemberUpdated) -> None:
        """In a private chat this arrives only when the user blocks or unblocks the bot."""
        if update.chat.type != "private":
            return
        blocked = update.new_chat_member.status == "kicked"
        await self._conversation.set_blocked(self.channel, str(update.from_user.id), blocked=blocked)

    # -- sending -----------------------------------------------------------------------

    async def render(self, chat_id: int, replies: Sequence[Reply], *, pressed: int | None) -> None:
        """Send the replies in order. Only the first reply may replace the pressed message."""
        for index, reply in enumerate(replies):
            edit_target = pressed if index == 0 and getattr(reply, "replace", False) else None
            try:
                await self._send(chat_id, reply, edit_target)
            except TelegramForbiddenError:
                log.info("chat %s blocked the bot; reply dropped", chat_id)
                return
            except TelegramAPIError as exc:
                # Refused for good (400…) or still failing after every retry: the rest would be
                # out of context.
                log.error("a reply to chat %s was not delivered: %s", chat_id, exc)
                return

    async def _send(self, chat_id: int, reply: Reply, edit_target: int | None) -> None:
        if isinstance(reply, Notice):
            reply = Text(reply.text)  # a notice without a pressed button: a plain line
        if isinstance(reply, Text | Menu):
            markup = keyboard(reply) if isinstance(reply, Menu) else None
            pieces = split_text(reply.text, TEXT_LIMIT)
            if edit_target is not None and len(pieces) == 1:
                try:
                    await self._call(lambda: self.bot(EditReply(
                        text=pieces[0], chat_id=chat_id, message_id=edit_target, reply_markup=markup)))
                    return
                except TelegramBadRequest as exc:
                    if "not modified" in exc.message:
                        return
                    # Too old to edit, or deleted: a new message says the same.
                    log.debug("edit failed (%s); sending instead", exc.message)
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                await self._call(lambda piece=piece, last=last: self.bot(SendReply(
                    chat_id=chat_id, text=piece, reply_markup=markup if last else None)))
        elif isinstance(reply, Image):
            caption = reply.caption[:CAPTION_LIMIT] or None
            await self._call(lambda: self.bot.send_photo(chat_id, FSInputFile(reply.path), caption=caption))
        elif isinstance(reply, Document):
            caption = reply.caption[:CAPTION_LIMIT] or None
            await self._call(lambda: self.bot.send_document(chat_id, FSInputFile(reply.path), caption=caption))

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        """One Bot API call, sent again after a 429's ``retry_after`` and, a few times with
        growing pauses, after a 5xx or a network error — within ``reply_patience`` seconds.
        Each call is spent from the bot's pace; a 429 pauses its outbox too."""
        pace = self._pace

        def pause_for(exc: Exception) -> Pause | None:
            pause = _pause_for(exc)
            if pace is not None and pause is not None and not pause.transient:
                pace.pause(pause.seconds)
            return pause

        if pace is not None:
            pace.spend()
        return await send_patiently(request, pause_for=pause_for, patience=self._patience)


def _pause_for(exc: Exception) -> Pause | None:
    if isinstance(exc, TelegramRetryAfter):
        return Pause(float(exc.retry_after))
    if isinstance(exc, TelegramServerError | TelegramNetworkError):
        return Pause(1.0, transient=True)
    return None


def _confirmable(in_hand: dict[int, asyncio.Future[None]], offset: int | None) -> int | None:
    """The next offset: just past the committed updates that come before the first one still
    in hand (which are then forgotten)."""
    for update_id in sorted(in_hand):
        if not in_hand[update_id].done():
            return update_id
        del in_hand[update_id]
        offset = update_id + 1
    return offset


def _chat_of(update: Update) -> Hashable:
    """Whose queue an update joins: the user it comes from (else its own id: no order)."""
    for event in (update.message, update.callback_query, update.my_chat_member):
        user = getattr(event, "from_user", None)
        if user is not None:
            return user.id
    return ("update", update.update_id)
