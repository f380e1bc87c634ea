"""One ``Driver`` per channel: a resident who types and chooses, over the real adapter.

A journey is written once against :class:`Driver` and runs over every channel:

- ``send(text)``: the resident types a message; returns when the bot has answered.
- ``choose(label)``: the resident picks the option whose label is (or uniquely contains)
  ``label`` — a button press on Telegram, the option's number typed on numbered channels
  (terminal chat, Zalo), exactly as a resident would.
- ``last_text()``: the bot's latest message as the resident sees it now.

Only the network peer is fake (FakeTelegram, FakeZaloBot); the adapters, the engine and
the database run for real. Adding a channel = one more Driver and one more entry in
``open_driver``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
import io
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from bot.app import App
from bot.channels.console import ConsoleChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.zalo import ZaloBotChannel, ZaloBotClient
from handlers import COMMANDS
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_bot_api import FakeZaloBot

CHANNELS = ("console", "telegram", "zalo")
_OPTION = re.compile(r"^(\d+|[A-Z])\. (.*)$")


class Driver(Protocol):
    channel: str  # Identity.channel of this resident
    external_id: str
    display_name: str | None  # what the channel tells the bot, None if nothing

    async def send(self, text: str) -> None: ...

    async def choose(self, label: str) -> None: ...

    def last_text(self) -> str: ...

    def said(self, fragment: str) -> bool:
        """Whether any message the bot sent this user so far contains ``fragment``."""
        ...

    def options(self) -> list[str]:
        """The labels of the options offered last (buttons, or numbered or lettered lines)."""
        ...


def pick(labels: list[str], label: str) -> int:
    """Index of the option named ``label``: an exact match, else the only one containing it."""
    if label in labels:
        return labels.index(label)
    matches = [i for i, text in enumerate(labels) if label in text]
    assert len(matches) == 1, f"{label!r} among {labels}"
    return matches[0]


def menu_marks(text: str) -> list[tuple[str, str]]:
    """The (mark, label) lines of a menu shown as text (``bot.core.render.numbered_menu``): the
    block of "1. label" or "A. label" lines between a blank line and the blank line before the
    hint, marked 1, 2, 3… or A, B, C…"""
    lines = text.rstrip("\n").split("\n")
    if len(lines) < 4 or lines[-2] != "":
        return []
    found: list[tuple[str, str]] = []
    index = len(lines) - 3
    while index >= 0 and (match := _OPTION.match(lines[index])):
        found.insert(0, (match.group(1), match.group(2)))
        index -= 1
    marks = [mark for mark, _ in found]
    expected = ([str(i) for i in range(1, len(found) + 1)], [chr(ord("A") + i) for i in range(len(found))])
    if index < 0 or lines[index] != "" or marks not in expected:
        return []
    return found


def numbered_options(text: str) -> list[str]:
    """The option labels of a menu shown as text (numbered or lettered)."""
    return [label for _, label in menu_marks(text)]


class NumberedDriver(ABC):
    """Shared by channels that show menus as numbered lines: choose = type the number."""

    messages: list[str]

    @abstractmethod
    async def send(self, text: str) -> None:
        """Type ``text``; return when the bot has answered."""

    def last_text(self) -> str:
        assert self.messages, "the bot has said nothing yet"
        return self.messages[-1]

    def said(self, fragment: str) -> bool:
        return any(fragment in message for message in self.messages)

    def options(self) -> list[str]:
        menus = [menu_marks(m) for m in self.messages if menu_marks(m)]
        return [label for _, label in menus[-1]] if menus else []

    async def choose(self, label: str) -> None:
        """Type the mark (number or letter) of the option named ``label`` in the last menu."""
        menus = [menu_marks(m) for m in self.messages if menu_marks(m)]
        assert menus, "no menu was shown"
        await self.send(menus[-1][pick([text for _, text in menus[-1]], label)][0])


class _Lines(io.StringIO):
    """stdout for the terminal chat that remembers each written block."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[str] = []

    def write(self, text: str) -> int:
        if text.strip():
            self.blocks.append(text.rstrip("\n"))
        return super().write(text)


class ConsoleDriver(NumberedDriver):
    channel = "console"
    display_name = None  # the terminal knows no name: the bot asks for it

    def __init__(self, app: App, user: str) -> None:
        self.external_id = user
        self._out = _Lines()
        self._chat = ConsoleChannel(conversation=app.conversation, catalog=app.catalog,
                                    stdin=io.StringIO(), stdout=self._out, user_id=user)

    @property
    def messages(self) -> list[str]:  # type: ignore[override]
        return self._out.blocks

    async def send(self, text: str) -> None:
        await self._chat.send(text)  # the reply is written before this returns


