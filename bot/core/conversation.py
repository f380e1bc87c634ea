"""The conversation engine: one ``Incoming`` in, a list of ``Reply`` out.

For every update it
1. takes the user's lock (one update of a user at a time, users in parallel) and a slot among
   the updates in flight (the connection pool is sized to match);
2. downloads a photo first, outside any transaction, if the user's step takes one;
3. opens one short transaction: records the channel's event id (a repeat is dropped here) and
   loads the identity, its conversation state (locked) and the person — one statement on
   PostgreSQL, two on SQLite (``storage.people.open_update``, by the driver's own statements);
4. turns the update into a route: a command (``/tiendo``), an action (a pressed option), a
   reply that picks an option offered (``2``, ``b``, its label typed without diacritics, a
   keyword, a small typo: ``bot.core.choice``), words of confusion, a greeting or a cancel,
   free text for the current step, or an attachment. A *step-bound* action is honoured only
   while it is among the options the bot offered last; anything else is a stale press (or,
   when it is the press just handled, a repeat) and changes nothing;
5. runs the handler, remembers what it offered and asked (so a later "2" can pick from it, a
   stale press can be refused, a confused reply re-asked), saves the state with the identity's
   and the person's last contact (one statement on PostgreSQL: ``save_update``) and commits;
6. when the database was busy (SQLite's write lock, a PostgreSQL deadlock, an exhausted pool)
   runs the whole transaction again after a short pause, a few times, before apologising;
7. only then does the slow work handlers asked for (rendering a certificate, a report, a QR
   code): ``Later`` jobs, outside the transaction, off the event loop when CPU-bound.

An unexpected error rolls back, is logged with the update id (never the message text) and
the user gets one short apology. Progress is never half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from time import perf_counter
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import metrics
from bot.accounts import AccountDirectory, AccountInfo
from bot.core.choice import Picked, marks_for, pick
from bot.core.i18n import Catalog, Translate
from bot.core.messages import Capabilities, Incoming, Marks, Menu, Option, Reply, Text
from bot.core.text import fold
from bot.curriculum import LessonLibrary
from bot.delivery.quiet import QuietHours
from bot.reminders import ReminderPolicy, schedule_reminder
from storage.db import SessionFactory, retrying
from storage.driver import UpdateTransaction
from storage.models import ConversationState, Identity, Person, RoleKind
from storage.people import (
    create_user,
    find_identity,
    get_or_create_identity,
    get_person,
    lock_state,
    open_update,
    save_update,
)
from storage.roles import roles_of, roles_written

log = logging.getLogger(__name__)

MAX_ACTION_BYTES = 64  # Telegram's callback-data limit; anything longer is forged
DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
PROMPT_KEPT = 4000  # characters of the last question remembered for re-asking it


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock. Built once, by the composition root; everything else is handed a Clock."""

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
    # When reminders fall due (REMINDER_* settings): each saved person's next reminder moment.
    reminders: ReminderPolicy = field(default_factory=lambda: ReminderPolicy(ZoneInfo(DEFAULT_ZONE)))
    # Nothing is sent unasked in these local hours (nudges, help messages, broadcasts).
    quiet: QuietHours = field(default_factory=lambda: QuietHours(ZoneInfo(DEFAULT_ZONE), time(21), time(7)))
    # Where generated files (reports, charts, certificates, QR codes) and photos received
    # from admins are written before a reply carries their path.
    files_dir: Path = Path("data/files")
    # For https://t.me/<bot>?start=… links: the single-ward settings' bot; None until known
    # (setting or getMe). A ward's own bot is in ``accounts``.
    telegram_username: str | None = None
    # The channel accounts (bots) and the ward each serves (``bot.accounts``).
    accounts: AccountDirectory = field(default_factory=AccountDirectory)
    # Who signs the ward's Word documents: (title, name); an empty name leaves a dotted line.
    report_signer: tuple[str, str] = ("CHỦ TỊCH", "")
    # Messages per second each channel's sender keeps (TELEGRAM_RATE, ZALO_RATE): how long a
    # broadcast takes, in the composer. A channel not named here gets no estimate.
    send_rates: dict[str, float] = field(default_factory=dict)
    # Where the web dashboard is served (PUBLIC_BASE_URL, else http://127.0.0.1:WEB_PORT):
    # the start of the sign-in links ``/web`` sends.
    web_url: str = "http://127.0.0.1:8080"

    def bot_username(self, ward_id: int | None) -> str | None:
        """The @username of the Telegram bot a link for ``ward_id`` should open: the ward's own
        bot, else the bot serving every ward."""
        return self.accounts.telegram_username(ward_id) or self.telegram_username


