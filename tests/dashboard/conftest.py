"""A ward for the dashboard's tests, built through the real conversation, and the real web
endpoint serving the dashboard on 127.0.0.1 (a free port).

| group | who | what |
|---|---|---|
| DEMO-TDP01 | Hà (ward admin) | — |
|            | An | both lessons (finished) |
| DEMO-TDP03 | Ba (leader of Tổ 3) | — |
|            | Lan | both lessons (finished) |
|            | Bình | the first lesson; asks the leaders a question (unanswered) |
|            | Chi | nothing |
| DEMO-TDP05 | Dũng | the first lesson |

The programme is the first two shipped lessons (the ``library`` fixture), so people finish it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import pytest

from bot.app import App, dashboard
from bot.curriculum import LessonLibrary, load_library
from bot.web import create_web_app, start_web
from tests.conftest import seed_demo_groups
from tests.staff import make_admin, make_leader
from tests.support import Chat, join, pass_lesson

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/web/vao/[A-Za-z0-9_-]+)")


@pytest.fixture(scope="session")
def library() -> LessonLibrary:
    return LessonLibrary(list(load_library())[:2])


@dataclass
class World:
    app: App
    base: str  # http://127.0.0.1:<port>
    admin: Chat
    leader: Chat
    resident: Chat


async def link_from_chat(chat: Chat) -> str:
    """Send ``/web`` as the person would and return the link of the reply."""
    replies = await chat.send("/web")
    found = LINK.search(chat.texts(replies))
    assert found, chat.texts(replies)
    return found.group(1)


@asynccontextmanager
async def open_world(app: App) -> AsyncIterator[World]:
    """The ward of the table above in ``app`` (its demo groups imported), the web endpoint running."""
    chats = {name: Chat(app.conversation, user=str(1000 + n), name=name)
             for n, name in enumerate(("Hà", "An", "Ba", "Lan", "Bình", "Chi", "Dũng"))}
    for name, code in (("Hà", "DEMO-TDP01"), ("An", "DEMO-TDP01"), ("Ba", "DEMO-TDP03"), ("Lan", "DEMO-TDP03"),
                       ("Bình", "DEMO-TDP03"), ("Chi", "DEMO-TDP03"), ("Dũng", "DEMO-TDP05")):
        await join(chats[name], group_code=code)
    await make_admin(app, chats["Hà"])
    await make_leader(app, chats["Ba"], "DEMO-TDP03")
    first, second = app.lessons
    for name in ("An", "Lan"):
        await pass_lesson(chats[name], first)
        await pass_lesson(chats[name], second)
    for name in ("Bình", "Dũng"):
        await pass_lesson(chats[name], first)
    await chats["Bình"].send("/hotro")
    await chats["Bình"].send("Tôi không mở được VNeID.")
    runner = await start_web(create_web_app(dashboard=dashboard(app), sessions=app.sessions), host="127.0.0.1", port=0)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    # As PUBLIC_BASE_URL would say: the links /web sends open this server.
    app.conversation.services = replace(app.conversation.services, web_url=base)
    try:
        yield World(app, base, chats["Hà"], chats["Ba"], chats["Lan"])
    finally:
        await runner.cleanup()


@pytest.fixture
async def world(ward: App) -> AsyncIterator[World]:
    """On SQLite."""
    async with open_world(ward) as built:
        yield built


@pytest.fixture
async def any_world(any_app: App) -> AsyncIterator[World]:
    """On SQLite and on PostgreSQL."""
    await seed_demo_groups(any_app)
    async with open_world(any_app) as built:
        yield built
