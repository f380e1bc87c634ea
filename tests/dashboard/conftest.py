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
from dataclasses import dataclass

import pytest

from bot.app import App
from bot.curriculum import LessonLibrary, load_library
from storage.models import Ward
from storage.roles import add_admin
from tests.conftest import seed_demo_groups
from tests.staff import make_admin, make_leader
from tests.support import Chat, dashboard_served, join, pass_lesson

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


async def admin_of_another_ward(world: World, *, user: str, name: str, group_code: str,
                                city: bool = False) -> Chat:
    """A second ward, "Phường Khác" (KHAC, no groups), and someone of ``group_code`` who
    administers it — or, ``city``, every ward (``hocvuso admin add --city``)."""
    chat = Chat(world.app.conversation, user=user, name=name)
    await join(chat, group_code=group_code)
    async with world.app.sessions() as session, session.begin():
        session.add(Ward(code="KHAC", name="Phường Khác"))
        await session.flush()
        await add_admin(session, channel=chat.channel, external_id=chat.user, ward_code=None if city else "KHAC",
                        city=city, now=world.app.clock.now())
    return chat


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
    async with dashboard_served(app, sessions=app.sessions) as base:
        yield World(app, base, chats["Hà"], chats["Ba"], chats["Lan"])


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
