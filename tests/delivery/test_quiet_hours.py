"""Quiet hours: nothing proactive is sent between 21:00 and 07:00 local time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.app import App
from bot.delivery.quiet import QuietHours
from tests.delivery.helpers import FIRST_USER, queue_messages, seed_residents, telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.support import ManualClock

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = QuietHours(ZONE, time(21), time(7))


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


@pytest.mark.parametrize(
    ("moment", "quiet", "allowed"),
    [
        (local(23, 20, 59), False, local(23, 20, 59)),
        (local(23, 21, 0), True, local(24, 7, 0)),
        (local(23, 23, 30), True, local(24, 7, 0)),
        (local(24, 3, 0), True, local(24, 7, 0)),
        (local(24, 6, 59), True, local(24, 7, 0)),
        (local(24, 7, 0), False, local(24, 7, 0)),
    ],
)
def test_the_window_crosses_midnight(moment: datetime, quiet: bool, allowed: datetime) -> None:
    assert QUIET.contains(moment) is quiet
    assert QUIET.next_allowed(moment) == allowed


def test_a_daytime_window_and_no_window() -> None:
    lunch = QuietHours(ZONE, time(12), time(13, 30))
    assert lunch.contains(local(23, 12, 45)) and not lunch.contains(local(23, 13, 30))
    assert lunch.next_allowed(local(23, 12, 45)) == local(23, 13, 30)
    none = QuietHours(ZONE, time(0), time(0))
    assert not none.contains(local(23, 3))


async def test_the_sender_waits_for_the_morning(app: App) -> None:
    clock = ManualClock(local(23, 21, 30))
    identities = await seed_residents(app.sessions, 2, now=clock.now())
    await queue_messages(app.sessions, identities, now=clock.now())  # due now, in the quiet hours
    async with FakeTelegram() as tg:
        for i in range(2):
            tg.add_user(FIRST_USER + i)
        sender = telegram_sender(app.sessions, tg, clock=clock, quiet=QUIET)
        task = asyncio.create_task(sender.run())
        try:
            while sender.rounds < 5:  # let it look several times
                sender.wake()
                await asyncio.sleep(0)
            assert tg.calls_to("sendMessage") == []
            clock.advance(hours=9, minutes=30)  # 07:00
            sender.wake()
            await tg.wait_for(lambda t: t.sent_count(FIRST_USER) == 1 and t.sent_count(FIRST_USER + 1) == 1)
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
