"""Telegram as an outbox transport: one ``deliver`` call, Bot API answers mapped to outcomes."""

from __future__ import annotations

import asyncio

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
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


class TelegramTransport:
    """Options are always inline buttons here: a press is the choice, so a proactive message's
    options never need words to type (``OutboundMessage.numbered`` does not apply)."""

    channel = CHANNEL
    capabilities = CAPABILITIES

    def __init__(self, bot: Bot, *, pacing: Pacing, channel: str = CHANNEL) -> None:
        self.channel = channel  # the channel account (bot) whose outbox rows this sends
        self.bot = bot
        self.pacing = pacing

    async def deliver(self, recipient: Recipient, message: OutboundMessage) -> Delivery:
        chat_id = int(recipient.external_id)
        markup = keyboard(Menu(message.text, message.options)) if message.options else None
        try:
            if message.image:
                # The text is the caption (one message), else it follows the photo, with the
                # buttons: ``OutboundMessage.caption``, as on every channel.
                caption = message.caption
                await self.bot.send_photo(chat_id, FSInputFile(message.image), caption=caption or None,
                                          request_timeout=REQUEST_TIMEOUT)
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
        except TelegramRetryAfter as exc:
            return Delivery(Result.RETRY_AFTER, retry_after=float(exc.retry_after), reason="429")
        except TelegramForbiddenError as exc:
            return Delivery(Result.BLOCKED, reason=exc.message)
        except (TelegramServerError, TelegramNetworkError, asyncio.TimeoutError, OSError) as exc:
            return Delivery(Result.TRANSIENT, reason=getattr(exc, "message", type(exc).__name__))
        except TelegramAPIError as exc:  # 400 chat not found, too long, …: retrying won't help
            return Delivery(Result.FAILED, reason=exc.message)
        except FileNotFoundError as exc:
            return Delivery(Result.FAILED, reason=f"không tìm thấy tệp: {exc.filename}")
