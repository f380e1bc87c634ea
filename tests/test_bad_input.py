"""Bad input never crashes and never corrupts progress: it gets a kind answer in Vietnamese."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlmodel import select

from bot.app import App
from bot.core.messages import Incoming, Menu, Notice, Text
from bot.core.render import numbered_menu
from storage.models import ConversationState, HelpRequest, Identity, LessonProgress, Person, QuizAnswer
from tests.conftest import seed_demo_groups
from tests.support import BUTTONS, NUMBERED, Chat, join, open_quiz


async def _snapshot(app: App) -> tuple[list, list]:
    async with app.sessions() as session:
        progress = [(p.lesson_id, p.status, p.score, p.attempts) for p in (await session.exec(select(LessonProgress))).all()]
        answers = [(a.lesson_id, a.attempt, a.question_id, a.choice) for a in (await session.exec(select(QuizAnswer))).all()]
    return progress, answers


@pytest.fixture
async def learner(ward: App) -> Chat:
    """A resident in the middle of the first lesson's quiz (question 2 of 3)."""
    chat = Chat(ward.conversation)
    await join(chat)
    lesson = ward.lessons.first
    await open_quiz(chat, lesson)
    await chat.action(chat.menu.options[lesson.quiz.questions[0].answer_index].action)
    return chat


async def test_free_text_where_a_button_is_expected_shows_the_options_again(ward: App, learner: Chat) -> None:
    before = await _snapshot(ward)
    options = learner.menu.options
    replies = await learner.send("tôi không biết bấm nút nào")
    assert "Mình chưa hiểu ý bạn" in replies[-1].text and "câu 2/3" in replies[-1].text
    # The same answers (still answerable: the step is the same), and a way out.
    assert learner.menu.options[: len(options)] == options
    assert [o.action for o in learner.menu.options[len(options):]] == ["hotro", "menu"]
    assert await _snapshot(ward) == before


@pytest.mark.parametrize("kind", ["sticker", "photo", "voice", "video", "location", "other"])
async def test_attachments_get_a_text_only_answer(ward: App, learner: Chat, kind: str) -> None:
    before = await _snapshot(ward)
    replies = await learner.attach(kind)
    assert "chỉ đọc được tin nhắn chữ" in replies[-1].text
    assert await _snapshot(ward) == before


async def test_a_5000_character_message_is_handled(ward: App, learner: Chat) -> None:
    before = await _snapshot(ward)
    replies = await learner.send("a" * 5000)
    assert replies and all(len(r.text) < 4096 for r in replies if isinstance(r, Text))
    await learner.send("/doiten")
    replies = await learner.send("Lan " * 1250)
    assert "Tên hơi dài" in replies[-1].text
    assert await _snapshot(ward) == before


async def test_unknown_command(ward: App, learner: Chat) -> None:
    replies = await learner.send("/abc xyz")
    assert "chưa biết lệnh này" in replies[-1].text and "/trogiup" in replies[-1].text


@pytest.mark.parametrize(
    "data",
    [
        "ans:b01-binh-dan-hoc-vu-so:1:1:9",  # option out of range
        "ans:b01-binh-dan-hoc-vu-so:1:7:0",  # question out of range
        "ans:b01-binh-dan-hoc-vu-so:x:1:0",  # not a number
        "ans:no-such-lesson:1:1:0",
        "ans:b01-binh-dan-hoc-vu-so:1:1:0:extra",
        "card:b01-binh-dan-hoc-vu-so:99",
        "lesson:../../etc/passwd",
        "group:set:999999",
        "nonsense",
        "",
        "ans:" + "x" * 200,
        "quiz:",
    ],
)
async def test_forged_callback_data_is_refused(ward: App, learner: Chat, data: str) -> None:
    before = await _snapshot(ward)
    replies = await learner.action(data)
    assert replies, "every update gets an answer"
    assert await _snapshot(ward) == before


