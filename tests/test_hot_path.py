"""The resident's hot path (issue 12 §3): how many SQL statements one update costs, and that the
statements cut from it kept their behaviour.

Every statement of an update is work done while the user's state is locked — a network round
trip on PostgreSQL; on SQLite, while every other resident of the process waits for the write lock,
a call on the loop's thread for the driver's statements and a trip to aiosqlite's thread for a
session's — so the count is what bounds the updates a process handles per second
(docs/benchmarks.md, "Updates per second"). These tests count the statements the driver
executes (``COMMIT`` included) for the benchmark's resident journey and fail if the count grows
back; they never time anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import itertools

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session
from sqlmodel import select

from bot.app import App
from bot.core.messages import Incoming, Menu
from storage import driver
from storage.models import ConversationState, Identity, LessonProgress, Person
from tests.conftest import seed_demo_groups
from tests.support import BUTTONS, ManualClock
from tests.test_sqlite_driver import trips
from tests.test_transactions import _write_lock_is_free

# Statements per update, COMMIT included, as the driver sees them.
BUDGET = {
    "sqlite": {"greeting": 8, "card": 7},
    "postgresql": {"greeting": 6, "card": 5},
}


@contextmanager
def counted(app: App) -> Iterator[list[str]]:
    """The SQL statements (and commits) sent to the database while the block runs."""
    seen: list[str] = []

    def statement(_conn, _cursor, sql, _parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append(" ".join(sql.split())[:80])

    def begin(_conn) -> None:  # type: ignore[no-untyped-def]
        if postgresql:  # asyncpg sends its BEGIN itself; SQLite's shows as a statement
            seen.append("BEGIN")

    def commit(_conn) -> None:  # type: ignore[no-untyped-def]
        seen.append("COMMIT")

    engine = app.engine.sync_engine
    postgresql = engine.dialect.name == "postgresql"
    listeners = (("before_cursor_execute", statement), ("begin", begin), ("commit", commit))
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


@contextmanager
def orm_used() -> Iterator[list[str]]:
    """What the ORM ran (statements, sessions begun) while the block runs, in any session."""
    orm: list[str] = []

    def executed(state) -> None:  # type: ignore[no-untyped-def]
        orm.append(str(state.statement)[:60])

    def began(_session, _transaction, _connection) -> None:  # type: ignore[no-untyped-def]
        orm.append("session began")

    event.listen(Session, "do_orm_execute", executed)
    event.listen(Session, "after_begin", began)
    try:
        yield orm
    finally:
        event.remove(Session, "do_orm_execute", executed)
        event.remove(Session, "after_begin", began)


class Resident:
    """A Telegram-like user whose every update carries an event id, as the adapters' do."""

    def __init__(self, app: App, clock: ManualClock, user: str = "7001") -> None:
        self.app, self.clock, self.user = app, clock, user
        self.updates = 0

    def incoming(self, text: str, *, event_id: str | None = None) -> Incoming:
        self.updates += 1
        return Incoming(channel="telegram", external_id=self.user, display_name="Lan", text=text,
                        update_id=str(self.updates), event_id=event_id or f"{self.user}-{self.updates}")

    async def send(self, text: str, *, event_id: str | None = None) -> list:  # type: ignore[type-arg]
        self.clock.advance(seconds=10)  # the touches (last seen, last active) change every time
        return list(await self.app.conversation.handle(self.incoming(text, event_id=event_id), BUTTONS))

    async def join_and_open_lesson(self) -> None:
        """The benchmark's opening: join a group by typed answers, then "Học tiếp"."""
        for said in ("/start g_DEMO-TDP03", "1", "1", "1", "1"):
            await self.send(said)


async def _row(app: App, model, *where):  # type: ignore[no-untyped-def]
    async with app.sessions() as session:
        return (await session.exec(select(model).where(*where))).one()


async def test_a_residents_update_costs_a_fixed_few_statements(any_app: App, clock: ManualClock) -> None:
    await seed_demo_groups(any_app)
    dialect = any_app.engine.dialect.name
    lan = Resident(any_app, clock)
    await lan.join_and_open_lesson()

    with counted(any_app) as card:
        replies = await lan.send("tiếp")
    assert isinstance(replies[0], Menu) and "(Trang 2/" in replies[0].text
    with counted(any_app) as greeting:
        replies = await lan.send("xin chào")
    assert "Lan" in replies[0].text

    assert len(card) <= BUDGET[dialect]["card"], card
    assert len(greeting) <= BUDGET[dialect]["greeting"], greeting


