"""Telegram on aiogram 3: updates → ``Incoming``, ``Reply`` → Bot API calls.

Menus become inline keyboards whose ``callback_data`` is the option's action (≤ 64 bytes,
checked by the core). A reply marked ``replace`` edits the message whose button was just
pressed (a lesson card turned in place). Long text is split at 4,096 characters.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
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

from bot.core.conversation import Conversation
from bot.core.i18n import Catalog
from bot.core.messages import Capabilities, Document, Image, Incoming, Menu, Reply, Text
from bot.core.text import split_text

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CAPABILITIES = Capabilities(buttons=True, edit=True, text_limit=TEXT_LIMIT)
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # as a broadcast photo may be; larger ones are not fetched

# What an update that is not text tells us it carries, for a friendly "text only" answer.
_ATTACHMENT_KINDS = (
    "sticker", "photo", "voice", "video", "video_note", "audio", "document",
    "animation", "contact", "location", "venue", "poll", "dice",
)


def keyboard(menu: Menu) -> InlineKeyboardMarkup:
    columns = max(1, menu.columns)
    buttons = [InlineKeyboardButton(text=o.label, callback_data=o.action) for o in menu.options]
    rows = [buttons[i : i + columns] for i in range(0, len(buttons), columns)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _display_name(user: object) -> str | None:
    first = getattr(user, "first_name", None) or ""
    last = getattr(user, "last_name", None) or ""
    return f"{first} {last}".strip() or None


class TelegramChannel:
    """Receives updates by long polling and answers through the Bot API."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        token: str,
        api_url: str,
        conversation: Conversation,
        catalog: Catalog,
        commands: Sequence[tuple[str, str]] = (),
        files_dir: Path | None = None,
    ) -> None:
        """``files_dir``: where a photo a user sends is downloaded for the engine
        (``Incoming.fetch_media``); without it photos stay unread attachments."""
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")))
        self.bot = Bot(token, session=session, default=DefaultBotProperties(link_preview_is_disabled=True))
        self._conversation = conversation
        self._catalog = catalog
        self._commands = commands
        self._files_dir = files_dir
        self.dispatcher = Dispatcher()
        self.dispatcher.message.register(self._on_message)
        self.dispatcher.callback_query.register(self._on_callback)
        self.dispatcher.my_chat_member.register(self._on_membership)

    async def set_commands(self) -> None:
        """Register the command menu with Vietnamese descriptions (``setMyCommands``)."""
        t = self._catalog.translator(None)
        commands = [BotCommand(command=name, description=t(key)) for name, key in self._commands]
        await self.bot.set_my_commands(commands)

    async def run_polling(self, *, polling_timeout: int = 30, handle_signals: bool = True) -> None:
        await self.set_commands()
        await self.dispatcher.start_polling(
            self.bot,
            polling_timeout=polling_timeout,
            handle_signals=handle_signals,
            allowed_updates=["message", "callback_query", "my_chat_member"],
        )

    async def stop(self) -> None:
        try:
            await self.dispatcher.stop_polling()
        except RuntimeError:
            pass  # polling had not started (or already stopped)

    async def close(self) -> None:
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
            channel=CHANNEL,
            external_id=str(user.id),
            display_name=_display_name(user),
            locale=user.language_code,
            text=message.text if message.text is not None else message.caption,
            attachment=attachment,
            update_id=str(event_update.update_id),
            fetch_media=fetch if message.photo and self._files_dir is not None else None,
        )
        replies = await self._conversation.handle(incoming, CAPABILITIES)
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
        # Answer first: the spinner on the button stops at once, whatever follows.
        try:
            await query.answer()
        except TelegramAPIError as exc:
            log.info("answerCallbackQuery failed for update %s: %s", event_update.update_id, exc)
        message = query.message if isinstance(query.message, Message) else None
        if message is None or message.chat.type != "private":
            return
        incoming = Incoming(
            channel=CHANNEL,
            external_id=str(query.from_user.id),
            display_name=_display_name(query.from_user),
            locale=query.from_user.language_code,
            action=query.data or "",
            update_id=str(event_update.update_id),
        )
        replies = await self._conversation.handle(incoming, CAPABILITIES)
        await self.render(message.chat.id, replies, pressed=message.message_id)

    async def _on_membership(self, update: ChatMemberUpdated) -> None:
        """In a private chat this arrives only when the user blocks or unblocks the bot."""
        if update.chat.type != "private":
            return
        blocked = update.new_chat_member.status == "kicked"
        await self._conversation.set_blocked(CHANNEL, str(update.from_user.id), blocked=blocked)

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

    async def _send(self, chat_id: int, reply: Reply, edit_target: int | None) -> None:
        if isinstance(reply, Text | Menu):
            markup = keyboard(reply) if isinstance(reply, Menu) else None
            pieces = split_text(reply.text, TEXT_LIMIT)
            if edit_target is not None and len(pieces) == 1:
                try:
                    await self.bot.edit_message_text(
                        text=pieces[0], chat_id=chat_id, message_id=edit_target, reply_markup=markup
                    )
                    return
                except TelegramBadRequest as exc:
                    if "not modified" in exc.message:
                        return
                    # Too old to edit, or deleted: a new message says the same.
                    log.debug("edit failed (%s); sending instead", exc.message)
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                await self.bot.send_message(chat_id, piece, reply_markup=markup if last else None)
        elif isinstance(reply, Image):
            await self.bot.send_photo(chat_id, FSInputFile(reply.path), caption=reply.caption[:CAPTION_LIMIT] or None)
        elif isinstance(reply, Document):
            await self.bot.send_document(
                chat_id, FSInputFile(reply.path), caption=reply.caption[:CAPTION_LIMIT] or None
            )
