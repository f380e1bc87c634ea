"""Property-based tests: arbitrary text and callback data, at any point of the journey,
raise nothing unhandled and never change anyone's progress."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel, select

from bot.app import build_app
from bot.config import Settings
from bot.core.choice import pick
from bot.core.messages import Incoming, Menu, Text
from storage.models import LessonProgress, QuizAnswer
from tests.conftest import START, seed_demo_groups
from tests.support import BUTTONS, NUMBERED, Chat, ManualClock, join, open_quiz

# Where the resident stands when the garbage arrives.
POSITIONS = ["new", "consent", "ask_name", "choose_group", "menu", "lesson", "quiz"]

texts = st.text(max_size=300) | st.sampled_from(
    ["/start", "/start g_", "/tiendo", "/xoadulieu", "0", "1", "99", "-1", " ", "/", "//", "/start g_" + "x" * 70]
)
actions = st.text(max_size=80) | st.from_regex(
    r"(ans|card|lesson|quiz|group|lessons|erase|consent|name):[a-z0-9:\-]{0,40}", fullmatch=True
)


@contextlib.contextmanager
def _loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


async def _prepare(tmp: Path, position: str, capabilities):  # type: ignore[no-untyped-def]
    app = build_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp / 'p.db'}", _env_file=None),  # type: ignore[call-arg]
                    clock=ManualClock(START))
    async with app.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    app.conversation.reraise = True
    await seed_demo_groups(app)
    # Someone else has progress that must never move.
    other = Chat(app.conversation, user="other")
    await join(other)
    await open_quiz(other, app.lessons.first)
    chat = Chat(app.conversation, capabilities=capabilities)
    if position != "new":
        await chat.send("/start")
    if position in ("ask_name", "choose_group", "menu", "lesson", "quiz"):
        await chat.press("Đồng ý")
    if position == "ask_name":
        await chat.press("Đổi tên")
    if position in ("choose_group", "menu", "lesson", "quiz"):
        await chat.press("Đúng rồi")
    if position in ("menu", "lesson", "quiz"):
        await chat.action(chat.menu.options[0].action)  # the first group
    if position == "lesson":
        await chat.action(f"lesson:{app.lessons.first.id}")
    if position == "quiz":
        await open_quiz(chat, app.lessons.first)
    return app, chat


async def _progress(app):  # type: ignore[no-untyped-def]
    async with app.sessions() as session:
        rows = (await session.exec(select(LessonProgress))).all()
        answers = (await session.exec(select(QuizAnswer))).all()
        return sorted((p.person_id, p.lesson_id, p.status, p.score, p.attempts) for p in rows), len(answers)


# No "explain" phase: it traces every line of a failing example again, which takes many minutes here.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
@given(
    position=st.sampled_from(POSITIONS),
    numbered=st.booleans(),
    inputs=st.lists(st.one_of(texts.map(lambda t: ("text", t)), actions.map(lambda a: ("action", a))),
                    min_size=1, max_size=6),
)
def test_arbitrary_input_never_crashes_and_never_moves_progress(
    tmp_path_factory, position: str, numbered: bool, inputs: list[tuple[str, str]]  # type: ignore[no-untyped-def]
) -> None:
    tmp = tmp_path_factory.mktemp("prop")

    async def scenario() -> None:
        app, chat = await _prepare(tmp, position, NUMBERED if numbered else BUTTONS)
        try:
            before = await _progress(app)
            shown = [r for r in chat.history if isinstance(r, Menu)]
            menu = shown[-1] if shown else None
            for kind, value in inputs:
                if kind == "text" and menu is not None and pick(value, menu.options, marks=menu.marks).option:
                    continue  # it picks an option offered ("1", "b", "tiep"): a real choice, not garbage
                incoming = Incoming(channel=chat.channel, external_id=chat.user,
                                    **({"text": value} if kind == "text" else {"action": value}))
                replies = await app.conversation.handle(incoming, chat.capabilities)
                assert replies, "every update gets an answer"
                for reply in replies:
                    assert isinstance(reply, Text | Menu) and reply.text.strip()
                    if isinstance(reply, Menu):
                        assert all(len(o.action.encode()) <= 64 for o in reply.options)
                        menu = reply
            assert await _progress(app) == before
        finally:
            await app.close()

    with _loop() as loop:
        loop.run_until_complete(scenario())
