"""Elderly residents' ordinary habits, through the real aiogram adapter and the fake Bot API:
a button tapped twice in a row, an old button pressed late, a voice note where a name was
asked, declining and then accepting. Every step-bound action is honoured only where it was
offered; the database is checked after each journey (issue 9 §2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.app import App
from storage.models import ConversationState, Identity, Person, QuizAnswer, ResidentGroup
from tests.contract.drivers import Handled, telegram_server
from tests.fakes.telegram_api import FakeTelegram

USER = 515151
ALREADY = "Mình đã nhận lần bấm trước rồi"
STALE = "Nút này đã cũ"


@pytest.fixture
async def telegram(ward: App) -> AsyncIterator[tuple[FakeTelegram, Handled]]:
    async with telegram_server(ward) as server:
        yield server


class Lan:
    """Bà Lan on Telegram. ``tap`` presses a button of a given message (default: the latest
    with a keyboard) without waiting; ``settle`` waits until the adapter handled updates."""

    def __init__(self, tg: FakeTelegram, handled: Handled) -> None:
        self.tg, self.handled = tg, handled

    def button(self, label: str) -> tuple[int, str]:
        """(message id, callback data) of the newest message with a button labelled ``label``."""
        for message in reversed(self.tg.chat(USER)):
            for row in message.buttons:
                for text, data in row:
                    if label in text and data is not None:
                        return message.message_id, data
        raise AssertionError(f"no button {label!r}")

    def tap(self, label: str, *, message_id: int | None = None, data: str | None = None) -> int:
        found_id, found = self.button(label) if data is None else (message_id, data)
        return self.tg.push_callback(USER, found, message_id=message_id or found_id)

    async def settle(self, *update_ids: int) -> None:
        for update_id in update_ids:
            await self.handled.wait(update_id)

    async def send(self, text: str) -> None:
        await self.settle(self.tg.push_text(USER, text, first_name="Lan", last_name="Nguyễn"))

    async def press(self, label: str) -> None:
        await self.settle(self.tap(label))

    async def double_tap(self, label: str) -> None:
        """Two taps on the same button, arriving together (10 ms apart on a slow phone)."""
        message_id, data = self.button(label)
        await self.settle(self.tap(label, message_id=message_id, data=data),
                          self.tap(label, message_id=message_id, data=data))

    @property
    def last(self) -> str:
        message = self.tg.last_message(USER)
        assert message is not None
        return message.text

    def toasts(self) -> list[str]:
        return [p.get("text") or "" for p in self.tg.callback_answers.values()]


async def _joined(app: App) -> tuple[str | None, str | None, str | None]:
    """(name, group code, step) of Lan as the database has them."""
    person, group, state = await _person(app)
    return (person.display_name if person else None, group, state.step if state else None)


async def _person(app: App) -> tuple[Person | None, str | None, ConversationState | None]:
    async with app.sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == str(USER)))).first()
        if identity is None:
            return None, None, None
        person = await session.get(Person, identity.person_id) if identity.person_id else None
        group = await session.get(ResidentGroup, person.group_id) if person and person.group_id else None
        state = (await session.exec(select(ConversationState).where(ConversationState.identity_id == identity.id))).first()
    return person, group.code if group else None, state


async def test_consent_tapped_twice_asks_the_name_once_and_keeps_the_qr_group(
    ward: App, telegram: tuple[FakeTelegram, Handled]
) -> None:
    tg, handled = telegram
    lan = Lan(tg, handled)
    await lan.send("/start g_DEMO-TDP07")
    await lan.double_tap("Đồng ý")  # the second finds the name question offered
    assert sum("Mình sẽ gọi bạn là" in m.text for m in tg.chat(USER)) == 1
    assert any(ALREADY in t for t in lan.toasts())
    await lan.press("Đúng rồi")  # the name
    assert "Tổ dân phố 7" in lan.last  # the QR code's group is offered
    await lan.press("Đúng rồi")  # the group
    assert await _joined(ward) == ("Lan Nguyễn", "DEMO-TDP07", "menu")


async def test_name_confirmed_twice_then_the_group_typed_is_a_group_not_a_name(
    ward: App, telegram: tuple[FakeTelegram, Handled]
) -> None:
    tg, handled = telegram
    lan = Lan(tg, handled)
    await lan.send("/start")
    await lan.press("Đồng ý")
    await lan.double_tap("Đúng rồi")
    assert "Bạn muốn mình gọi bạn là gì" not in lan.last  # the name is not asked again
    await lan.send("Tổ dân phố 7")  # she types her group's name, as the list invites
    await lan.press("Đúng rồi")
    assert await _joined(ward) == ("Lan Nguyễn", "DEMO-TDP07", "menu")


@pytest.mark.parametrize("attachment", ["voice", "sticker"])
async def test_a_voice_note_or_sticker_where_the_name_is_asked_keeps_her_joining(
    ward: App, telegram: tuple[FakeTelegram, Handled], attachment: str
) -> None:
    tg, handled = telegram
    lan = Lan(tg, handled)
    await lan.send("/start")
    await lan.press("Đồng ý")
    await lan.press("Đổi tên")
    await lan.settle(tg.push_voice(USER) if attachment == "voice" else tg.push_sticker(USER))
    assert "chỉ đọc được tin nhắn chữ" in lan.last and "Bạn muốn mình gọi bạn là gì" in lan.last
    _, _, state = await _person(ward)
    assert state is not None and state.step == "ask_name"
    await lan.send("/tiendo")  # no menu before she has a name and a group: asked again
    assert "Bạn muốn mình gọi bạn là gì" in lan.last
    await lan.send("Bà Lan")
    await lan.press("Tổ dân phố 2")
    assert await _joined(ward) == ("Bà Lan", "DEMO-TDP02", "menu")


async def test_declining_then_changing_her_mind_keeps_the_qr_group(
    ward: App, telegram: tuple[FakeTelegram, Handled]
) -> None:
    tg, handled = telegram
    lan = Lan(tg, handled)
    await lan.send("/start g_DEMO-TDP04")
    await lan.press("Không đồng ý")
    assert (await _person(ward))[0] is None
    # The consent question lost its buttons (edited in place); the answer offers a way back.
    assert not any("Đồng ý" == text for m in tg.chat(USER) for row in m.buttons for text, _ in row)
    await lan.press("Tôi đổi ý")
    await lan.press("Đồng ý")
    await lan.press("Đúng rồi")
    assert "Tổ dân phố 4" in lan.last
    await lan.press("Đúng rồi")
    person, group, _ = await _person(ward)
    assert person is not None and group == "DEMO-TDP04"


async def test_an_old_name_button_after_joining_changes_nothing(
    ward: App, telegram: tuple[FakeTelegram, Handled]
) -> None:
    tg, handled = telegram
    lan = Lan(tg, handled)
    await lan.send("/start g_DEMO-TDP03")
    await lan.press("Đồng ý")
    name_message, name_ok = lan.button("Đúng rồi")
    await lan.press("Đúng rồi")
    await lan.press("Đúng rồi")
    before = await _person(ward)
    await lan.settle(lan.tap("Đúng rồi", message_id=name_message, data=name_ok))  # scrolled up, pressed
    assert STALE in lan.last and "Bạn muốn mình gọi bạn là gì" not in lan.last
    person, group, state = await _person(ward)
    assert (person.display_name, group, state.step) == (before[0].display_name, before[1], "menu")  # type: ignore[union-attr]


async def test_an_answer_tapped_three_times_counts_once_and_shows_the_next_question_once(
    ward: App, telegram: tuple[FakeTelegram, Handled]
) -> None:
    tg, handled = telegram
    lan = Lan(tg, handled)
    lesson = ward.lessons.first
    await lan.send("/start g_DEMO-TDP03")
    for label in ("Đồng ý", "Đúng rồi", "Đúng rồi", "Học tiếp"):
        await lan.press(label)
    for _ in range(len(lesson.cards) - 1):
        await lan.press("Tiếp")
    await lan.press("Làm bài kiểm tra")
    first = lesson.quiz.questions[0]
    message_id, data = lan.button(first.options[first.answer_index])
    taps = [lan.tap("", message_id=message_id, data=data) for _ in range(3)]
    await lan.settle(*taps)
    second = lesson.quiz.questions[1].text
    assert sum(second in m.text for m in tg.chat(USER)) == 1
    assert sum(ALREADY in t for t in lan.toasts()) == 2
    async with ward.sessions() as session:
        answers = (await session.exec(select(QuizAnswer))).all()
    assert [(a.question_id, a.choice) for a in answers] == [(first.id, first.answer_index)]
