"""Test helpers: a manual clock and a chat harness that talks to the conversation engine
the way an adapter does (push a message, read the replies)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.core.conversation import Conversation
from bot.core.messages import Capabilities, Incoming, Menu, Option, Reply, Text

if TYPE_CHECKING:
    from bot.app import App

BUTTONS = Capabilities(buttons=True, edit=True, text_limit=4096)
NUMBERED = Capabilities(buttons=False, edit=False, text_limit=2000)


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


class RunningClock:
    """Starts at ``start`` and moves with ``time.monotonic()`` (not the wall clock): for a
    sender whose retries and pauses must come due while the test waits."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)


@dataclass
class Chat:
    """One user of one channel. ``press`` finds an option of the last menu by its label."""

    conversation: Conversation
    user: str = "1001"
    name: str | None = "Lan Nguyễn"
    channel: str = "test"
    capabilities: Capabilities = BUTTONS

    def __post_init__(self) -> None:
        self.history: list[Reply] = []
        self._updates = 0

    async def _handle(self, **kwargs: object) -> list[Reply]:
        self._updates += 1
        incoming = Incoming(
            channel=self.channel, external_id=self.user, display_name=self.name,
            update_id=str(self._updates), **kwargs,  # type: ignore[arg-type]
        )
        replies = list(await self.conversation.handle(incoming, self.capabilities))
        self.history += replies
        return replies

    async def send(self, text: str) -> list[Reply]:
        return await self._handle(text=text)

    async def action(self, action: str) -> list[Reply]:
        return await self._handle(action=action)

    async def attach(self, kind: str) -> list[Reply]:
        return await self._handle(attachment=kind)

    @property
    def menu(self) -> Menu:
        menus = [r for r in self.history if isinstance(r, Menu)]
        assert menus, "no menu was shown"
        return menus[-1]

    def option(self, label: str) -> Option:
        """The option of the last menu whose label contains ``label``."""
        matches = [o for o in self.menu.options if label in o.label]
        assert len(matches) == 1, f"{label!r} matches {[o.label for o in self.menu.options]}"
        return matches[0]

    async def press(self, label: str) -> list[Reply]:
        return await self.action(self.option(label).action)

    @property
    def last_text(self) -> str:
        return self.history[-1].text if isinstance(self.history[-1], Text | Menu) else ""

    def texts(self, replies: Sequence[Reply] | None = None) -> str:
        return "\n---\n".join(r.text for r in (replies if replies is not None else self.history) if isinstance(r, Text | Menu))


async def join(chat: Chat, *, group_code: str | None = "DEMO-TDP03") -> None:
    """Start, consent, keep the channel name and confirm the group from the join link."""
    await chat.send(f"/start g_{group_code}" if group_code else "/start")
    await chat.press("Đồng ý")
    await chat.press("Đúng rồi")  # the name
    if group_code:
        await chat.press("Đúng rồi")  # the group


async def open_quiz(chat: Chat, lesson) -> None:  # type: ignore[no-untyped-def]
    """Open a lesson at its first card and read on to its quiz, as a resident does: starting
    a quiz is a step-bound action, honoured only where it is offered (after the last card)."""
    await chat.action(f"lesson:{lesson.id}:0")
    for _ in range(len(lesson.cards) - 1):
        await chat.press("Tiếp")
    await chat.press("Làm bài kiểm tra")


async def pass_lesson(chat: Chat, lesson, *, correct: int | None = None) -> list[Reply]:  # type: ignore[no-untyped-def]
    """Open a lesson, read every card, answer: all right, or only ``correct`` right."""
    await open_quiz(chat, lesson)
    replies: list[Reply] = []
    good = len(lesson.quiz.questions) if correct is None else correct
    for i, question in enumerate(lesson.quiz.questions):
        pick = question.answer_index if i < good else (question.answer_index + 1) % len(question.options)
        replies = await chat.action(chat.menu.options[pick].action)
    return replies


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a bot process's web endpoint in a test)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def dashboard_served(app: App, **web: Any) -> AsyncIterator[str]:
    """The real web endpoint serving ``app``'s dashboard on 127.0.0.1 (a free port), the links
    ``/web`` sends in the chat opening it (as PUBLIC_BASE_URL would say); yields its address."""
    from bot.app import dashboard
    from bot.web import create_web_app, start_web

    runner = await start_web(create_web_app(dashboard=dashboard(app), **web), host="127.0.0.1", port=0)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    app.conversation.services = replace(app.conversation.services, web_url=base)
    try:
        yield base
    finally:
        await runner.cleanup()


async def web_sign_in(http: aiohttp.ClientSession, chat: Chat) -> aiohttp.ClientResponse:
    """Sign in as ``chat`` does: ``/web`` in the chat, open the link, press "Đăng nhập" (redirects
    followed). Returns the response of the page the browser lands on, its body read."""
    link = re.search(r"http://\S+/web/vao/\S+", chat.texts(await chat.send("/web")))
    assert link, chat.texts()
    async with http.get(link.group(0)) as response:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await response.text())
    assert csrf
    token = link.group(0).rsplit("/", 1)[1]
    async with http.post(link.group(0).rsplit("/", 1)[0], data={"token": token, "csrf": csrf.group(1)}) as response:
        await response.read()
        return response


async def sqlite_plans(app: App, work: Callable[[], Awaitable[object]], *, touching: str) -> list[tuple[str, list[str]]]:
    """(statement, plan steps): SQLite's ``EXPLAIN QUERY PLAN`` of every statement ``work``
    runs whose SQL names ``touching`` (a table), asked with the same parameters afterwards."""
    from sqlalchemy import event

    statements: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if touching in statement:
            statements.append((statement, parameters))

    event.listen(app.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await work()
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", seen)
    plans = []
    async with app.engine.connect() as connection:
        for statement, parameters in statements:
            plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()
            plans.append((statement, [str(row[-1]) for row in plan]))
    return plans