async def test_an_answer_pressed_twice_is_recorded_once(ward: App) -> None:
    chat = Chat(ward.conversation)
    await join(chat)
    lesson = ward.lessons.first
    await open_quiz(chat, lesson)
    first = chat.menu.options[0].action
    await chat.action(first)
    replies = await chat.action(first)  # the same button again: acknowledged, nothing else
    assert replies == [Notice("Mình đã nhận lần bấm trước rồi 👍")]
    _, answers = await _snapshot(ward)
    assert len(answers) == 1


async def test_an_old_button_from_a_previous_attempt_is_stale(ward: App) -> None:
    chat = Chat(ward.conversation)
    await join(chat)
    lesson = ward.lessons.first
    await open_quiz(chat, lesson)
    old_question_1 = chat.menu.options[1].action
    for question in lesson.quiz.questions:  # every answer wrong
        await chat.action(chat.menu.options[(question.answer_index + 1) % len(question.options)].action)
    await chat.press("Làm lại")  # a second attempt starts
    assert chat.menu.options[1].action != old_question_1
    before = await _snapshot(ward)
    replies = await chat.action(old_question_1)
    assert "Nút này đã cũ" in replies[0].text
    assert await _snapshot(ward) == before


async def test_buttons_pressed_before_joining_ask_to_start(ward: App) -> None:
    chat = Chat(ward.conversation)
    replies = await chat.action(f"lesson:{ward.lessons.first.id}")
    assert "Mình chưa có thông tin của bạn" in replies[0].text
    assert chat.option("Đồng ý").action == "consent:yes"


async def test_numbered_channel_free_text_shows_the_options_again(ward: App) -> None:
    chat = Chat(ward.conversation, capabilities=NUMBERED)
    await join(chat)
    menu = chat.menu
    replies = await chat.send("cái gì đây")
    assert isinstance(replies[-1], Menu) and replies[-1].options[: len(menu.options)] == menu.options
    assert "chưa hiểu" in replies[-1].text and menu.text in replies[-1].text
    # The number hint is the renderer's, once.
    assert numbered_menu(replies[-1], ward.catalog.translator(None)).count("Gõ ") == 1