@dataclass(frozen=True)
class Later:
    """Replies made after the update's transaction has committed: rendering a certificate, a
    report or a QR code must not hold the database. ``make`` gets a factory of read-only
    sessions; it returns files and texts (never a menu: what is offered is decided in the
    transaction)."""

    make: Callable[[SessionFactory], Awaitable[Sequence[Reply]]]


class _Media:
    """A photo downloaded before the transaction (see ``Conversation._prefetch``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.used = False

    def discard_unless_used(self) -> None:
        if self.path is not None and not self.used:
            self.path.unlink(missing_ok=True)


class Context:
    """One update being handled: what came in, who sent it, and the replies so far."""

    def __init__(
        self,
        *,
        incoming: Incoming,
        transaction: UpdateTransaction,
        identity: Identity,
        person: Person | None,
        state: ConversationState,
        services: Services,
        capabilities: Capabilities,
        now: datetime,
        media: _Media | None = None,
        role_kinds: frozenset[RoleKind] | None = None,
    ) -> None:
        self.incoming = incoming
        self._transaction = transaction
        self.identity = identity
        self.person = person
        self.state = state
        self.services = services
        self.capabilities = capabilities
        self.now = now
        self.args: tuple[str, ...] = ()
        self.replies: list[Reply | Later] = []
        self.erased = False  # the identity was deleted: nothing of it may be saved again
        # Set by a fallback that re-asked the pending question: the step stays the step and the
        # question the question (the options shown with it are what may be picked next).
        self.reoffered = False
        # Set by a fallback for a reply that picked nothing: a second miss in a row gets an example.
        self.missed = False
        # The options a typed reply could have meant (it matched several equally).
        self.candidates: tuple[Option, ...] = ()
        self._media = media
        # Read with the update's opening statement (for whoever was the person then).
        self._role_kinds = (person.id if person is not None else None, role_kinds)

    @property
    def transaction(self) -> UpdateTransaction:
        """The update's transaction, for what reads by the driver's statements while the
        session is unused (``storage.progress.progress_in``)."""
        return self._transaction

    @property
    def session(self) -> AsyncSession:
        """The update's database session, in its transaction (made when first asked for: an
        update that needs nothing but its own rows runs the driver's statements alone)."""
        return self._transaction.session

    @property
    def account(self) -> AccountInfo:
        """The channel account (bot) the update came through."""
        return self.services.accounts.get(self.incoming.channel)

    @property
    def ward_scope(self) -> int | None:
        """The ward of the bot the update came through (None: the bot serves every ward): a
        resident sees, joins and is invited to that ward's groups only."""
        return self.account.ward_id

    @property
    def t(self) -> Translate:
        return self.services.catalog.translator(self.person.locale if self.person else None)

    @property
    def lessons(self) -> LessonLibrary:
        return self.services.lessons

    @property
    def data(self) -> dict:
        return self.state.data

    async def role_kinds(self) -> frozenset[RoleKind]:
        """The kinds of role the person holds (what the menus offer them): as the update's
        opening statement read them, unless the person changed since (an account linked) or
        roles were granted or taken in this transaction. Authorising an action reads the role
        it needs itself (``storage.roles``)."""
        if self.person is None or self.person.id is None:
            return frozenset()
        read_for, kinds = self._role_kinds
        used = self._transaction.session_used
        if kinds is None or read_for != self.person.id or (used is not None and roles_written(used)):
            kinds = frozenset(RoleKind(role.kind) for role in await roles_of(self.session, person_id=self.person.id))
            self._role_kinds = (self.person.id, kinds)
        return kinds

    def say(self, text: str, *, replace: bool = False) -> None:
        self.replies.append(Text(text, replace=replace))

    def ask(
        self,
        text: str,
        options: Iterable[Option | tuple[str, str] | tuple[str, str, tuple[str, ...]]],
        *,
        columns: int = 1,
        replace: bool = False,
        marks: Marks | None = None,
    ) -> None:
        """Ask ``text`` with ``options``. ``marks``: letters for options picked by their content
        (quiz answers, groups); by default letters when ``text`` holds a numbered list of its
        own, else numbers (``bot.core.choice``)."""
        opts = tuple(o if isinstance(o, Option) else Option(*o) for o in options)
        self.replies.append(Menu(text, opts, columns=columns, replace=replace, marks=marks_for(text, marks)))

    def later(self, make: Callable[[SessionFactory], Awaitable[Sequence[Reply]]]) -> None:
        """Replies to make once the transaction has committed (files to render)."""
        self.replies.append(Later(make))

    def goto(self, step: str, **data: object) -> None:
        """Move to ``step`` with fresh step data (a new dict, so the JSON column is saved)."""
        self.state.step = step
        self.state.data = dict(data)

    async def fetch_media(self) -> Path | None:
        """The photo the user sent, if the channel can download it (None if not). It was
        fetched before the transaction began; the file is the caller's to keep once used. If
        handling fails, or no handler asks for it, the engine deletes it."""
        if self._media is None or self._media.path is None:
            return None
        self._media.used = True
        return self._media.path

    def pending_options(self) -> list[Option]:
        """The options of the last menu shown, which a typed reply may pick from."""
        return _options((self.state.menu or {}).get("options"))

    def extra_options(self) -> list[Option]:
        """Options of a proactive message (a reminder…) whose labels a typed reply may pick."""
        return _options((self.state.menu or {}).get("extra"))

    def pending_prompt(self) -> str | None:
        """The last thing the bot asked, to ask it again after a reply that answered nothing."""
        text = (self.state.menu or {}).get("text")
        return text if isinstance(text, str) and text else None

    def pending_marks(self) -> Marks:
        """How the options of the last menu were marked (a typed "b" or "2" reads by them)."""
        raw = (self.state.menu or {}).get("marks")
        return Marks(raw) if raw in set(Marks) else Marks.NUMBERS

    def misses(self) -> int:
        """Replies in a row, before this one, that picked nothing."""
        raw = (self.state.menu or {}).get("misses")
        return raw if isinstance(raw, int) and raw > 0 else 0

    def words(self, key: str) -> frozenset[str]:
        """A comma-separated list of words from the catalogue, folded ("thôi, hủy" → {"thoi", "huy"})."""
        return _folded_words(self.t(key))


