"""Quiet hours are kept when sending, not frozen into ``due_at`` when planning: a broadcast
queued at 06:15 inside a 05:00–07:00 window goes out when the window ends — or when a
changed window ends — and the chat, the command line's service and the delivery report all
name the same expected time (``QuietHours.expected``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from bot.app import App
from bot.broadcasting import format_report, schedule, views
from bot.delivery.quiet import QuietHours
from storage.models import Broadcast, Outbox
from storage.outbox import delivery_report
from tests.delivery.helpers import telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.staff import make_admin, rows
from tests.support import Chat, ManualClock, join

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
WINDOW = QuietHours(ZONE, time(5), time(7))
RESIDENTS = (7101, 7102)
ADMIN = 9000
EVERYONE = (*RESIDENTS, ADMIN)  # the admin lives in the ward too: "everyone" includes her


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def _queued_at_06_15(ward: App, clock: ManualClock) -> Chat:
    """Two residents and an admin who sends a broadcast "now" at 06:15 in a 05:00–07:00 window."""
    ward.conversation.services = replace(ward.conversation.services, quiet=WINDOW)
    for user in RESIDENTS:
        await join(Chat(ward.conversation, channel="telegram", user=str(user), name=f"Cư dân {user}"))
    admin = Chat(ward.conversation, channel="telegram", user=str(ADMIN), name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    clock._now = local(24, 6, 15)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send("Sáng nay 8 giờ họp tổ.")
    await admin.press("Không cần nút")
    await admin.press("Tất cả người dân")
    await admin.press("Đồng ý, gửi")
    await admin.press("Gửi ngay")
    return admin


def _received(tg: FakeTelegram) -> list[int]:
    return [tg.sent_count(user) for user in EVERYONE]


async def test_queued_in_the_window_it_goes_out_when_the_window_ends(ward: App, clock: ManualClock) -> None:
    admin = await _queued_at_06_15(ward, clock)
    assert "bắt đầu gửi lúc 07:00 24/11/2026" in admin.last_text  # the chat
    await admin.press("Kết quả gửi")
    # The delivery report in the chat: the real start, and why it is not the time chosen.
    assert ("⏳ Chờ gửi: bắt đầu gửi lúc 07:00 24/11/2026, cho 3 người (hẹn 06:15 24/11/2026, đang trong giờ "
            "nghỉ nên gửi khi hết giờ nghỉ)") in admin.last_text
    [broadcast] = await rows(ward, Broadcast)
    async with ward.sessions() as session, session.begin():
        report = await delivery_report(session, broadcast_id=broadcast.id)  # type: ignore[arg-type]
        [view] = await views(session, [broadcast], t=ward.catalog.translator(None), lessons=ward.lessons,
                             quiet=WINDOW, now=clock.now())
        status = format_report(ward.catalog, view, report, zone=ZONE)
        # What the command line's `broadcast send` announces for the same request.
        cli = await schedule(session, author="cli", text="Sáng nay 8 giờ họp tổ.", audience_text="all",
                             lesson_ids=set(), now=clock.now(), quiet=WINDOW, catalog=ward.catalog)
    assert "bắt đầu gửi lúc 07:00 24/11/2026" in status  # `broadcast status`
    assert cli.sends_at == local(24, 7)
    assert {r.due_at for r in await rows(ward, Outbox)} == {local(24, 6, 15)}  # the intended time, not frozen

    async with FakeTelegram() as tg:
        for user in EVERYONE:
            tg.add_user(user)
        sender = telegram_sender(ward.sessions, tg, clock=clock, quiet=WINDOW)
        task = asyncio.create_task(sender.run())
        try:
            clock._now = local(24, 6, 59)
            rounds = sender.rounds
            while sender.rounds < rounds + 3:
                sender.wake()
                await asyncio.sleep(0.01)
            assert _received(tg) == [0, 0, 0]
            clock._now = local(24, 7)
            sender.wake()
            await tg.wait_for(lambda t: _received(t) == [1, 1, 1])
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()


async def test_a_changed_window_applies_to_what_is_already_queued(ward: App, clock: ManualClock) -> None:
    await _queued_at_06_15(ward, clock)
    shorter = QuietHours(ZONE, time(5), time(6, 30))  # the ward shortened its quiet hours
    clock._now = local(24, 6, 40)
    async with FakeTelegram() as tg:
        for user in EVERYONE:
            tg.add_user(user)
        sender = telegram_sender(ward.sessions, tg, clock=clock, quiet=shorter)
        task = asyncio.create_task(sender.run())
        try:
            await tg.wait_for(lambda t: _received(t) == [1, 1, 1])
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
    assert _received(tg) == [1, 1, 1]


async def test_a_link_confirmation_goes_out_at_night_news_waits(ward: App, clock: ManualClock) -> None:
    """The owner confirming a /lienket code (alive 10 minutes) is answering something she did
    a moment ago: it is sent in the quiet hours; a broadcast queued at the same time waits."""
    from storage.outbox import enqueue, outbox_row
    from tests.delivery.helpers import seed_residents

    night = local(24, 22, 30)
    clock._now = night
    first, second = await seed_residents(ward.sessions, 2, now=night)
    async with ward.sessions() as session, session.begin():
        await enqueue(session, [
            outbox_row(kind="link_confirm", identity_id=first, channel="telegram", payload={"text": "Đó có phải bạn?"},
                       due_at=night, dedupe_key="night:link", now=night),
            outbox_row(kind="broadcast", identity_id=second, channel="telegram", payload={"text": "Tin sáng mai"},
                       due_at=night, dedupe_key="night:news", now=night),
        ])
    async with FakeTelegram() as tg:
        from tests.delivery.helpers import FIRST_USER

        tg.add_user(FIRST_USER)
        tg.add_user(FIRST_USER + 1)
        sender = telegram_sender(ward.sessions, tg, clock=clock, quiet=QuietHours(ZONE, time(21), time(7)))
        task = asyncio.create_task(sender.run())
        try:
            await tg.wait_for(lambda t: t.sent_count(FIRST_USER) == 1)
            rounds = sender.rounds
            while sender.rounds < rounds + 5:  # several more rounds: the news stays queued
                sender.wake()
                await asyncio.sleep(0)
            assert tg.sent_count(FIRST_USER + 1) == 0
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
    statuses = {r.kind: r.status for r in await rows(ward, Outbox)}
    assert statuses == {"link_confirm": "sent", "broadcast": "pending"}
