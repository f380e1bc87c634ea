"""End to end over Telegram: the real aiogram adapter polls a fake Bot API server on
127.0.0.1 (tests/fakes/telegram_api.py) and a resident goes through the whole journey."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.app import App
from storage.models import Identity, LessonProgress, Person, ProgressStatus, ResidentGroup
from tests.contract.drivers import Handled, telegram_server
from tests.fakes.telegram_api import FakeTelegram

USER = 424242


async def _blocked(app: App) -> bool:
    async with app.sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.channel == "telegram"))).one()
    return identity.blocked_at is not None


class Resident:
    """Drives one Telegram user: type, press a button by its label, and wait until the
    adapter has finished handling that update (no timing guess)."""

    def __init__(self, tg: FakeTelegram, handled: Handled, user_id: int = USER) -> None:
        self.tg, self.handled, self.user_id = tg, handled, user_id

    async def settle(self, update_id: int) -> None:
        await self.handled.wait(update_id)

    async def send(self, text: str, **user: str) -> None:
        await self.settle(self.tg.push_text(self.user_id, text, **user))

    async def press(self, label: str) -> None:
        matches = [data for text, data in self.tg.buttons(self.user_id) if label in text]
        assert len(matches) == 1, f"{label!r} among {self.tg.buttons(self.user_id)}"
        await self.settle(self.tg.push_callback(self.user_id, matches[0]))

    @property
    def last(self) -> str:
        message = self.tg.last_message(self.user_id)
        assert message is not None
        return message.text


@pytest.fixture
async def telegram(ward: App) -> AsyncIterator[tuple[FakeTelegram, Handled]]:
    async with telegram_server(ward) as server:
        yield server


async def test_the_whole_journey_over_telegram(ward: App, telegram: tuple[FakeTelegram, Handled]) -> None:
    tg, handled = telegram
    lesson = ward.lessons.first
    # The command menu is registered with Vietnamese descriptions.
    [commands] = tg.commands.values()
    described = {c["command"]: c["description"] for c in commands}
    assert described["tiendo"] == "Xem tiến độ học của tôi" and "xoadulieu" in described

    lan = Resident(tg, handled)
    await lan.send("/start g_DEMO-TDP03", first_name="Lan", last_name="Nguyễn")
    assert "Bạn có đồng ý không?" in lan.last
    await lan.press("Đồng ý")
    assert "Lan Nguyễn" in lan.last
    await lan.press("Đúng rồi")
    assert "Tổ dân phố 3, Phường Mẫu" in lan.last
    await lan.press("Đúng rồi")
    await lan.press("Học tiếp")
    card_message = tg.last_message(USER)
    assert card_message is not None and lesson.cards[0].text in card_message.text
    for number in range(1, len(lesson.cards)):
        await lan.press("Tiếp")
        assert lesson.cards[number].text in lan.last
    # The cards were turned in place: one message, edited.
    assert tg.last_message(USER).message_id == card_message.message_id
    assert len(tg.calls_to("editMessageText")) == len(lesson.cards) - 1
    await lan.press("Làm bài kiểm tra")
    for question in lesson.quiz.questions:
        assert question.text in lan.last
        await lan.press(question.options[question.answer_index])
        answered = [m for m in tg.chat(USER) if question.text in m.text and "Bạn chọn" in m.text]
        assert answered and "✅ Đúng rồi" in answered[-1].text and not any(answered[-1].buttons)
    assert "hoàn thành" in lan.last and "3/3" in lan.last
    await lan.send("/tiendo")
    assert f"1/{len(ward.lessons)}" in lan.last and "▓" in lan.last

    # Every pressed button was answered (the spinner stopped), every call succeeded.
    assert len(tg.answered_callbacks) == len(tg.calls_to("answerCallbackQuery")) > 10
    assert all(c.status == 200 for c in tg.calls), tg.dump_calls(50)

    async with ward.sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.channel == "telegram"))).one()
        assert identity.external_id == str(USER)
        person = await session.get(Person, identity.person_id)
        group = await session.get(ResidentGroup, person.group_id)
        [progress] = (await session.exec(select(LessonProgress))).all()
    assert (person.display_name, group.code) == ("Lan Nguyễn", "DEMO-TDP03")
    assert (progress.person_id, progress.lesson_id, progress.status, progress.score) == (
        person.id, lesson.id, ProgressStatus.COMPLETED, 3
    )


async def test_bad_input_over_telegram(ward: App, telegram: tuple[FakeTelegram, Handled]) -> None:
    tg, handled = telegram
    lan = Resident(tg, handled)
    await lan.send("/start")
    await lan.press("Đồng ý")
    await lan.press("Đúng rồi")
    await lan.press("Tổ dân phố 1")
    await lan.settle(tg.push_sticker(USER))
    assert "chỉ đọc được tin nhắn chữ" in lan.last
    await lan.settle(tg.push_voice(USER))
    assert "chỉ đọc được tin nhắn chữ" in lan.last
    await lan.send("x" * 5000)
    assert "chưa hiểu" in lan.last
    await lan.send("/khonglenh")
    assert "chưa biết lệnh này" in lan.last
    await lan.settle(tg.push_callback(USER, "ans:b01-binh-dan-hoc-vu-so:9:9:9", forged=True))
    assert "Nút này đã cũ" in lan.last
    await lan.settle(tg.push_my_chat_member(USER, status="kicked"))  # Lan blocks the bot…
    assert await _blocked(ward)
    await lan.settle(tg.push_my_chat_member(USER, status="member"))  # …and unblocks it
    assert not await _blocked(ward)
    await lan.send("/xoadulieu")
    await lan.press("Xóa dữ liệu")
    assert "Đã xóa" in lan.last
    await lan.send("chào")
    assert "Bạn có đồng ý không?" in lan.last
    assert all(c.status == 200 for c in tg.calls), tg.dump_calls(50)
    async with ward.sessions() as session:
        [person] = (await session.exec(select(Person))).all()
    assert person.deleted_at is not None and person.display_name is None


async def test_updates_the_bot_does_not_serve_are_left_alone(ward: App, telegram: tuple[FakeTelegram, Handled]) -> None:
    """Each update goes straight to the handler of its kind: a message in a group chat and one
    from another bot are passed over without an answer or an error, and the resident's next
    message is answered as usual."""
    tg, handled = telegram
    lan = Resident(tg, handled)
    await lan.send("/start")
    before = tg.sent_count(USER)
    group = {"id": -100123, "type": "supergroup", "title": "Tổ 3"}
    await lan.settle(tg.push_raw({"message": {"message_id": 2, "date": 0, "chat": group,
                                              "from": tg._user(USER), "text": "xin chào"}}))
    await lan.settle(tg.push_raw({"message": {"message_id": 3, "date": 0, "chat": tg._chat(USER),
                                              "from": {"id": 99, "is_bot": True, "first_name": "Bot"},
                                              "text": "xin chào"}}))
    assert tg.sent_count(USER) == before and tg.sent_count(-100123) == 0
    await lan.send("xin chào")
    assert tg.sent_count(USER) == before + 1 and "Bạn có đồng ý không?" in lan.last
    assert all(c.status == 200 for c in tg.calls), tg.dump_calls(50)


async def test_hocvuso_run_answers_on_telegram_and_stops_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The composition root as an operator starts it: `hocvuso run` with a token, in a process
    of its own (on a clock starting at START, see tests.clocked)."""
    import signal

    from tests.clocked import command, environment
    from tests.conftest import START

    async with FakeTelegram() as tg:
        env = environment(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
                          TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.url, LOG_LEVEL="INFO")
        process = await asyncio.create_subprocess_exec(
            *command(START, "run"), env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            # A long poll is recorded only when it returns; the command menu is set just before polling.
            await tg.wait_for(lambda t: t.commands and t.waiting_pollers, timeout=60)
            tg.push_text(USER, "/start")
            await tg.wait_for(lambda t: t.last_message(USER) is not None, timeout=30)
            assert "Bạn có đồng ý không?" in tg.last_message(USER).text
            assert tg.commands, "setMyCommands was called"
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert "long polling" in stdout.decode()
    assert tg.token not in stderr.decode() and tg.token not in stdout.decode()
