"""The terminal chat: the same conversation on stdin/stdout, menus as numbered lines.

Works interactively and with piped input (one message per line), so a journey can be
scripted: ``printf '1\n1\n' | hocvuso chat``.
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from bot.core.conversation import Clock, Conversation
from bot.core.i18n import Catalog
from bot.core.messages import Capabilities, Document, Image, Incoming, Menu, Notice, Reply, Text
from bot.core.render import numbered_menu
from bot.core.text import fold
from storage.db import SessionFactory

CHANNEL = "console"
CAPABILITIES = Capabilities(buttons=False, edit=False, text_limit=None)


class ConsoleChannel:
    """One local user (``console:terminal``) talking to the bot in a terminal."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        conversation: Conversation,
        catalog: Catalog,
        stdin: TextIO,
        stdout: TextIO,
        user_id: str = "terminal",
    ) -> None:
        self._conversation = conversation
        self.t = catalog.translator(None)
        self._stdin = stdin
        self._stdout = stdout
        self._user_id = user_id
        self._interactive = stdin.isatty()
        self._updates = 0

    def write(self, text: str) -> None:
        self._stdout.write(text + "\n")
        self._stdout.flush()

    async def read_line(self, prompt: str = "> ") -> str | None:
        """One line of input, or None at the end of input (Ctrl-D or the end of a pipe)."""
        if self._interactive:
            self._stdout.write(prompt)
            self._stdout.flush()
        line = await asyncio.to_thread(self._stdin.readline)
        return None if line == "" else line.rstrip("\r\n")

    async def send(self, text: str) -> None:
        self._updates += 1
        incoming = Incoming(
            channel=CHANNEL, external_id=self._user_id, text=text, update_id=f"console-{self._updates}"
        )
        for reply in await self._conversation.handle(incoming, CAPABILITIES):
            self.render(reply)

    def render(self, reply: Reply) -> None:
        self.write("")
        if isinstance(reply, Menu):
            self.write(numbered_menu(reply, self.t))
        elif isinstance(reply, Text | Notice):
            self.write(reply.text)
        elif isinstance(reply, Image | Document):
            # No pictures in a terminal: say where the file is instead of dropping it.
            self.write(self.t("render.file_saved", caption=reply.caption, path=str(reply.path)))

    async def run(self, *, first_message: str | None = "/start") -> None:
        if first_message:
            await self.send(first_message)
        while (line := await self.read_line()) is not None:
            if line.strip():
                await self.send(line)
        self.write(self.t("console.bye"))


async def offer_demo_data(channel: ConsoleChannel, sessions: SessionFactory, *, clock: Clock) -> None:
    """On an empty database, offer to load the demo ward so a newcomer can try at once
    (stamped with ``clock``'s time when the newcomer accepts)."""
    from importlib import resources

    from bot.group_import import import_groups, parse_groups_csv
    from storage.groups import count_groups

    channel.write(channel.t("console.banner"))
    async with sessions() as session:
        if await count_groups(session) > 0:
            return
    channel.write(channel.t("console.offer_demo"))
    answer = await channel.read_line()
    if answer is None or fold(answer) not in {"c", "co", "y", "yes", "ok", "vang", "u"}:
        channel.write(channel.t("console.demo_skipped"))
        return
    rows, errors = parse_groups_csv((resources.files("examples") / "demo-ward.csv").read_bytes())
    assert not errors, errors  # the shipped file is tested
    async with sessions() as session, session.begin():
        summary = await import_groups(session, rows=rows, actor="console", now=clock.now(), source="demo-ward.csv")
    channel.write(channel.t("console.demo_loaded", groups=summary.groups["created"]))
