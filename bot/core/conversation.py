"""The conversation engine: one ``Incoming`` in, a list of ``Reply`` out.

For every update it
1. takes the user's lock (one update of a user at a time, users in parallel);
2. opens one transaction: loads the identity, locks its conversation state, loads the person;
3. turns the update into a route: a command (``/tiendo``), an action (a pressed option), a
   reply that picks an option of the pending menu (``2`` or its label typed without
   diacritics), free text for the current step, or an attachment;
4. runs the handler, remembers the menu it showed (so a later "2" can pick from it),
   saves the state and commits; or, on an unexpected error, rolls back, logs it with the
   update id and answers a short apology. Progress is never half-written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog, Translate
from bot.core.messages import Capabilities, Incoming, Menu, Option, Reply, Text
from bot.core.text import fold
from bot.curriculum import LessonLibrary
from bot.delivery.quiet import QuietHours
from storage.db import SessionFactory
from storage.models import ConversationState, Identity, Person
from storage.people import find_identity, get_or_create_identity, get_person, lock_state

log = logging.getLogger(__name__)

MAX_ACTION_BYTES = 64  # Telegram's callback-data limit; anything longer is forged
DEFAULT_ZONE = "Asia/Ho_Chi_Minh"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    """What handlers may use; built once by the composition root."""

    lessons: LessonLibrary
    catalog: Catalog
    clock: Clock
    # Hours a resident may choose for reminders (the composition root leaves out quiet hours).
    reminder_hours: tuple[int, ...] = (7, 9, 12, 17, 19, 20)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_ZONE))
    # Nothing is sent unasked in these local hours (nudges, help messages, broadcasts).
    quiet: QuietHours = field(default_factory=lambda: QuietHours(ZoneInfo(DEFAULT_ZONE), time(21), time(7)))
    # Where generated files (reports, charts, certificates, QR codes) and photos received
    # from admins are written before a reply carries their path.
    files_dir: Path = Path("data/files")
    # For https://t.me/<bot>?start=… links; None until known (setting or getMe).
    telegram_username: str | None = None


class Context:
    """One update being handled: what came in, who sent it, and the replies so far."""

    def __init__(
        self,
        *,
        incoming: Incoming,
        session: AsyncSession,
        identity: Identity,
        person: Person | None,
        state: ConversationState,
        services: Services,
        capabilities: Capabilities,
        now: datetime,
    ) -> None:
        self.incoming = incoming
        self.session = session
        self.identity = identity
        self.person = person
        self.state = state
        self.services = services
        self.capabilities = capabilities
        self.now = now
        self.args: tuple[str, ...] = ()
        self.replies: list[Reply] = []
        self.erased = False  # the identity was deleted: nothing of it may be saved again
        self._fetched: Path | None = None  # a photo this update downloaded (see fetch_media)

    @property
    def t(self) -> Translate:
        return self.services.catalog.translator(self.person.locale if self.person else None)

    @property
    def lessons(self) -> LessonLibrary:
        return self.services.lessons

    @property
    def data(self) -> dict:
        return self.state.data

    def say(self, text: str, *, replace: bool = False) -> None:
        self.replies.append(Text(text, replace=replace))

    def ask(
        self,
        text: str,
        options: Iterable[Option | tuple[str, str] | tuple[str, str, tuple[str, ...]]],
        *,
        columns: int = 1,
        replace: bool = False,
    ) -> None:
        opts = tuple(o if isinstance(o, Option) else Option(*o) for o in options)
        self.replies.append(Menu(text, opts, columns=columns, replace=replace))

    def goto(self, step: str, **data: object) -> None:
        """Move to ``step`` with fresh step data (a new dict, so the JSON column is saved)."""
        self.state.step = step
        self.state.data = dict(data)

    async def fetch_media(self) -> Path | None:
        """Download the photo the user sent, if the channel can (None if not). The file is the
        caller's to keep; if handling the update fails afterwards, the engine deletes it."""
        if self.incoming.fetch_media is None:
            return None
        self._fetched = await self.incoming.fetch_media()
        return self._fetched

    def discard_media(self) -> None:
        if self._fetched is not None:
            self._fetched.unlink(missing_ok=True)
            self._fetched = None

    def pending_options(self) -> list[Option]:
        """The options of the last menu shown, which a typed reply may pick from."""
        menu = self.state.menu or {}
        return [Option(o[0], o[1], tuple(o[2]) if len(o) > 2 else ()) for o in menu.get("options", [])]