async def test_every_update_still_writes_state_touches_and_progress(any_app: App, clock: ManualClock) -> None:
    """What the fewer statements still write, every time: the state (step, data, menu, version,
    time), the card reached, the reminder reset and the block lifted; the times of last contact
    and activity (and with them the next reminder) once they are a minute old."""
    await seed_demo_groups(any_app)
    lan = Resident(any_app, clock)
    await lan.join_and_open_lesson()
    identity = await _row(any_app, Identity, Identity.external_id == lan.user)
    before = await _row(any_app, ConversationState, ConversationState.identity_id == identity.id)
    seen, active = identity.last_seen_at, (await _row(any_app, Person, Person.id == identity.person_id)).last_active_at
    async with any_app.sessions() as session, session.begin():
        await session.exec(text("UPDATE person SET reminders_unanswered = 2"))  # type: ignore[call-overload]
        await session.exec(text("UPDATE identity SET blocked_at = last_seen_at"))  # type: ignore[call-overload]

    await lan.send("tiếp")  # 10 s after the last update

    identity = await _row(any_app, Identity, Identity.external_id == lan.user)
    state = await _row(any_app, ConversationState, ConversationState.identity_id == identity.id)
    person = await _row(any_app, Person, Person.id == identity.person_id)
    progress = await _row(any_app, LessonProgress, LessonProgress.person_id == person.id)
    assert (state.version, state.updated_at) == (before.version + 1, clock.now())
    assert (state.step, state.data["card"]) == ("lesson", 1) and state.menu and state.menu["options"]
    assert (identity.last_seen_at, identity.blocked_at) == (seen, None)  # seen 10 s ago: kept
    assert (person.last_active_at, person.reminders_unanswered) == (active, 0)
    assert person.next_reminder_at is not None and person.next_reminder_at > clock.now()
    assert (progress.card, progress.updated_at, progress.status) == (1, clock.now(), "in_progress")
    started, planned = progress.started_at, person.next_reminder_at

    clock.advance(days=1)
    await lan.send("xin chào")
    identity = await _row(any_app, Identity, Identity.id == identity.id)
    person = await _row(any_app, Person, Person.id == person.id)
    assert identity.last_seen_at == person.last_active_at == clock.now()
    assert person.next_reminder_at is not None and person.next_reminder_at > planned  # a day later

    await lan.send("1")  # "📖 Học tiếp": the card she read last
    progress = await _row(any_app, LessonProgress, LessonProgress.person_id == person.id)
    assert (progress.card, progress.started_at) == (1, started)


async def test_the_rows_saved_by_hand_leave_nothing_for_the_unit_of_work(any_app: App, clock: ManualClock) -> None:
    """The state, the identity and the person are written by the update's own statements and
    are clean afterwards: the commit does not flush them again (a flush that finds nothing to
    write still costs about what a statement does)."""
    await seed_demo_groups(any_app)
    lan = Resident(any_app, clock)
    await lan.join_and_open_lesson()
    flushed: list[set[str]] = []

    def before_flush(session, _context, _instances) -> None:  # type: ignore[no-untyped-def]
        flushed.append({type(row).__name__ for row in (*session.dirty, *session.new, *session.deleted)})

    event.listen(Session, "before_flush", before_flush)
    try:
        clock.advance(minutes=1)  # the touches are written too
        await lan.send("tiếp")
        await lan.send("xin chào")
    finally:
        event.remove(Session, "before_flush", before_flush)
    assert flushed == [], flushed


async def test_a_residents_touches_move_at_most_once_a_minute(any_app: App, clock: ManualClock) -> None:
    """A resident reading card after card writes the identity's and the person's rows once a
    minute, not on every card; the statements of an update show it."""
    await seed_demo_groups(any_app)
    lan = Resident(any_app, clock)
    await lan.join_and_open_lesson()
    clock.advance(seconds=50)
    with counted(any_app) as quick:
        await lan.send("tiếp")  # a minute after the last touch: written
    identity = await _row(any_app, Identity, Identity.external_id == lan.user)
    person = await _row(any_app, Person, Person.id == identity.person_id)
    assert identity.last_seen_at == person.last_active_at == clock.now()
    with counted(any_app) as within:
        await lan.send("tiếp")  # 10 s later: not

    assert any("UPDATE identity" in sql for sql in quick), quick
    assert not any(word in sql for sql in within for word in ("UPDATE identity", "UPDATE person", "touched")), within
    assert (await _row(any_app, Identity, Identity.id == identity.id)).last_seen_at == clock.now() - timedelta(seconds=10)
    assert (await _row(any_app, Person, Person.id == person.id)).last_active_at == clock.now() - timedelta(seconds=10)