# The times of a user's last contact (``Identity.last_seen_at``) and activity
# (``Person.last_active_at``) are kept to within this: a later one is written only once the one
# stored is older. What reads them counts in days (reminders after days without activity, Zalo's
# 7-day window — a stored time a minute early closes that window a minute early, never late) or
# shows them to the minute.
TOUCH_EVERY = timedelta(minutes=1)


def _stale(stored: datetime | None, now: datetime) -> bool:
    """Whether a stored time of last contact or activity should move to ``now`` (also when the
    clock was set back past it)."""
    return stored is None or abs(now - stored) >= TOUCH_EVERY


@lru_cache(maxsize=64)
def _folded_words(listed: str) -> frozenset[str]:
    # Typed text is checked against three such lists on every update; the catalogue's texts
    # never change while the process runs, so each list is folded once.
    return frozenset(w for w in (fold(word) for word in listed.split(",")) if w)


def _options(raw: object) -> list[Option]:
    if not isinstance(raw, list):
        return []
    return [Option(str(o[0]), str(o[1]), tuple(o[2]) if len(o) > 2 else ()) for o in raw
            if isinstance(o, list) and len(o) >= 2]


Handler = Callable[[Context], Awaitable[None]]
Predicate = Callable[[Context], Awaitable[bool]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    needs_person: bool = True
    # For actions: which may be pressed at any time (``True``: all of this prefix; a set: those
    # whose first argument is in it, "" for the bare prefix). Every other action is
    # *step-bound*: honoured only while it is one of the options the bot offered last.
    free: bool | frozenset[str] = False
    # May run while the person has consented but not yet given a name and a group.
    onboarding: bool = False

    def is_free(self, args: tuple[str, ...]) -> bool:
        if isinstance(self.free, bool):
            return self.free
        return (args[0] if args else "") in self.free


@dataclass
class Fallbacks:
    """Where input goes that no route takes. All of them must answer kindly."""

    text: Handler
    attachment: Handler
    unknown_command: Handler
    stale_action: Handler
    needs_start: Handler
    # A press of the button just handled (a double tap): acknowledge, change nothing.
    repeated_action: Handler
    # "tôi không hiểu", "giúp", "?": where she is, how to answer, a way out (any step).
    confused: Handler
    # "xin chào" (any step): a greeting, then the way on.
    greeted: Handler
    # "thôi", "hủy" typed (not an option's own word): leave the step, keep nothing typed.
    cancelled: Handler
    # A reply that could mean several of the options offered (``ctx.candidates``).
    ambiguous: Handler
    # Consent is given but the name or the group is still missing: ask for it.
    incomplete: Handler
    # Whether the person in the context has everything a member needs (a name, a group).
    onboarded: Predicate


@dataclass(frozen=True)
class Resolved:
    route: Route
    action: str | None = None  # the action honoured, remembered to recognise a repeat


class Router:
    """Routes in an explicit order: commands, actions (by prefix), steps, then fallbacks."""

    def __init__(self, fallbacks: Fallbacks) -> None:
        self.fallbacks = fallbacks
        self._commands: dict[str, Route] = {}
        self._actions: dict[str, Route] = {}
        self._steps: dict[str, Route] = {}
        self._media_steps: set[str] = set()

    def command(self, name: str, handler: Handler, *, needs_person: bool = True, onboarding: bool = False) -> None:
        self._commands[name.lower()] = Route(handler, needs_person, onboarding=onboarding)

    def action(
        self, prefix: str, handler: Handler, *, needs_person: bool = True, free: bool | Collection[str] = False,
        onboarding: bool = False,
    ) -> None:
        """Actions ``prefix[:args…]`` go to ``handler``. ``free`` names what may be pressed at
        any time (navigation, or an action authorised from the database alone, such as a
        button in a message the outbox sent); everything else is honoured only while offered."""
        if ":" in prefix:
            raise ValueError("an action prefix has no ':'")
        kinds = free if isinstance(free, bool) else frozenset(free)
        self._actions[prefix] = Route(handler, needs_person, kinds, onboarding)

    def step(self, step: str, handler: Handler, *, needs_person: bool = False, media: bool = False,
             onboarding: bool = False) -> None:
        """Free text in ``step`` goes to ``handler``; with ``media``, attachments do too
        (the handler may fetch a photo with ``ctx.fetch_media()``)."""
        self._steps[str(step)] = Route(handler, needs_person, onboarding=onboarding)
        if media:
            self._media_steps.add(str(step))

    @property
    def commands(self) -> list[str]:
        return list(self._commands)

    @property
    def text_steps(self) -> list[str]:
        """The steps that take free text (a name, a question, a search…)."""
        return list(self._steps)

    def takes_media(self, step: str | None) -> bool:
        return step in self._media_steps

    def resolve(self, ctx: Context) -> Resolved:
        incoming = ctx.incoming
        if incoming.attachment:
            if ctx.state.step in self._media_steps:  # it says so itself if it got no file
                return Resolved(self._steps[ctx.state.step])
            return Resolved(Route(self.fallbacks.attachment, needs_person=False))
        if incoming.action is not None:
            return self._resolve_action(ctx, incoming.action, offered=self._offered(ctx))
        if incoming.start_param is not None and not incoming.text:
            ctx.args = (incoming.start_param,)
            return Resolved(self._commands.get("start") or Route(self.fallbacks.unknown_command, False))
        text = (incoming.text or "").strip()
        if text.startswith("/") and len(text) > 1:
            name, _, rest = text[1:].partition(" ")
            name = fold(name.split("@", 1)[0]).replace(" ", "_")
            ctx.args = tuple(rest.split())
            return Resolved(self._commands.get(name) or Route(self.fallbacks.unknown_command, needs_person=False))
        return self._resolve_text(ctx, text)

    def _resolve_text(self, ctx: Context, text: str) -> Resolved:
        """Typed text, in this order: an exact pick of an offered option (its mark, label or
        alias); words of confusion, a greeting or a cancel ("thôi", "hủy": never a name or a
        question); the current step's own text; a loose pick (a keyword, a small typo); else
        the fallback, which helps."""
        exact = self._typed_choice(ctx, text, loose=False)
        if exact.option is not None:
            return self._resolve_action(ctx, exact.option.action, offered=None)
        typed = fold(text)
        if not typed and text.strip("?？ ") == "" or typed in ctx.words("words.confused"):
            return Resolved(Route(self.fallbacks.confused, needs_person=False))
        if typed in ctx.words("words.greeting"):
            return Resolved(Route(self.fallbacks.greeted, needs_person=False))
        if typed in ctx.words("words.cancel"):
            return Resolved(Route(self.fallbacks.cancelled, needs_person=False))
        route = self._steps.get(ctx.state.step)
        if route is not None:
            return Resolved(route)
        loose = self._typed_choice(ctx, text, loose=True)
        if loose.option is not None:
            return self._resolve_action(ctx, loose.option.action, offered=None)
        if loose.ambiguous:
            ctx.candidates = loose.candidates
            return Resolved(Route(self.fallbacks.ambiguous, needs_person=False))
        return Resolved(Route(self.fallbacks.text, needs_person=False))

    @staticmethod
    def _offered(ctx: Context) -> set[str]:
        return {o.action for o in ctx.pending_options()} | {o.action for o in ctx.extra_options()}

    def _resolve_action(self, ctx: Context, action: str, *, offered: set[str] | None) -> Resolved:
        """``offered``: the actions a press may take now (None: the action was picked from
        them by a typed reply, so it is offered by construction)."""
        prefix, _, rest = action.partition(":")
        route = self._actions.get(prefix)
        if route is None or len(action.encode("utf-8")) > MAX_ACTION_BYTES:
            return Resolved(Route(self.fallbacks.stale_action, needs_person=False))
        args = tuple(rest.split(":")) if rest else ()
        if offered is not None and action not in offered and not route.is_free(args):
            if action == (ctx.state.menu or {}).get("last"):
                return Resolved(Route(self.fallbacks.repeated_action, needs_person=False))
            return Resolved(Route(self.fallbacks.stale_action, needs_person=False))
        ctx.args = args
        return Resolved(route, action)

    @staticmethod
    def _typed_choice(ctx: Context, text: str, *, loose: bool) -> Picked:
        """The offered option the user's text picks (``bot.core.choice``); the labels of a
        proactive message's options too."""
        return pick(text, ctx.pending_options(), marks=ctx.pending_marks(), extra=ctx.extra_options(), loose=loose)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it. Waiters are served
    in the order they came (asyncio.Lock is fair)."""

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
        engine: AsyncEngine,
        sessions: SessionFactory,
        services: Services,
        read_sessions: SessionFactory | None = None,
        in_flight: int = 16,
        attempts: int = 6,
        reraise: bool = False,
        one_writer: bool = False,
    ) -> None:
        """``engine``: where the update's transaction runs (``storage.driver.UpdateTransaction``:
        its own rows by the driver's statements, a session joined when a handler asks);
        ``sessions``: for other writes of the engine (a block flag; on SQLite they should begin
        with the write lock: ``storage.db.immediate_session_factory``); ``read_sessions``: for reading before
        it (a step's need of a photo) and for ``Later`` jobs. ``in_flight``: updates handled at
        once (each holds a database connection while in its transaction); ``attempts``: tries
        of an update's transaction when the database is busy. ``one_writer`` (SQLite, whose file
        has one write lock): the updates' transactions queue for it here, in order, instead of in
        SQLite's busy handler, which sleeps 1 ms … 100 ms between tries however soon it frees."""
        self.router = router
        self.engine = engine
        self.sessions = sessions
        self.read_sessions = read_sessions or sessions
        self.services = services
        self.attempts = attempts
        self.reraise = reraise  # tests set it, so an unexpected error fails the test
        self._locks = KeyedLocks()
        self._slots = asyncio.Semaphore(in_flight)
        self._writer_lock = asyncio.Lock() if one_writer else None

    async def handle(self, incoming: Incoming, capabilities: Capabilities) -> Sequence[Reply]:
        """The replies to ``incoming``, after its effects are committed. An event already handled
        (same ``event_id``) gives no replies."""
        started = perf_counter()
        try:
            async with self._locks.hold(incoming.key), self._slots:
                media = await self._prefetch(incoming)
                try:
                    replies = await retrying(lambda: self._handle_once(incoming, capabilities, media),
                                             attempts=self.attempts, what=f"update {incoming.update_id}")
                finally:
                    if media is not None:
                        media.discard_unless_used()
            made = await self._make_later(replies, incoming)
            metrics.UPDATES.labels(channel=incoming.channel, result="ok").inc()
            return made
        except Exception:
            metrics.UPDATES.labels(channel=incoming.channel, result="error").inc()
            if self.reraise:
                raise
            # The text of the update is personal data; the ids are enough to find it.
            log.exception("update %s on %s failed", incoming.update_id, incoming.channel)
            return [Text(self.services.catalog.text("error.apology"))]
        finally:
            metrics.HANDLER_SECONDS.labels(channel=incoming.channel).observe(perf_counter() - started)

    async def set_blocked(self, channel: str, external_id: str, *, blocked: bool) -> None:
        """The channel told us the user blocked (or unblocked) the bot."""
        now = self.services.clock.now()

        async def work() -> None:
            async with self.sessions() as session, session.begin():
                identity = await find_identity(session, channel=channel, external_id=external_id)
                if identity is not None:
                    identity.blocked_at = now if blocked else None
                    session.add(identity)

        await retrying(work, attempts=self.attempts, what="block flag")

    async def _prefetch(self, incoming: Incoming) -> _Media | None:
        """Download a photo before the transaction, when the user's step takes one: a download
        must never hold the database (on SQLite, every other resident would wait)."""
        if incoming.fetch_media is None:
            return None
        async with self.read_sessions() as session:
            step = (await session.exec(
                select(ConversationState.step)
                .join(Identity, Identity.id == ConversationState.identity_id)  # type: ignore[arg-type]
                .where(Identity.channel == incoming.channel, Identity.external_id == incoming.external_id)
            )).first()
        if not self.router.takes_media(step):
            return None  # residents' photos (an ID card, a bank screen) are never downloaded
        return _Media(await incoming.fetch_media())

    def _writer(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self._writer_lock if self._writer_lock is not None else contextlib.nullcontext()

    async def _handle_once(self, incoming: Incoming, capabilities: Capabilities, media: _Media | None) -> list[Reply | Later]:
        now = self.services.clock.now()
        if media is not None:
            media.used = False  # a retried transaction decides afresh
        async with self._writer(), UpdateTransaction(self.engine) as tx:
            fresh, known = await open_update(tx, channel=incoming.channel, external_id=incoming.external_id,
                                             event_id=incoming.event_id, now=now)
            if not fresh:
                log.info("update %s on %s was handled before; dropped", incoming.update_id, incoming.channel)
                return []
            if known is None:  # someone new: an identity and a state, by the driver too
                known = await create_user(tx, channel=incoming.channel, external_id=incoming.external_id, now=now)
            role_kinds: frozenset[RoleKind] | None = None
            if known is not None:
                identity, state, person, role_kinds = known
                tx.attach(*(row for row in (identity, state, person) if row is not None))
            else:
                session = tx.session
                identity = await get_or_create_identity(
                    session, channel=incoming.channel, external_id=incoming.external_id, now=now
                )
                assert identity.id is not None
                state = await lock_state(session, identity_id=identity.id, now=now)
                person = await get_person(session, person_id=identity.person_id)
            ctx = Context(
                incoming=incoming, transaction=tx, identity=identity, person=person, state=state,
                services=self.services, capabilities=capabilities, now=now, media=media, role_kinds=role_kinds,
            )
            resolved = self.router.resolve(ctx)
            route = await self._admit(ctx, resolved.route)
            await route.handler(ctx)
            if not ctx.erased:
                self._remember(ctx, resolved.action if route is resolved.route else None)
                state.version += 1
                state.updated_at = now
                # Touched after the handler, so that no query of the handler flushes them early:
                # the three rows are written together, at the end (one statement on PostgreSQL).
                self._touch(ctx)
                await save_update(tx, state=state, identity=identity, person=ctx.person)
            return ctx.replies

    def _touch(self, ctx: Context) -> None:
        """Whoever writes to the bot was seen and active now, has not blocked it, and answered
        the reminders; their next reminder moves. Only what changes is set, and the times of
        last contact and activity at most once a :data:`TOUCH_EVERY` (a resident reading
        cards writes neither row on every card): the identity's and the person's rows are
        written only when something of theirs changed (``save_update``)."""
        now, identity, person = ctx.now, ctx.identity, ctx.person
        if _stale(identity.last_seen_at, now):
            identity.last_seen_at = now  # Zalo OA may message a user only within 7 days of this
        if identity.blocked_at is not None:
            identity.blocked_at = None  # whoever writes to the bot has not blocked it
        if person is None:
            return
        if _stale(person.last_active_at, now):
            person.last_active_at = now
        if person.reminders_unanswered:
            person.reminders_unanswered = 0  # they came back: reminders may resume
        # After the handler: its changes of the reminder settings or consent count too.
        schedule_reminder(person, self.services.reminders)

    async def _admit(self, ctx: Context, route: Route) -> Route:
        """The route to run for this person: consent first, then a name and a group."""
        fallbacks = self.router.fallbacks
        if not route.needs_person:
            return route
        if ctx.person is None:
            return Route(fallbacks.needs_start, needs_person=False)
        if not route.onboarding and not await fallbacks.onboarded(ctx):
            return Route(fallbacks.incomplete)
        return route

    @staticmethod
    def _remember(ctx: Context, action: str | None) -> None:
        """What the bot offered and asked last: the options a typed reply picks (and the only
        step-bound actions honoured next) and how they were marked, the question to re-ask
        after a confused reply, the replies in a row that picked nothing, and the action just
        honoured (a second press of it is a repeat)."""
        old: dict[str, Any] = dict(ctx.state.menu or {})
        new: dict[str, Any] = {k: old[k] for k in ("extra",) if old.get(k)}
        shown = [r for r in ctx.replies if isinstance(r, Text | Menu)]
        menus = [r for r in shown if isinstance(r, Menu)]
        asked = menus[-1] if menus and menus[-1] is shown[-1] else None
        if not shown or ctx.reoffered:
            # Nothing new was asked (a repeat acknowledged, a question asked again): the
            # question stays, and so do its options unless they were shown again (with a way
            # out added: those may be picked now).
            new.update({k: old[k] for k in ("options", "text", "marks") if k in old})
        else:
            new["text"] = shown[-1].text[:PROMPT_KEPT]
        if asked is not None:
            new["options"] = [[o.label, o.action, list(o.aliases)] for o in asked.options]
            new["marks"] = str(asked.marks)
        if ctx.missed:
            new["misses"] = ctx.misses() + 1
        last = action or old.get("last")
        if last:
            new["last"] = last
        ctx.state.menu = new or None

    async def _make_later(self, replies: Sequence[Reply | Later], incoming: Incoming) -> list[Reply]:
        """Run the ``Later`` jobs in order, outside any transaction; a job that fails becomes a
        short apology in its place (what was committed stays committed)."""
        made: list[Reply] = []
        for reply in replies:
            if not isinstance(reply, Later):
                made.append(reply)
                continue
            try:
                produced = list(await reply.make(self.read_sessions))
            except Exception:
                if self.reraise:
                    raise
                log.exception("a file for update %s on %s could not be made", incoming.update_id, incoming.channel)
                produced = [Text(self.services.catalog.text("error.file_failed"))]
            assert not any(isinstance(r, Menu) for r in produced), "a Later job must not offer options"
            made.extend(produced)
        return made