Handler = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    needs_person: bool = True
    # For actions: which may be pressed at any time (``True``: all of this prefix; a set: those
    # whose first argument is in it). Every other action is *step-bound*: honoured only while
    # it is one of the options the bot offered last (see ``Conversation``).
    free: bool | frozenset[str] = False

    def is_free(self, args: tuple[str, ...]) -> bool:
        if isinstance(self.free, bool):
            return self.free
        return bool(args) and args[0] in self.free


@dataclass
class Fallbacks:
    """Where input goes that no route takes. All of them must answer kindly."""

    text: Handler
    attachment: Handler
    unknown_command: Handler
    stale_action: Handler
    needs_start: Handler


class Router:
    """Routes in an explicit order: commands, actions (by prefix), steps, then fallbacks."""

    def __init__(self, fallbacks: Fallbacks) -> None:
        self.fallbacks = fallbacks
        self._commands: dict[str, Route] = {}
        self._actions: dict[str, Route] = {}
        self._steps: dict[str, Route] = {}
        self._media_steps: set[str] = set()

    def command(self, name: str, handler: Handler, *, needs_person: bool = True) -> None:
        self._commands[name.lower()] = Route(handler, needs_person)

    def action(
        self, prefix: str, handler: Handler, *, needs_person: bool = True, free: bool | Collection[str] = False
    ) -> None:
        """Actions ``prefix[:args…]`` go to ``handler``. ``free`` names what may be pressed at
        any time (navigation, or an action authorised from the database alone, such as a
        button in a message the outbox sent); everything else is honoured only while offered."""
        if ":" in prefix:
            raise ValueError("an action prefix has no ':'")
        self._actions[prefix] = Route(handler, needs_person, free if isinstance(free, bool) else frozenset(free))

    def step(self, step: str, handler: Handler, *, needs_person: bool = False, media: bool = False) -> None:
        """Free text in ``step`` goes to ``handler``; with ``media``, attachments do too
        (the handler may fetch a photo with ``ctx.fetch_media()``)."""
        self._steps[str(step)] = Route(handler, needs_person)
        if media:
            self._media_steps.add(str(step))

    @property
    def commands(self) -> list[str]:
        return list(self._commands)

    def resolve(self, ctx: Context) -> Route:
        incoming = ctx.incoming
        if incoming.attachment:
            if ctx.state.step in self._media_steps:  # it says so itself if it got no file
                return self._steps[ctx.state.step]
            return Route(self.fallbacks.attachment, needs_person=False)
        if incoming.action is not None:
            return self._resolve_action(ctx, incoming.action)
        if incoming.start_param is not None and not incoming.text:
            ctx.args = (incoming.start_param,)
            return self._commands.get("start") or Route(self.fallbacks.unknown_command, False)
        text = (incoming.text or "").strip()
        if text.startswith("/") and len(text) > 1:
            name, _, rest = text[1:].partition(" ")
            name = fold(name.split("@", 1)[0]).replace(" ", "_")
            ctx.args = tuple(rest.split())
            return self._commands.get(name) or Route(self.fallbacks.unknown_command, needs_person=False)
        chosen = self._menu_choice(ctx, text)
        if chosen is not None:
            return self._resolve_action(ctx, chosen)
        route = self._steps.get(ctx.state.step)
        return route or Route(self.fallbacks.text, needs_person=False)

    def _resolve_action(self, ctx: Context, action: str) -> Route:
        prefix, _, rest = action.partition(":")
        route = self._actions.get(prefix)
        if route is None or len(action.encode("utf-8")) > MAX_ACTION_BYTES:
            return Route(self.fallbacks.stale_action, needs_person=False)
        ctx.args = tuple(rest.split(":")) if rest else ()
        return route

    @staticmethod
    def _menu_choice(ctx: Context, text: str) -> str | None:
        """The action of the pending menu option the user's text picks, if any."""
        options = ctx.pending_options()
        if not options or not text or len(text) > 200:
            return None
        if ctx.capabilities.numbered_menus and text.isdigit():
            number = int(text)
            return options[number - 1].action if 1 <= number <= len(options) else None
        typed = fold(text)
        if not typed:
            return None
        for option in options:
            if fold(option.label) == typed or any(fold(alias) == typed for alias in option.aliases):
                return option.action
        return None


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Conversation:
    """Handles updates from every channel with the same handlers."""

    def __init__(
        self,
        *,
        router: Router,
        sessions: SessionFactory,
        services: Services,
        reraise: bool = False,
    ) -> None:
        self.router = router
        self.sessions = sessions
        self.services = services
        self.reraise = reraise  # tests set it, so an unexpected error fails the test
        self._locks = KeyedLocks()

    async def handle(self, incoming: Incoming, capabilities: Capabilities) -> Sequence[Reply]:
        try:
            async with self._locks.hold(incoming.key):
                return await self._handle(incoming, capabilities)
        except Exception:
            if self.reraise:
                raise
            # The text of the update is personal data; the ids are enough to find it.
            log.exception("update %s on %s failed", incoming.update_id, incoming.channel)
            return [Text(self.services.catalog.text("error.apology"))]

    async def set_blocked(self, channel: str, external_id: str, *, blocked: bool) -> None:
        """The channel told us the user blocked (or unblocked) the bot."""
        now = self.services.clock.now()
        async with self.sessions() as session, session.begin():
            identity = await find_identity(session, channel=channel, external_id=external_id)
            if identity is not None:
                identity.blocked_at = now if blocked else None
                session.add(identity)

    async def _handle(self, incoming: Incoming, capabilities: Capabilities) -> list[Reply]:
        now = self.services.clock.now()
        async with self.sessions() as session, session.begin():
            identity = await get_or_create_identity(
                session, channel=incoming.channel, external_id=incoming.external_id, now=now
            )
            assert identity.id is not None
            identity.last_seen_at = now  # Zalo OA may message a user only within 7 days of this
            identity.blocked_at = None  # whoever writes to the bot has not blocked it
            state = await lock_state(session, identity_id=identity.id, now=now)
            person = await get_person(session, person_id=identity.person_id)
            ctx = Context(
                incoming=incoming,
                session=session,
                identity=identity,
                person=person,
                state=state,
                services=self.services,
                capabilities=capabilities,
                now=now,
            )
            route = self.router.resolve(ctx)
            if route.needs_person and ctx.person is None:
                route = Route(self.router.fallbacks.needs_start, needs_person=False)
            try:
                await route.handler(ctx)
            except BaseException:
                ctx.discard_media()  # the transaction rolls back: nothing refers to the file
                raise
            if not ctx.erased:
                self._remember_menu(ctx)
                state.updated_at = now
                session.add(state)
                session.add(identity)
                if ctx.person is not None:
                    ctx.person.last_active_at = now
                    ctx.person.reminders_unanswered = 0  # they came back: reminders may resume
                    session.add(ctx.person)
            return ctx.replies

    @staticmethod
    def _remember_menu(ctx: Context) -> None:
        menus = [r for r in ctx.replies if isinstance(r, Menu)]
        if menus:
            ctx.state.menu = {"options": [[o.label, o.action, list(o.aliases)] for o in menus[-1].options]}
        elif ctx.replies:
            ctx.state.menu = None