async def test_an_unexpected_error_is_logged_with_the_update_id_and_apologised_for(
    ward: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = Chat(ward.conversation)
    await join(chat)
    before = await _snapshot(ward)
    ward.conversation.reraise = False

    async def broken(ctx):  # type: ignore[no-untyped-def]
        from storage.progress import start_lesson

        await start_lesson(ctx.session, person_id=ctx.person.id, lesson_id="b01-binh-dan-hoc-vu-so",
                           lesson_version=1, now=ctx.now)
        raise RuntimeError("boom")

    monkeypatch.setattr("handlers.lessons.continue_learning", broken)
    from handlers import build_router

    ward.conversation.router = build_router()
    incoming = Incoming(channel="test", external_id=chat.user, action="next", update_id="777")
    with caplog.at_level(logging.ERROR):
        replies = await ward.conversation.handle(incoming, BUTTONS)
    assert [r.text for r in replies] == [ward.catalog.text("error.apology")]
    assert any("777" in r.getMessage() and r.exc_info for r in caplog.records)
    assert await _snapshot(ward) == before, "the half-done work was rolled back"


async def test_updates_of_one_user_are_handled_one_at_a_time(any_app: App) -> None:
    """Five presses of the same answer arriving together (five tasks): the per-user lock
    orders them, so each later one sees the first and the answer is recorded once."""
    ward = any_app
    await seed_demo_groups(ward)
    chat = Chat(ward.conversation)
    await join(chat)
    lesson = ward.lessons.first
    await open_quiz(chat, lesson)
    action = chat.menu.options[0].action
    incoming = Incoming(channel=chat.channel, external_id=chat.user, action=action)
    results = await asyncio.gather(*(ward.conversation.handle(incoming, BUTTONS) for _ in range(5)))
    assert sorted(isinstance(replies[0], Notice) for replies in results) == [False] + [True] * 4
    _, answers = await _snapshot(ward)
    assert len(answers) == 1


@pytest.mark.parametrize("typed", ["①", "１", "١", " 1. ", "¹"])
async def test_any_unicode_way_of_typing_a_number_picks_the_option(ward: App, typed: str) -> None:
    chat = Chat(ward.conversation, capabilities=NUMBERED)
    await join(chat)
    await chat.send(typed)  # option 1 of the main menu: "Học tiếp"
    assert ward.lessons.first.cards[0].text in chat.last_text


@pytest.mark.parametrize("data", ["card:b01-binh-dan-hoc-vu-so:①", "lessons:②", "group:set:③", "bc:at:④"])
async def test_unicode_digits_in_button_data_are_refused_without_a_crash(ward: App, learner: Chat, data: str) -> None:
    before = await _snapshot(ward)
    replies = await learner.action(data)
    assert replies and await _snapshot(ward) == before


async def test_consent_is_recorded_only_under_the_consent_question(ward: App) -> None:
    """Someone who never saw the consent question (here: typing a link code) sends a forged
    "consent:yes": no person is created."""
    stranger = Chat(ward.conversation, user="404")
    await stranger.send("/lienket")
    replies = await stranger.action("consent:yes")
    assert "Nút này đã cũ" in stranger.texts(replies)
    async with ward.sessions() as session:
        assert (await session.exec(select(Person))).all() == []


@pytest.mark.parametrize("word", ["thôi", "Hủy", "huy", "không đổi nữa", "Thôi!"])
async def test_cancel_words_leave_every_text_step_and_nothing_typed_is_kept(ward: App, word: str) -> None:
    """Whatever step takes free text (a name, a question, an answer, a code, a broadcast, a
    time, a group search), a typed "thôi" never reaches it: the menu, with nothing kept."""
    chat = Chat(ward.conversation)
    await join(chat)
    steps = ward.conversation.router.text_steps
    assert {"ask_name", "choose_group", "help_text", "help_reply", "link_code", "assist_name",
            "compose_text", "compose_time"} <= set(steps)
    for step in steps:
        async with ward.sessions() as session, session.begin():
            identity = (await session.exec(select(Identity).where(Identity.external_id == chat.user))).one()
            state = (await session.exec(select(ConversationState).where(
                ConversationState.identity_id == identity.id))).one()
            state.step, state.data, state.menu = step, {"group": 1, "request": 1, "ward": 1}, None
            session.add(state)
        await chat.send(word)
        assert "Đã hủy, không có gì thay đổi." in chat.last_text, step
        assert chat.option("Học tiếp").action == "next", step
    async with ward.sessions() as session:
        people = (await session.exec(select(Person))).all()
        assert [p.display_name for p in people] == ["Lan Nguyễn"]
        assert (await session.exec(select(HelpRequest))).all() == []
        state = (await session.exec(select(ConversationState))).one()
        assert state.step == "menu"


@pytest.mark.parametrize("kind", ["sticker", "voice"])
async def test_a_sticker_or_a_voice_note_gets_help_and_a_way_out(ward: App, learner: Chat, kind: str) -> None:
    options = learner.menu.options
    replies = await learner.attach(kind)
    text = replies[-1].text
    assert "chỉ đọc được tin nhắn chữ" in text and "tổ trưởng" in text and "câu 2/3" in text
    assert learner.menu.options[: len(options)] == options  # still answerable
    assert {o.label for o in learner.menu.options[len(options):]} == {"🙋 Hỏi tổ trưởng", "🏠 Về menu chính"}
    await learner.attach(kind)
    assert "Ví dụ" in learner.last_text  # the second miss in a row shows how
    await learner.press("Hỏi tổ trưởng")
    assert "tổ trưởng" in learner.last_text.lower() or "hỗ trợ" in learner.last_text.lower()