class Handled:
    """Waits until the channel has finished every update pushed so far: handled, and every
    reply sent (its chat queues' count of jobs ended). Counted, no timing guess."""

    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel
        self.pushed = 0

    async def wait(self, update_id: int, timeout: float = 60) -> None:
        """After pushing ``update_id`` (one more update): until it and those before are done."""
        self.pushed += 1
        # A generous bound: it only matters when something hangs (a loaded machine handles an
        # update drawing a workbook in over 10 s).
        try:
            async with asyncio.timeout(timeout):
                while self.channel.queues.finished < self.pushed:
                    await asyncio.sleep(0.005)
        except TimeoutError:
            raise TimeoutError(f"update {update_id} not handled within {timeout} s") from None


class TelegramDriver:
    channel = "telegram"

    def __init__(self, tg: FakeTelegram, handled: Handled, user: int, name: str) -> None:
        self.tg, self.handled, self.user = tg, handled, user
        self.external_id = str(user)
        self.first, _, self.last = name.partition(" ")
        self.display_name = name

    async def send(self, text: str) -> None:
        update_id = self.tg.push_text(self.user, text, first_name=self.first, last_name=self.last or None)
        await self.handled.wait(update_id)

    async def choose(self, label: str) -> None:
        buttons = self.tg.buttons(self.user)
        index = pick([text for text, _ in buttons], label)
        await self.handled.wait(self.tg.push_callback(self.user, buttons[index][1] or ""))

    def last_text(self) -> str:
        message = self.tg.last_message(self.user)
        assert message is not None, "the bot has said nothing yet"
        return message.text

    def said(self, fragment: str) -> bool:
        return any(fragment in message.text for message in self.tg.chat(self.user))

    def options(self) -> list[str]:
        return [text for text, _ in self.tg.buttons(self.user)]


class ZaloDriver(NumberedDriver):
    channel = "zalo"

    def __init__(self, zalo: FakeZaloBot, bot: ZaloBotChannel, user: str, name: str) -> None:
        self.zalo, self.bot = zalo, bot
        self.external_id = user
        self.display_name = name

    @property
    def messages(self) -> list[str]:  # type: ignore[override]
        return [m.text for m in self.zalo.chat(self.external_id)]

    async def send(self, text: str) -> None:
        self.zalo.push_text(self.external_id, text, display_name=self.display_name)
        await settle(self.zalo, self.bot)


async def settle(zalo: FakeZaloBot, bot: ZaloBotChannel) -> None:
    """Until the bot has taken every queued update and finished answering it: no timing
    guess, the adapter's own counters say so."""
    await zalo.wait_for(
        lambda: zalo.pending == 0 and bot.received >= zalo.handed_out and bot.tasks.in_flight == 0, timeout=10
    )


@asynccontextmanager
async def telegram_server(app: App) -> AsyncIterator[tuple[FakeTelegram, Handled]]:
    async with FakeTelegram() as tg:
        channel = TelegramChannel(token=tg.token, api_url=tg.url, conversation=app.conversation,
                                  catalog=app.catalog, commands=COMMANDS,
                                  files_dir=app.conversation.services.files_dir)
        handled = Handled(channel)
        polling = asyncio.create_task(channel.run_polling(polling_timeout=1))
        try:
            await tg.wait_for(lambda t: t.calls_to("getUpdates"), timeout=10)
            yield tg, handled
        finally:
            await channel.stop()
            await asyncio.wait_for(polling, timeout=10)
            await channel.close()


@asynccontextmanager
async def zalo_server(app: App) -> AsyncIterator[tuple[FakeZaloBot, ZaloBotChannel]]:
    async with FakeZaloBot() as zalo:
        bot = ZaloBotChannel(client=ZaloBotClient(token=zalo.token, api_url=zalo.url),
                             conversation=app.conversation, catalog=app.catalog, retry_delay=0.01,
                             backoff=(0.01, 0.1), files_dir=app.conversation.services.files_dir)
        polling = asyncio.create_task(bot.run_polling(poll_timeout=1))
        try:
            await zalo.wait_for(lambda: zalo.waiting_polls > 0)
            yield zalo, bot
        finally:
            await bot.stop()
            await asyncio.wait_for(polling, timeout=10)
            await bot.close()


@asynccontextmanager
async def open_driver(kind: str, app: App, *, user: int = 424242, name: str = "Lan Nguyễn") -> AsyncIterator[Driver]:
    """A resident on channel ``kind`` (one of CHANNELS), with its fake server running."""
    async with open_drivers(kind, app, [(user, name)]) as (driver,):
        yield driver


@asynccontextmanager
async def open_drivers(kind: str, app: App, people: Sequence[tuple[int, str]]) -> AsyncIterator[list[Driver]]:
    """Several people (user number, name) on channel ``kind``, sharing one fake server."""
    if kind == "console":
        yield [ConsoleDriver(app, f"terminal-{user}") for user, _ in people]
    elif kind == "telegram":
        async with telegram_server(app) as (tg, handled):
            yield [TelegramDriver(tg, handled, user, name) for user, name in people]
    elif kind == "zalo":
        async with zalo_server(app) as (zalo, bot):
            yield [ZaloDriver(zalo, bot, f"{user:020x}", name) for user, name in people]
    else:
        raise ValueError(kind)