async def test_an_event_delivered_twice_is_handled_once(any_app: App, clock: ManualClock) -> None:
    """A redelivery (same event id) changes nothing and says nothing, also for a known resident
    whose state the first delivery moved."""
    await seed_demo_groups(any_app)
    lan = Resident(any_app, clock)
    await lan.join_and_open_lesson()
    clock.advance(minutes=1)  # the last contact is written with this update
    assert await lan.send("tiếp", event_id="once")
    identity = await _row(any_app, Identity, Identity.external_id == lan.user)
    state = await _row(any_app, ConversationState, ConversationState.identity_id == identity.id)

    assert await lan.send("tiếp", event_id="once") == []

    again = await _row(any_app, ConversationState, ConversationState.identity_id == identity.id)
    assert (again.version, again.data) == (state.version, state.data)
    assert (await _row(any_app, Identity, Identity.id == identity.id)).last_seen_at == clock.now() - timedelta(seconds=10)


async def test_a_first_contact_delivered_twice_is_handled_once(any_app: App, clock: ManualClock) -> None:
    await seed_demo_groups(any_app)
    lan = Resident(any_app, clock)
    assert await lan.send("/start g_DEMO-TDP03", event_id="first")
    assert await lan.send("/start g_DEMO-TDP03", event_id="first") == []
    identity = await _row(any_app, Identity, Identity.external_id == lan.user)
    state = await _row(any_app, ConversationState, ConversationState.identity_id == identity.id)
    assert state.version == 1


async def test_on_sqlite_the_event_insert_takes_the_write_lock_before_anything_is_read(
    app: App, clock: ManualClock
) -> None:
    """Without its own ``BEGIN IMMEDIATE`` an update still holds SQLite's write lock from its
    first statement on: when the user's state is read, another writer cannot get in."""
    await seed_demo_groups(app)
    free_when_reading: list[bool] = []

    def statement(_conn, _cursor, sql, _parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if sql.lstrip().startswith("SELECT identity.id") and "JOIN conversation_state" in sql:  # as the update opens
            free_when_reading.append(_write_lock_is_free(app))

    engine = app.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    try:
        lan = Resident(app, clock)
        await lan.send("/start g_DEMO-TDP03")
        await lan.send("1")
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert free_when_reading == [False, False]


async def test_a_card_and_a_greeting_run_the_drivers_statements_alone(any_app: App, clock: ManualClock) -> None:
    """A known resident's card and greeting read and write only her own rows and her progress:
    by the driver's prepared statements (``storage.driver``), no ORM session made or run — what
    a session costs per statement is most of what such an update costs (docs/benchmarks.md)."""
    await seed_demo_groups(any_app)
    lan = Resident(any_app, clock)
    await lan.join_and_open_lesson()
    clock.advance(minutes=1)  # the touches are written too
    with orm_used() as orm, counted(any_app) as statements:
        card = await lan.send("tiếp")
        greeting = await lan.send("xin chào")

    assert orm == [], orm
    assert isinstance(card[0], Menu) and "(Trang 2/" in card[0].text and "Lan" in greeting[0].text
    assert any(sql.startswith("INSERT INTO lesson_progress") for sql in statements), statements
    progress = await _row(any_app, LessonProgress, LessonProgress.person_id.is_not(None))  # type: ignore[union-attr]
    assert (progress.card, progress.updated_at) == (1, clock.now() - timedelta(seconds=10))


async def test_on_sqlite_a_card_and_a_greeting_make_no_trip_to_aiosqlites_thread(
        app: App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a known resident's update runs its statements and its commit on the event
    loop's thread (``storage.driver``): every trip to aiosqlite's thread would be taken with the
    one writer's lock held, every other resident's update waiting for the loop to come back."""
    await seed_demo_groups(app)
    lan = Resident(app, clock)
    await lan.join_and_open_lesson()
    monkeypatch.setattr(driver, "_commits", itertools.count(1), raising=False)  # not the commit that checkpoints
    with trips(monkeypatch) as made:
        card = await lan.send("tiếp")
        greeting = await lan.send("xin chào")
    assert made == []
    assert isinstance(card[0], Menu) and "(Trang 2/" in card[0].text and "Lan" in greeting[0].text
    progress = await _row(app, LessonProgress, LessonProgress.person_id.is_not(None))  # type: ignore[union-attr]
    assert progress.card == 1  # committed


async def test_a_newcomers_start_runs_the_drivers_statements_alone(any_app: App, clock: ManualClock) -> None:
    """Someone new who taps the join link: the identity and the state made by two inserts of the
    driver (``storage.people.create_user``), no ORM session — it was the dearest update of the
    benchmark's flow (docs/benchmarks.md, "Sixth round")."""
    await seed_demo_groups(any_app)
    with orm_used() as orm:
        replies = await Resident(any_app, clock).send("/start g_DEMO-TDP03")
    assert orm == [], orm
    assert isinstance(replies[-1], Menu) and "đồng ý" in replies[-1].text.lower()
    state = await _row(any_app, ConversationState, ConversationState.id.is_not(None))  # type: ignore[union-attr]
    assert state.step == "consent" and state.data["group_code"] == "DEMO-TDP03" and state.version == 1
