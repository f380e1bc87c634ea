"""Replies and the outbox share one bot's pace (issue 12 §2): every reply is sent at once and
spends from the bot's rate limiter, a reply refused with 429 is sent again (never dropped) and
pauses the bot's outbox too — so the outbox sends with what the replies leave, within the cap."""

from __future__ import annotations

import asyncio

from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.delivery.limiter import RateLimiter
from handlers import COMMANDS
from tests.fakes.telegram_api import FakeTelegram

USER = 424242


def test_a_spent_message_delays_the_messages_that_wait() -> None:
    now = [100.0]
    pace = RateLimiter(2.0, now=lambda: now[0])
    assert pace.ready_in() == 0.0
    for _ in range(3):
        pace.spend()  # three replies, none waited
    assert pace.ready_in() == 1.5  # the outbox's next message: (1 - (1 - 3)) / 2 s
    now[0] += 1.5
    assert pace.ready_in() == 0.0
    for _ in range(1000):
        pace.spend()  # a storm of replies runs the outbox's debt up to ten seconds, no further
    assert pace.ready_in() == (1 + 2.0 * 10) / 2.0


async def test_a_reply_refused_with_429_is_sent_again_and_pauses_the_outbox(ward: App) -> None:
    now = [5000.0]
    pace = RateLimiter(0.5, now=lambda: now[0])  # the clock stands still: what was spent shows
    async with FakeTelegram() as tg:
        tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
        channel = TelegramChannel(token=tg.token, api_url=tg.url, conversation=ward.conversation,
                                  catalog=ward.catalog, commands=COMMANDS, pace=pace)
        receiving = asyncio.create_task(channel.run())
        try:
            tg.push_text(USER, "/start g_DEMO-TDP03", first_name="Lan")
            await tg.wait_for(lambda t: t.last_message(USER) is not None, timeout=15)
            await tg.wait_idle(USER)
        finally:
            await channel.stop()
            await asyncio.wait_for(receiving, timeout=10)
            await channel.close()
    delivered = tg.chat(USER)
    assert delivered and "Bạn có đồng ý không?" in delivered[-1].text  # refused once, then sent
    assert pace.paused_for == 1.0  # the outbox waits out Telegram's "retry after" too
    assert pace.ready_in() == max(1.0, len(delivered) / 0.5)  # and what the replies spent
