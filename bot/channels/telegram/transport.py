"""Telegram as an outbox transport: one ``deliver`` call, Bot API answers mapped to outcomes.

A broadcast's photo is uploaded once per bot: the first send uploads the file and Telegram
answers with its ``file_id``, which every later send of the same file passes instead of the
bytes (kept per transport — one per bot, as file ids are — by the file's path, size and
modification time, so a file changed in place is uploaded again). 100,000 residents cost one
upload, not 100,000 times the photo's size.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import FSInputFile

from bot.channels.telegram.adapter import CAPABILITIES, CHANNEL, TEXT_LIMIT, keyboard
from bot.core.messages import Menu
from bot.core.text import split_text
from bot.delivery.transport import SENT, Delivery, OutboundMessage, Pacing, Recipient, Result

REQUEST_TIMEOUT = 20  # seconds; a hung call is retried later rather than holding a slot
PHOTOS_KEPT = 256  # file ids remembered per bot (a few broadcast photos at a time)
FileKey = tuple[str, int, int]  # path, modification time (ns), size


class TelegramTransport:
    """Options are always inline buttons here: a press is the choice, so a proactive message's
    options never need words to type (``OutboundMessage.numbered`` does not apply)."""

    channel = CHANNEL
    capabilities = CAPABILITIES

    def __init__(self, bot: Bot, *, pacing: Pacing, channel: str = CHANNEL) -> None:
        self.channel = channel  # the channel account (bot) whose outbox rows this sends
        self.bot = bot
        self.pacing = pacing
        self._file_ids: OrderedDict[FileKey, str] = OrderedDict()
        self._uploading = asyncio.Lock()  # the first send of a file uploads it; the others wait for its file_id

    async def _send_photo(self, chat_id: int, image: str, caption: str | None) -> None:
        """Send the photo at ``image``: uploaded the first time, by its ``file_id`` after."""
        info = os.stat(image)
        key = (image, info.st_mtime_ns, info.st_size)
        if key not in self._file_ids:
            async with self._uploading:
                if key not in self._file_ids:
                    await self._upload(chat_id, image, key, caption)
                    return
        try:
            await self.bot.send_photo(chat_id, self._file_ids[key], caption=caption, request_timeout=REQUEST_TIMEOUT)
        except TelegramBadRequest as exc:
            if "file" not in exc.message.lower():
                raise
            self._file_ids.pop(key, None)  # Telegram no longer knows it: upload again
            await self._upload(chat_id, image, key, caption)

    async def _upload(self, chat_id: int, image: str, key: FileKey, caption: str | None) -> None:
        sent = await self.bot.send_photo(chat_id, FSInputFile(image), caption=caption, request_timeout=REQUEST_TIMEOUT)
        if sent.photo:
            self._file_ids[key] = sent.photo[-1].file_id  # the largest size: the photo as sent
            while len(self._file_ids) > PHOTOS_KEPT:
                self._file_ids.popitem(last=False)

    async def deliver(self, recipient: Recipient, message: OutboundMessage) -> Delivery:
        chat_id = int(recipient.external_id)
        markup = keyboard(Menu(message.text, message.options)) if message.options else None
        try:
            if message.image:
                # The text is the caption (one message), else it follows the photo, with the
                # buttons: ``OutboundMessage.caption``, as on every channel.
                caption = message.caption
                await self._send_photo(chat_id, message.image, caption or None)
                if caption is not None:
                    return SENT
            pieces = split_text(message.text, TEXT_LIMIT)
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                await self.bot.send_message(
                    chat_id, piece, reply_markup=markup if last else None, request_timeout=REQUEST_TIMEOUT
                )
            for document in message.documents:  # after the text that says what they are
                await self.bot.send_document(chat_id, FSInputFile(document), request_timeout=REQUEST_TIMEOUT)
            return SENT
        except FileNotFoundError as exc:  # before OSError: a missing file will not come back
            return Delivery(Result.FAILED, reason=f"không tìm thấy tệp: {exc.filename}")
        except TelegramRetryAfter as exc:
            return Delivery(Result.RETRY_AFTER, retry_after=float(exc.retry_after), reason="429")
        except TelegramForbiddenError as exc:
            return Delivery(Result.BLOCKED, reason=exc.message)
        except (TelegramServerError, TelegramNetworkError, asyncio.TimeoutError, OSError) as exc:
            return Delivery(Result.TRANSIENT, reason=getattr(exc, "message", type(exc).__name__))
        except TelegramAPIError as exc:  # 400 chat not found, too long, …: retrying won't help
            return Delivery(Result.FAILED, reason=exc.message)
