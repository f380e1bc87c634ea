"""A proactive message never changes what a typed number means (issue 9 §3).

Through the real sender, the Zalo Bot transport and adapter on the fake Bot Platform: a
resident in the middle of a quiz gets a reminder whose options are words to type, and her
"2" still answers the quiz; a resident resting at the menu gets them numbered, and "2" turns
reminders off. The state rules themselves (``storage.proactive``) run on both databases.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import select

from bot.app import App
from bot.channels.zalo import ZaloBotClient, ZaloBotTransport
from bot.delivery.sender import Sender
from bot.delivery.transport import Pacing
from bot.reminders import reminder_message
from storage import outbox, proactive
from storage.models import ConversationState, Identity, OutboxStatus, Person, QuizAnswer
from tests.contract.drivers import ZaloDriver, numbered_options, zalo_server
from tests.contract.journeys import join_group
from tests.delivery.helpers import NO_QUIET, seed_residents
from tests.fakes.zalo_bot_api import FakeZaloBot
from tests.support import ManualClock

USER = "0000000000000000abcd"
REMINDER_OPTIONS = [["📖 Học tiếp", "next", []], ["🔕 Tắt nhắc nhở", "reminders:off", []]]


async def _mine(app: App) -> tuple[Identity, Person, ConversationState]:
    async with app.sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == USER))).one()
        person = await session.get(Person, identity.person_id)
        state = (await session.exec(select(ConversationState).where(
            ConversationState.identity_id == identity.id))).one()
    assert person is not None
    return identity, person, state


async def _remind(app: App, zalo: FakeZaloBot, clock: ManualClock) -> str:
    """Queue today's reminder for the resident and let the real sender deliver it over Zalo;
    returns the text she received."""
    identity, person, _ = await _mine(app)
    assert identity.id is not None
    message = reminder_message(app.catalog, name=person.display_name, locale=person.locale, title=app.lessons.first.title)
    async with app.sessions() as session, session.begin():
        await outbox.enqueue(session, [outbox.outbox_row(
            kind="reminder", identity_id=identity.id, channel="zalo", payload=message.to_payload(),
            due_at=clock.now(), dedupe_key="reminder:test", now=clock.now())])
    client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
    transport = ZaloBotTransport(client=client, catalog=app.catalog, pacing=Pacing(50, per_chat_interval=0))
    sender = Sender(sessions=app.sessions, transport=transport, clock=clock, quiet=NO_QUIET, idle_seconds=0.05)
    task = asyncio.create_task(sender.run())
    try:
        async def sent() -> None:
            while True:
                async with app.sessions() as session:
                    [row] = await outbox.rows_of(session, kind="reminder")
                if row.status == OutboxStatus.SENT:
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(sent(), 10)
    finally:
        sender.stop()
        await task
        await client.close()
    return zalo.last_text(USER)


async def test_mid_quiz_a_reminder_leaves_the_typed_number_to_the_quiz(ward: App, clock: ManualClock) -> None:
    lesson = ward.lessons.first
    question = lesson.quiz.questions[0]
    async with zalo_server(ward) as (zalo, bot):
        lan = ZaloDriver(zalo, bot, USER, "Lan Nguyễn")
        await join_group(lan)
        await lan.choose("Học tiếp")
        for _ in range(len(lesson.cards) - 1):
            await lan.choose("Tiếp")
        await lan.choose("Làm bài kiểm tra")
        assert question.text in lan.last_text()
        clock.advance(minutes=30)  # she thinks for a long while: still in the quiz

        text = await _remind(ward, zalo, clock)
        assert numbered_options(text) == [] and "\n1. " not in text
        assert text.endswith("(Gõ «Học tiếp» hoặc «Tắt nhắc nhở» rồi gửi.)")
        _, _, state = await _mine(ward)
        assert state.step == "quiz" and state.menu is not None and state.menu["extra"] == REMINDER_OPTIONS
        assert [o[0] for o in state.menu["options"]] == list(question.options)

        await lan.send("b")  # the second answer, by its letter
        assert question.options[1] in lan.messages[-2]  # "Bạn chọn …", then the next question
        assert lesson.quiz.questions[1].text in lan.last_text()
    _, person, _ = await _mine(ward)
    async with ward.sessions() as session:
        answers = (await session.exec(select(QuizAnswer))).all()
    assert [(a.question_id, a.choice) for a in answers] == [(question.id, 1)]
    assert person.reminders_on is True


async def test_resting_at_the_menu_the_reminder_is_numbered_and_2_stops_reminders(
    ward: App, clock: ManualClock
) -> None:
    async with zalo_server(ward) as (zalo, bot):
        lan = ZaloDriver(zalo, bot, USER, "Lan Nguyễn")
        await join_group(lan)
        _, _, before = await _mine(ward)
        assert before.step == "menu"
        clock.advance(minutes=11)  # untouched for more than ten minutes: at rest

        text = await _remind(ward, zalo, clock)
        assert numbered_options(text) == ["📖 Học tiếp", "🔕 Tắt nhắc nhở"]
        _, _, state = await _mine(ward)
        assert state.menu is not None and state.menu["options"] == REMINDER_OPTIONS and "extra" not in state.menu
        assert state.version == before.version + 1

        await lan.send("2")
        assert "Đã tắt nhắc nhở" in lan.last_text()
    _, person, _ = await _mine(ward)
    assert person.reminders_on is False


async def test_just_active_at_the_menu_the_reminder_is_keywords(ward: App, clock: ManualClock) -> None:
    async with zalo_server(ward) as (zalo, bot):
        lan = ZaloDriver(zalo, bot, USER, "Lan Nguyễn")
        await join_group(lan)
        clock.advance(minutes=2)  # she is reading the menu right now: a "2" is meant for it
        text = await _remind(ward, zalo, clock)
    assert numbered_options(text) == [] and "«Tắt nhắc nhở»" in text


async def _state(app: App, identity: int) -> ConversationState:
    async with app.sessions() as session:
        return (await session.exec(select(ConversationState).where(ConversationState.identity_id == identity))).one()


async def test_options_become_pending_only_at_the_version_seen_at_rest(any_app: App, clock: ManualClock) -> None:
    app = any_app
    [identity] = await seed_residents(app.sessions, 1, now=clock.now())
    quiz_menu = {"options": [["A", "ans:x:1:0:0", []], ["B", "ans:x:1:0:1", []]], "last": "quiz:x"}
    async with app.sessions() as session, session.begin():
        session.add(ConversationState(identity_id=identity, step="menu", data={"k": 1}, menu=quiz_menu, version=4,
                                      updated_at=clock.now() - timedelta(minutes=11)))

    async def offer(options: list[list[object]], pending_at: int | None) -> bool:
        async with app.sessions() as session, session.begin():
            return await proactive.offer_options(session, identity_id=identity, options=options,
                                                 pending_at=pending_at, pending_step="menu")

    async with app.sessions() as session, session.begin():
        seen = await proactive.resting_version(session, identity_id=identity, now=clock.now(),
                                               steps={"menu", "new"}, rest=timedelta(minutes=10))
        assert seen == 4
        assert await proactive.resting_version(session, identity_id=identity, now=clock.now(), steps={"menu"},
                                               rest=timedelta(minutes=20)) is None  # not long enough

    # The resident moved on after the message was numbered: it joins as extra, nothing else moves.
    assert not await offer([["📖 Học tiếp", "next", []]], pending_at=3)
    state = await _state(app, identity)
    assert (state.step, state.data, state.version) == ("menu", {"k": 1}, 4)
    assert state.menu == {**quiz_menu, "extra": [["📖 Học tiếp", "next", []]]}
    # A later proactive message on a buttons channel replaces the older extras.
    assert not await offer(REMINDER_OPTIONS, pending_at=None)
    assert (await _state(app, identity)).menu == {**quiz_menu, "extra": REMINDER_OPTIONS}
    # Numbered, and the state still where it was seen at rest: they are the pending menu.
    assert await offer(REMINDER_OPTIONS, pending_at=4)
    state = await _state(app, identity)
    assert (state.step, state.data, state.version) == ("menu", {"k": 1}, 5)
    assert state.menu == {"options": REMINDER_OPTIONS, "last": "quiz:x"}
