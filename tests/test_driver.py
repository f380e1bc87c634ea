"""``storage.driver``: an update's own rows by the driver's prepared statements, on both databases.

What the engine relies on: the rows made from the driver's values are the rows the ORM loads
(aware UTC times, JSON, booleans, NULLs); a session made later in the transaction has those very
objects and writes what changed on them; an error rolls back the driver's writes and the
session's together; and the driver's own errors are known as "busy" or not as SQLAlchemy's are.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.app import App
from storage.db import is_busy
from storage.driver import DriverLost, UpdateTransaction
from storage.models import ConversationState, Identity, LessonProgress, Person
from storage.people import _known_statement, create_user, open_update, save_update
from storage.progress import _progress_statement

NOW = datetime(2026, 12, 4, 9, 30, 15, 123456, tzinfo=UTC)


async def _resident(app: App) -> tuple[int, int]:
    """A resident with every kind of value set: returns (person id, identity id)."""
    async with app.sessions() as session, session.begin():
        person = Person(display_name="Bà Tư", locale="vi", consent_at=NOW, consent_version="2025-1", reminder_hour=7,
                        reminders_on=False, created_at=NOW, last_active_at=NOW - timedelta(days=2))
        session.add(person)
        await session.flush()
        identity = Identity(channel="telegram", external_id="42", person_id=person.id, created_at=NOW, last_seen_at=NOW)
        session.add(identity)
        await session.flush()
        session.add(ConversationState(identity_id=identity.id, step="lesson",
                                      data={"lesson": "vneid", "card": 2, "chữ": "có dấu"},
                                      menu={"options": [["📖 Học tiếp", "resume", []]], "last": "menu"},
                                      version=7, updated_at=NOW))
        session.add(LessonProgress(person_id=person.id, lesson_id="vneid", lesson_version=3, card=2,
                                   started_at=NOW, updated_at=NOW))
        assert person.id is not None and identity.id is not None
        return person.id, identity.id


def _columns(row: object) -> dict[str, object]:
    return {key: value for key, value in vars(row).items() if not key.startswith("_")}


async def test_the_drivers_rows_are_the_rows_the_orm_loads(any_app: App) -> None:
    person_id, identity_id = await _resident(any_app)
    async with any_app.sessions() as session:
        loaded = [
            (await session.exec(select(Identity).where(Identity.id == identity_id))).one(),
            (await session.exec(select(ConversationState).where(ConversationState.identity_id == identity_id))).one(),
            (await session.exec(select(Person).where(Person.id == person_id))).one(),
            (await session.exec(select(LessonProgress).where(LessonProgress.person_id == person_id))).one(),
        ]

    async with UpdateTransaction(any_app.engine) as tx:
        fresh, known = await open_update(tx, channel="telegram", external_id="42", event_id="e-1", now=NOW)
        progress = await tx.objects(LessonProgress, _progress_statement(False), {"person_id": person_id})

    assert fresh and known is not None
    made = [known.identity, known.state, known.person, *progress]
    assert [_columns(row) for row in made] == [_columns(row) for row in loaded]
    assert known.person is not None and known.person.consent_at == NOW and known.person.consent_at.tzinfo is not None
    assert known.person.reminders_on is False and known.person.deleted_at is None
    assert known.state.data["chữ"] == "có dấu" and known.role_kinds == frozenset()


async def test_a_second_delivery_of_an_event_is_known_by_the_driver(any_app: App) -> None:
    await _resident(any_app)
    for expected in (True, False):
        async with UpdateTransaction(any_app.engine) as tx:
            fresh, _ = await open_update(tx, channel="telegram", external_id="42", event_id="same", now=NOW)
        assert fresh is expected


async def test_a_session_made_later_has_the_drivers_objects_and_writes_their_changes(any_app: App) -> None:
    person_id, identity_id = await _resident(any_app)
    async with UpdateTransaction(any_app.engine) as tx:
        _, known = await open_update(tx, channel="telegram", external_id="42", event_id="e-2", now=NOW)
        assert known is not None and known.person is not None
        tx.attach(known.identity, known.state, known.person)
        assert tx.session_used is None
        known.person.display_name = "Bà Tư Hiền"  # changed before the session exists
        assert await tx.session.get(Person, person_id) is known.person
        known.state.step = "menu"
        known.state.version += 1
        await save_update(tx, state=known.state, identity=known.identity, person=known.person)

    async with any_app.sessions() as session:
        person = await session.get(Person, person_id)
        state = (await session.exec(select(ConversationState).where(ConversationState.identity_id == identity_id))).one()
    assert person is not None and person.display_name == "Bà Tư Hiền"
    assert (state.step, state.version) == ("menu", 8)


async def test_the_drivers_save_writes_the_state_and_touches_alone(any_app: App) -> None:
    person_id, identity_id = await _resident(any_app)
    later = NOW + timedelta(minutes=5)
    async with UpdateTransaction(any_app.engine) as tx:
        _, known = await open_update(tx, channel="telegram", external_id="42", event_id="e-3", now=later)
        assert known is not None and known.person is not None
        known.state.menu = {"text": "Chào bà 👋", "options": [["1", "a", []]]}
        known.state.version += 1
        known.state.updated_at = later
        known.identity.last_seen_at = later
        known.person.last_active_at = later
        await save_update(tx, state=known.state, identity=known.identity, person=known.person)
        assert tx.session_used is None  # the driver's statements alone

    async with any_app.sessions() as session:
        person = await session.get(Person, person_id)
        identity = await session.get(Identity, identity_id)
        state = (await session.exec(select(ConversationState).where(ConversationState.identity_id == identity_id))).one()
    assert state.menu == {"text": "Chào bà 👋", "options": [["1", "a", []]]} and state.version == 8
    assert state.updated_at == identity.last_seen_at == person.last_active_at == later  # type: ignore[union-attr]
    assert person.display_name == "Bà Tư" and person.reminder_hour == 7  # type: ignore[union-attr]


async def test_the_drivers_save_writes_what_a_handler_set_and_the_session_writes_it_not_again(any_app: App) -> None:
    """A joining step sets a name and a group (and a session was used for reading the groups):
    the save writes those columns by the driver, the state's and the touches with them; the
    session, flushing at the commit, finds the three rows clean."""
    person_id, identity_id = await _resident(any_app)
    later = NOW + timedelta(minutes=5)
    flushed: list[str] = []
    async with UpdateTransaction(any_app.engine) as tx:
        _, known = await open_update(tx, channel="telegram", external_id="42", event_id="e-7", now=later)
        assert known is not None and known.person is not None
        tx.attach(known.identity, known.state, known.person)
        await tx.session.exec(select(Person.id))  # a handler's read: the rows are in the session now
        event.listen(tx.session.sync_session, "before_flush",
                     lambda session, *_: flushed.extend(type(row).__name__ for row in session.dirty))
        known.person.display_name = "Nguyễn Thị Tư"
        known.person.reminder_hour = 8
        known.identity.last_seen_at = later
        known.state.step = "menu"
        known.state.version += 1
        await save_update(tx, state=known.state, identity=known.identity, person=known.person)
    async with any_app.sessions() as session:
        person = await session.get(Person, person_id)
        identity = await session.get(Identity, identity_id)
        state = (await session.exec(select(ConversationState).where(ConversationState.identity_id == identity_id))).one()
    assert flushed == []
    assert person is not None
    assert (person.display_name, person.reminder_hour, person.consent_version) == ("Nguyễn Thị Tư", 8, "2025-1")
    assert identity.last_seen_at == later and (state.step, state.version) == ("menu", 8)  # type: ignore[union-attr]


async def test_an_error_rolls_back_the_drivers_writes_and_the_sessions(any_app: App) -> None:
    person_id, identity_id = await _resident(any_app)
    with pytest.raises(RuntimeError):
        async with UpdateTransaction(any_app.engine) as tx:
            _, known = await open_update(tx, channel="telegram", external_id="42", event_id="e-4", now=NOW)
            assert known is not None and known.person is not None
            tx.attach(known.identity, known.state, known.person)
            known.state.version += 1
            await save_update(tx, state=known.state, identity=known.identity, person=known.person)
            tx.session.add(LessonProgress(person_id=person_id, lesson_id="scam", lesson_version=1, started_at=NOW,
                                          updated_at=NOW))
            await tx.session.flush()
            raise RuntimeError("the handler failed")

    async with any_app.sessions() as session:
        state = (await session.exec(select(ConversationState).where(ConversationState.identity_id == identity_id))).one()
        lessons = (await session.exec(select(LessonProgress.lesson_id))).all()
    assert state.version == 7 and lessons == ["vneid"]
    async with UpdateTransaction(any_app.engine) as tx:  # the event was not recorded either
        fresh, _ = await open_update(tx, channel="telegram", external_id="42", event_id="e-4", now=NOW)
    assert fresh


async def test_someone_unknown_reads_nothing(any_app: App) -> None:
    async with UpdateTransaction(any_app.engine) as tx:
        assert await tx.rows(_known_statement(), {"channel": "telegram", "external_id": "nobody"}) == []
        fresh, known = await open_update(tx, channel="telegram", external_id="nobody", event_id="e-5", now=NOW)
    assert fresh and known is None


async def test_someone_new_gets_the_identity_and_state_the_orm_would_have_made(any_app: App) -> None:
    async with UpdateTransaction(any_app.engine) as tx:
        fresh, known = await open_update(tx, channel="telegram", external_id="77", event_id="e-6", now=NOW)
        assert fresh and known is None
        made = await create_user(tx, channel="telegram", external_id="77", now=NOW)
        assert tx.session_used is None  # by the driver alone
    assert made is not None and made.person is None and made.role_kinds == frozenset()
    async with any_app.sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == "77"))).one()
        state = (await session.exec(select(ConversationState).where(ConversationState.identity_id == identity.id))).one()
    assert _columns(made.identity) == _columns(identity) == {
        "id": identity.id, "person_id": None, "channel": "telegram", "external_id": "77", "blocked_at": None,
        "created_at": NOW, "last_seen_at": None}
    assert _columns(made.state) == _columns(state) == {
        "id": state.id, "identity_id": identity.id, "step": "new", "data": {}, "menu": None, "version": 0,
        "updated_at": NOW}


async def test_an_identity_made_meanwhile_is_left_to_the_session(any_app: App) -> None:
    """The identity exists (another process made it, or it has no state): nothing is inserted,
    and the engine's session finds it and makes the state (``get_or_create_identity``)."""
    async with any_app.sessions() as session, session.begin():
        session.add(Identity(channel="telegram", external_id="78", created_at=NOW - timedelta(days=1)))
    async with UpdateTransaction(any_app.engine) as tx:
        assert await create_user(tx, channel="telegram", external_id="78", now=NOW) is None
    async with any_app.sessions() as session:
        identities = (await session.exec(select(Identity).where(Identity.external_id == "78"))).all()
        states = (await session.exec(select(ConversationState))).all()
    assert [i.created_at for i in identities] == [NOW - timedelta(days=1)] and states == []


class _PostgresError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_the_drivers_own_errors_are_busy_as_sqlalchemys_are() -> None:
    assert is_busy(sqlite3.OperationalError("database is locked"))
    assert is_busy(_PostgresError("40P01"))  # deadlock detected, as asyncpg raises it
    assert is_busy(_PostgresError("40001"))
    assert is_busy(DriverLost("connection was closed in the middle of operation"))
    assert not is_busy(_PostgresError("23505"))  # a unique violation is not tried again
    assert not is_busy(sqlite3.OperationalError("no such table: person"))
