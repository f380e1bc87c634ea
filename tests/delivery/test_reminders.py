"""Reminders with a controllable clock: who, when, at most one a day, the pause after three
unanswered, /nhacnho, /dung, /batdau — and the reminder's button continues the lesson."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.app import App
from bot.delivery.quiet import QuietHours
from bot.reminders import ReminderPolicy, plan_reminders, record_reminder_sent
from storage.models import Outbox, Person
from tests.delivery.helpers import telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.support import Chat, ManualClock, join

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = QuietHours(ZONE, time(21), time(7))
POLICY = ReminderPolicy(zone=ZONE, inactive_days=2, max_unanswered=3)
USER = 5150


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def _plan(app: App, clock: ManualClock) -> int:
    return await plan_reminders(app.sessions, now=clock.now(), policy=POLICY, lessons=app.lessons, catalog=app.catalog)


async def _reminders(app: App) -> list[Outbox]:
    async with app.sessions() as session:
        return list((await session.exec(select(Outbox).where(Outbox.kind == "reminder"))).all())


async def _mark_all_sent(app: App, clock: ManualClock) -> None:
    """What the sender does after a reminder went out (tested with the real sender below)."""
    from storage import outbox

    async with app.sessions() as session, session.begin():
        for row in await outbox.claim_due(session, channel="telegram", now=clock.now(),
                                          lease_until=clock.now() + timedelta(minutes=1), limit=100):
            await outbox.mark_sent(session, outbox_id=row.id, claim=row.claim, now=clock.now())
            await record_reminder_sent(session, row, clock.now(), policy=POLICY)


async def _learner(ward: App, clock: ManualClock) -> Chat:
    chat = Chat(ward.conversation, channel="telegram", user=str(USER))
    await join(chat)
    await chat.action(f"lesson:{ward.lessons.first.id}")  # a lesson left unfinished on Monday 10:00
    return chat


async def test_who_gets_reminded_and_when(ward: App, clock: ManualClock) -> None:
    chat = await _learner(ward, clock)
    other = Chat(ward.conversation, channel="telegram", user="999")
    await join(other)  # joined but never started a lesson: nothing to remind of

    clock._now = local(24, 19)  # Tuesday 19:00: inactive for 1.4 days only
    assert await _plan(ward, clock) == 0
    clock._now = local(25, 18, 59)  # Wednesday, a minute before the hour
    assert await _plan(ward, clock) == 0
    clock._now = local(25, 19)
    assert await _plan(ward, clock) == 1
    assert await _plan(ward, clock) == 0  # planned again the same day: still one
    clock._now = local(25, 20, 30)
    assert await _plan(ward, clock) == 0
    [row] = await _reminders(ward)
    assert row.due_at == local(25, 19) and row.payload["options"][0] == ["📖 Học tiếp", "next"]
    assert "Bình dân học vụ số" in row.payload["text"]
    assert chat.user == (await _identity_external(ward, row.identity_id))


async def _identity_external(app: App, identity_id: int) -> str:
    from storage.models import Identity

    async with app.sessions() as session:
        return (await session.get(Identity, identity_id)).external_id  # type: ignore[union-attr]


async def test_at_most_one_a_day_and_a_pause_after_three_unanswered(ward: App, clock: ManualClock) -> None:
    chat = await _learner(ward, clock)
    sent_days = []
    for day in range(25, 31):  # Wednesday to Monday, each evening at 19:05
        clock._now = local(day, 19, 5)
        for _ in range(3):
            await _plan(ward, clock)
        await _mark_all_sent(ward, clock)
        sent_days = sorted({r.due_at.astimezone(ZONE).day for r in await _reminders(ward)})
    assert sent_days == [25, 26, 27]  # three reminders, then a pause
    async with ward.sessions() as session:
        person = (await session.exec(select(Person).where(Person.display_name == "Lan Nguyễn"))).one()
    assert person.reminders_unanswered == 3

    clock._now = local(30, 20)
    await chat.send("/hoc")  # the resident comes back...
    clock._now = datetime(2026, 12, 2, 19, 30, tzinfo=ZONE).astimezone(UTC)  # 47.5 hours later
    assert await _plan(ward, clock) == 0
    clock._now = datetime(2026, 12, 2, 20, 5, tzinfo=ZONE).astimezone(UTC)  # inactive two days again
    assert await _plan(ward, clock) == 1  # the reminders resume


async def test_stop_resume_and_choose_the_hour(ward: App, clock: ManualClock) -> None:
    chat = await _learner(ward, clock)
    await chat.send("/dung")
    assert "Đã tắt nhắc nhở" in chat.last_text and "/batdau" in chat.last_text
    clock._now = local(25, 19)
    assert await _plan(ward, clock) == 0
    clock._now = local(23, 11)
    await chat.send("/batdau")
    assert "Đã bật lại nhắc nhở lúc 19:00" in chat.last_text
    await chat.send("/nhacnho")
    labels = [o.label for o in chat.menu.options]
    assert "✅ 19:00" in labels and not any(label.startswith(("21", "22", "06")) for label in labels)
    await chat.press("07:00")
    assert "07:00" in chat.last_text
    await chat.action("reminders:hour:23")  # forged: not an hour on offer
    assert "Nút này đã cũ" in chat.texts()
    clock._now = local(25, 19)
    assert await _plan(ward, clock) == 0
    clock._now = local(26, 7, 10)
    assert await _plan(ward, clock) == 1


async def test_the_real_sender_delivers_the_reminder_and_its_button_continues(ward: App, clock: ManualClock) -> None:
    chat = await _learner(ward, clock)
    clock._now = local(25, 19)
    assert await _plan(ward, clock) == 1
    async with FakeTelegram() as tg:
        tg.add_user(USER)
        sender = telegram_sender(ward.sessions, tg, clock=clock, quiet=QUIET,
                                 after_sent={"reminder": partial(record_reminder_sent, policy=POLICY)})
        task = asyncio.create_task(sender.run())
        try:
            await tg.wait_for(lambda t: t.sent_count(USER) == 1)
            assert tg.buttons(USER)[0] == ("📖 Học tiếp", "next")
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
    async with ward.sessions() as session:
        person = (await session.exec(select(Person))).one()
    assert person.reminders_unanswered == 1 and person.last_reminded_at == local(25, 19)
    await chat.action("next")  # the resident presses the reminder's button
    assert ward.lessons.first.cards[0].text in chat.last_text
    async with ward.sessions() as session:
        person = (await session.exec(select(Person))).one()
    assert person.reminders_unanswered == 0


async def test_a_late_planner_in_the_quiet_hours_waits_for_the_morning(ward: App, clock: ManualClock) -> None:
    chat = await _learner(ward, clock)
    await chat.send("/nhacnho")
    await chat.press("20:00")
    clock._now = local(25, 21, 30)  # the worker was down at 20:00 and came back at 21:30
    assert await _plan(ward, clock) == 1
    [row] = await _reminders(ward)
    assert row.due_at == local(25, 21, 30) and QUIET.expected(row.due_at, now=clock.now()) == local(26, 7)


async def test_the_planner_reads_only_the_hours_due_and_every_batch(ward: App, clock: ManualClock) -> None:
    """Seven learners, five at 19:00 and two at 08:00: at 19:05 the five are planned, in batches
    of two (the batches by id miss no one and take no one twice); at 10:00 — nobody's hour —
    the planner reads no one; after the wave, a tick plans nothing again."""
    from bot.reminders import due_hours

    learners = []
    for n in range(7):
        chat = Chat(ward.conversation, channel="telegram", user=str(USER + 100 + n))
        await join(chat)
        await chat.action(f"lesson:{ward.lessons.first.id}")
        learners.append(chat)
    async with ward.sessions() as session, session.begin():
        people = (await session.exec(select(Person).order_by(Person.id))).all()  # type: ignore[arg-type]
        for person in people[5:]:
            person.reminder_hour = 8
            session.add(person)
    assert due_hours(local(26, 19, 5).astimezone(ZONE), POLICY) == [18, 19]
    assert due_hours(local(26, 10).astimezone(ZONE), POLICY) == [9, 10]  # 08:00's window ended at 10:00

    async def plan(batch: int) -> int:
        return await plan_reminders(ward.sessions, now=clock.now(), policy=POLICY, lessons=ward.lessons,
                                    catalog=ward.catalog, batch=batch)

    clock._now = local(26, 10)
    assert await plan(2) == 0  # 08:00's catch-up is over, 19:00 not yet
    clock._now = local(26, 19, 5)
    assert await plan(2) == 5
    assert await plan(2) == 0  # queued today: not read again
    rows = await _reminders(ward)
    assert len(rows) == len({r.identity_id for r in rows}) == 5
    clock._now = local(27, 8, 30)
    assert await plan(2) == 2  # the next morning, the two at 08:00
