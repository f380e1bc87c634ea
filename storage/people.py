"""Identities, people and conversation state; erasing a person."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Select, String, Table, bindparam, cast, delete, exists, func, inspect, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert_of
from storage.driver import UpdateTransaction, column_keys, detached
from storage.events import event_params, record_statement, recording
from storage.roles import note_roles_written
from storage.models import (
    ConversationState,
    HandledEvent,
    HelpRequest,
    Identity,
    LinkCode,
    Outbox,
    OutboxStatus,
    Person,
    QuizAnswer,
    Role,
    RoleKind,
    WebLink,
    WebSession,
)

# Kept in ``outbox.last_error`` of a message cancelled because the person it was about left.
ERASED_REASON = "người được nhắc tới trong tin đã xóa dữ liệu"


async def find_identity(session: AsyncSession, *, channel: str, external_id: str) -> Identity | None:
    query = select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
    return (await session.exec(query)).first()


async def get_or_create_identity(
    session: AsyncSession, *, channel: str, external_id: str, now: datetime
) -> Identity:
    """The identity for ``(channel, external_id)``, created on first contact.

    Two processes may see the same new user at once; the unique constraint decides and
    the loser reads the winner's row.
    """
    identity = await find_identity(session, channel=channel, external_id=external_id)
    if identity is not None:
        return identity
    query = select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
    identity = Identity(channel=channel, external_id=external_id, created_at=now)
    try:
        async with session.begin_nested():
            session.add(identity)
    except IntegrityError:
        identity = (await session.exec(query)).one()
    return identity


async def lock_state(session: AsyncSession, *, identity_id: int, now: datetime) -> ConversationState:
    """The identity's conversation state, locked for this transaction.

    ``FOR UPDATE`` serialises one user's updates across processes on PostgreSQL; SQLite
    drops the clause and serialises writers itself.
    """
    query = select(ConversationState).where(ConversationState.identity_id == identity_id).with_for_update()
    state = (await session.exec(query)).first()
    if state is None:
        state = ConversationState(identity_id=identity_id, step="new", data={}, updated_at=now)
        session.add(state)
        await session.flush()
    return state


class Known(NamedTuple):
    """A known user as an update opens: the identity, its state (locked), the person (None
    before consent or once erased) and the kinds of role the person holds."""

    identity: Identity
    state: ConversationState
    person: Person | None
    role_kinds: frozenset[RoleKind]


def _known(identity: Identity, state: ConversationState, person: Person | None, leads: object,
           administers: object) -> Known:
    if person is None or person.deleted_at is not None:
        return Known(identity, state, None, frozenset())
    kinds = {kind for kind, held in ((RoleKind.LEADER, leads), (RoleKind.ADMIN, administers)) if held}
    return Known(identity, state, person, frozenset(kinds))


# The state's own columns, written on every save (``Conversation._handle_once`` bumps the version).
_STATE_SAVED = frozenset({"step", "data", "menu", "version", "updated_at"})


@lru_cache(maxsize=256)
def _save_statements(one_statement: bool, identity: frozenset[str], person: frozenset[str]) -> tuple[Any, ...]:
    """The state's ``UPDATE`` of :data:`_STATE_SAVED`, with the identity's and the person's of the
    columns given (those set on them in the update: the touches, a name, a group…), bound by name
    (``s_``, ``i_``, ``p_`` and the column); as one statement (PostgreSQL: the others as CTEs of
    the state's) or one each. Built once for each set of columns (a handful occur)."""
    def setting(table: Table, names: frozenset[str], prefix: str) -> Any:
        values = {name: bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in sorted(names)}
        return update(table).where(table.c.id == bindparam(f"{prefix}id")).values(values)

    state = setting(_table(ConversationState), _STATE_SAVED, "s_")  # type: ignore[arg-type]
    others = ([setting(_table(Identity), identity, "i_")] if identity else []) + (  # type: ignore[arg-type]
        [setting(_table(Person), person, "p_")] if person else [])  # type: ignore[arg-type]
    if one_statement and others:
        return (state.add_cte(*(other.cte(f"saved_{i}") for i, other in enumerate(others))),)
    return (state, *others)


def _set_since_load(row: SQLModel) -> set[str]:
    """The attributes of ``row`` set since it was loaded or last written (perhaps to the same value)."""
    return set(inspect(row).committed_state)


def _mark_written(session: AsyncSession | None, *rows: SQLModel) -> None:
    """``rows`` (in ``session``, or in none yet) were written by hand, every attribute set on
    them: they are clean again, as after a flush — nothing left for the unit of work, which would
    otherwise look at each of them again when the transaction commits and find nothing to write
    (a flush that cost about as much as a statement). SQLAlchemy's own step after a flush
    (``InstanceState._commit_all``)."""
    identity_map = session.sync_session.identity_map if session is not None else None
    for row in rows:
        state = inspect(row)
        state._commit_all(state.dict, identity_map)


def _stored(row: SQLModel) -> bool:
    """Whether ``row`` has its row in the database: loaded (in the session, or detached as the
    driver's rows are until a session is made) and not deleted."""
    state = inspect(row)
    return state.key is not None and not state.deleted and getattr(row, "id", None) is not None


def _table(row: SQLModel) -> Table:
    return row.__table__  # type: ignore[attr-defined,no-any-return]


@cache
def _known_statement() -> Select:  # type: ignore[type-arg]
    """A user's identity, state (locked), person and whether the person leads a group and
    administers a ward (the main menu offers their options); built once, bound per update."""
    def holds(kind: RoleKind) -> Any:
        return exists().where(col(Role.person_id) == Identity.person_id, col(Role.kind) == kind.value)

    return (
        select(Identity, ConversationState, Person, holds(RoleKind.LEADER).label("leads"),
               holds(RoleKind.ADMIN).label("administers"))
        .join(ConversationState, col(ConversationState.identity_id) == Identity.id)
        .outerjoin(Person, col(Person.id) == Identity.person_id)
        .where(Identity.channel == bindparam("channel"), Identity.external_id == bindparam("external_id"))
        .with_for_update(of=ConversationState)  # type: ignore[arg-type]
    )


@cache
def _load_and_record_statement() -> Select:  # type: ignore[type-arg]
    """PostgreSQL: :func:`_known_statement` and the event's insert (made only if the user is
    known) as CTEs, with a count of the rows inserted; built once (composing it is most of its
    cost), bound per update."""
    known = _known_statement().cte("known")
    recorded = recording(only_if=exists(select(known.c.id))).cte("recorded")
    fresh = select(func.count()).select_from(recorded).scalar_subquery()
    return select(aliased(Identity, known), aliased(ConversationState, known), aliased(Person, known),
                  known.c.leads, known.c.administers, fresh)


async def open_update(
    tx: UpdateTransaction, *, channel: str, external_id: str, event_id: str | None, now: datetime,
) -> tuple[bool, Known | None]:
    """The first statements of an update's transaction: record its event (at most once,
    ``storage.events``) and load the user — identity, state (locked), person, kinds of role.
    Returns whether the event is new (always, without an event id) and the user (None for
    someone new: the engine makes the identity and the state with the session). Call it first.

    By the driver's own statements (``storage.driver``), the rows made as the ORM loads them
    but in no session (``tx.attach`` puts them in the update's session if a handler asks for
    one). On PostgreSQL a known user's update is one statement: the event is inserted by a
    data-modifying CTE once the state is locked (a second delivery waits for the first one's
    lock, then finds its row and inserts nothing). On SQLite the transaction holds the write
    lock from its start (``UpdateTransaction``): the event's insert, then the read."""
    user = {"channel": channel, "external_id": external_id}
    if tx.dialect.name == "postgresql":
        if event_id is not None:
            rows = await tx.rows(_load_and_record_statement(), {**user, **event_params(
                source=channel, event_id=event_id, now=now)})
            if rows:
                *known, inserted = rows[0]
                return bool(inserted), _made(known)
            # Someone new (nothing was recorded): the engine makes the identity and state next.
            return bool(await tx.rows(_recorded_statement("postgresql"), event_params(
                source=channel, event_id=event_id, now=now))), None
    elif event_id is not None and not await tx.rows(_recorded_statement("sqlite"), event_params(
            source=channel, event_id=event_id, now=now)):
        return False, None
    rows = await tx.rows(_known_statement(), user)
    return True, _made(rows[0]) if rows else None


async def create_user(tx: UpdateTransaction, *, channel: str, external_id: str, now: datetime) -> Known | None:
    """Someone new (``open_update`` found nobody): their identity and state, each by one insert of
    the driver's, as the ORM would have made them (the person comes with consent). None when the
    identity exists already — made by another process in the meantime (PostgreSQL: its insert
    waited for that one's commit), or left without a state — for the session's
    :func:`get_or_create_identity` and :func:`lock_state` to find."""
    rows = await tx.rows(_new_identity_statement(tx.dialect.name), {
        "channel": channel, "external_id": external_id, "now": now})
    if not rows:
        return None
    identity = detached(Identity, dict(zip(column_keys(Identity), rows[0], strict=True)))
    state_row = (await tx.rows(_new_state_statement(tx.dialect.name), {"identity_id": identity.id, "now": now}))[0]
    state = detached(ConversationState, dict(zip(column_keys(ConversationState), state_row, strict=True)))
    return Known(identity, state, None, frozenset())


@cache
def _new_identity_statement(dialect: str) -> Any:
    table = Identity.__table__  # type: ignore[attr-defined]
    c = table.c
    return insert_of(dialect)(table).values(
        channel=bindparam("channel", type_=c.channel.type),
        external_id=bindparam("external_id", type_=c.external_id.type),
        created_at=bindparam("now", type_=c.created_at.type), person_id=None, blocked_at=None, last_seen_at=None,
    ).on_conflict_do_nothing(index_elements=["channel", "external_id"]).returning(*table.c)


@cache
def _new_state_statement(dialect: str) -> Any:
    table = ConversationState.__table__  # type: ignore[attr-defined]
    c = table.c
    return insert_of(dialect)(table).values(
        identity_id=bindparam("identity_id", type_=c.identity_id.type), step="new", data={}, menu=None, version=0,
        updated_at=bindparam("now", type_=c.updated_at.type),
    ).returning(*table.c)


@cache
def _recorded_statement(dialect: str) -> Any:
    """The event's insert (``storage.events``) returning its id: a row when the event is new."""
    return record_statement(dialect).returning(HandledEvent.__table__.c.id)  # type: ignore[attr-defined]


_ENTITIES = (Identity, ConversationState, Person)


def _made(values: Sequence[Any]) -> Known:
    """The identity, state and person of a row of :func:`_known_statement`'s columns (then
    ``leads``, ``administers``), as objects the ORM would have loaded, detached."""
    made: list[Any] = []
    at = 0
    for entity in _ENTITIES:
        keys = column_keys(entity)
        row = dict(zip(keys, values[at:at + len(keys)], strict=True))
        at += len(keys)
        made.append(None if row["id"] is None else detached(entity, row))
    return _known(made[0], made[1], made[2], values[at], values[at + 1])


async def save_update(
    tx: UpdateTransaction, *, state: ConversationState, identity: Identity, person: Person | None,
) -> None:
    """Write what changed on an update's three rows — its state, the identity and the person
    (their last contact, and whatever the handler changed) — at the end of the update.

    By the driver's statements (``storage.driver``), built once for each set of columns written
    and bound per update (:func:`_save_statements`): the state's own columns, and the columns set
    on the identity and the person since they were loaded or last flushed — the touches (last
    contact, last activity, next reminder: set only when they move, the times at most once a
    minute, ``Conversation._touch``) and whatever the handler set (a name, a group, consent) —
    the identity's and the person's only when something of theirs was set. On PostgreSQL one
    statement, the identity's and the person's ``UPDATE`` as data-modifying CTEs of the state's
    (one round trip instead of three, taken while the state is locked); SQLite has no statement
    that writes several tables, so there it is one each. The objects are clean afterwards, also in
    the update's session if a handler used one; other rows the handler changed (lesson
    progress…) are flushed by the session's unit of work as usual. A row not yet in the database
    (nothing here makes one) is left to the session."""
    rows = [row for row in (identity, person) if row is not None]
    if not all(_stored(row) for row in (state, *rows)) or not _set_since_load(state) <= _STATE_SAVED:
        tx.session.add_all([state, *rows])
        return
    identity_set = frozenset(_set_since_load(identity))
    person_set = frozenset(_set_since_load(person)) if person is not None else frozenset()
    params = {f"s_{name}": getattr(state, name) for name in _STATE_SAVED}
    params.update({f"i_{name}": getattr(identity, name) for name in identity_set}, i_id=identity.id, s_id=state.id)
    if person is not None:
        params.update({f"p_{name}": getattr(person, name) for name in person_set}, p_id=person.id)
    for statement in _save_statements(tx.dialect.name == "postgresql", identity_set, person_set):
        await tx.rows(statement, params)
    _mark_written(tx.session_used, state, *rows)


async def get_person(session: AsyncSession, *, person_id: int | None) -> Person | None:
    if person_id is None:
        return None
    person = await session.get(Person, person_id)
    return None if person is None or person.deleted_at is not None else person


async def create_person(
    session: AsyncSession,
    *,
    identity: Identity,
    consent_version: str,
    locale: str,
    now: datetime,
) -> Person:
    person = Person(
        consent_at=now, consent_version=consent_version, locale=locale, created_at=now, last_active_at=now
    )
    session.add(person)
    await session.flush()
    identity.person_id = person.id
    session.add(identity)
    return person


async def erase_person(session: AsyncSession, *, person_id: int, now: datetime) -> None:
    """Delete a person's personal data; the row stays as an anonymous tombstone with its
    group, creation time and lesson completions, so the group's statistics keep their counts.

    Goes: the name, consent and activity times; every channel identity — and with them
    (database cascades) their conversation state and their link attempts; the outbox rows
    addressed to them lose their content and recipient but stay as anonymous outcomes (a
    broadcast's delivery report keeps its counts), those not yet sent cancelled; quiz answers; link codes; roles; web dashboard sessions and links; the help requests they asked
    (their words; a leader's dashboard no longer lists them). Outbox rows that carry their
    name or words to someone else (``about_person_id``: their question sent to a leader,
    their answer or nudge sent to a resident) keep no payload, and those not yet sent are
    cancelled. Other people's pending menus that name them (a leader's list of residents or
    questions, an admin's list of leaders) are dropped: a typed number there picks nothing.
    Ids that point at the tombstone (``answered_by``, ``assisted_by``, ``added_by``, audit
    targets, a broadcast's ``author``) stay: they hold no personal data."""
    person = await session.get(Person, person_id)
    await _forget_in_menus(session, person_id=person_id, name=person.display_name if person else None)
    await session.exec(delete(HelpRequest).where(HelpRequest.person_id == person_id))
    await session.exec(
        update(Outbox)
        .where(Outbox.about_person_id == person_id,
               col(Outbox.status).in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]))
        .values(status=OutboxStatus.CANCELLED.value, lease_until=None, last_error=ERASED_REASON)
    )
    emptied = update(Outbox).where(Outbox.about_person_id == person_id).values(payload={})
    await session.exec(emptied)
    await session.exec(delete(QuizAnswer).where(QuizAnswer.person_id == person_id))
    await session.exec(delete(LinkCode).where(LinkCode.person_id == person_id))
    await session.exec(delete(Role).where(Role.person_id == person_id))
    note_roles_written(session)
    # Signed in to the web dashboard: signed out, and an unused /web link no longer opens.
    await session.exec(delete(WebSession).where(col(WebSession.person_id) == person_id))
    await session.exec(delete(WebLink).where(col(WebLink.person_id) == person_id))
    await forget_identities(session, person_id=person_id)
    await session.exec(
        update(Person)
        .where(Person.id == person_id)
        .values(
            display_name=None,
            consent_at=None,
            consent_version=None,
            reminders_on=False,
            reminders_unanswered=0,
            last_reminded_at=None,
            next_reminder_at=None,
            last_active_at=None,
            deleted_at=now,
        )
    )
    if person is not None:
        await session.refresh(person)


async def erasable_by_staff(session: AsyncSession, *, person: Person) -> bool:
    """Someone a leader added by name, with no channel account of their own (nobody who can
    send ``/xoadulieu`` themselves), not erased yet: their leaders and admins may erase them."""
    if person.added_by is None or person.deleted_at is not None or person.id is None:
        return False
    return (await session.exec(select(Identity.id).where(Identity.person_id == person.id))).first() is None


# Actions of options that name a person (whose label shows their name), by what they carry.
_PERSON_ACTIONS = re.compile(r"^lead:a[lcdx]:\d+:(\d+)(?::|$)")
_REQUEST_ACTIONS = re.compile(r"^hotro:rep:(\d+)$")
_ROLE_ACTIONS = re.compile(r"^adm:r[vy]:(\d+)$")


async def _forget_in_menus(session: AsyncSession, *, person_id: int, name: str | None) -> None:
    """Drop the pending menus of others whose options or remembered question name the person
    (see erase_person).

    Only menus holding such actions or the name are read (a LIKE on the JSON text: these are
    leaders' and admins' menus, a few rows), then checked exactly."""
    requests = set((await session.exec(select(HelpRequest.id).where(HelpRequest.person_id == person_id))).all())
    roles = set((await session.exec(select(Role.id).where(Role.person_id == person_id))).all())
    text = cast(ConversationState.menu, String)
    wanted = [text.like("%lead:a%"), text.like("%hotro:rep:%"), text.like("%adm:r%")]
    if name:  # as typed, and as JSON writes it (non-ASCII escaped)
        wanted += [text.contains(name, autoescape=True), text.contains(json.dumps(name)[1:-1], autoescape=True)]
    candidates = (await session.exec(select(ConversationState).where(
        col(ConversationState.menu).is_not(None), or_(*wanted),
    ))).all()

    def names_them(option: Any) -> bool:
        if not isinstance(option, list) or len(option) < 2:
            return False
        label, action = str(option[0]), str(option[1])
        for pattern, ids in ((_PERSON_ACTIONS, {person_id}), (_REQUEST_ACTIONS, requests), (_ROLE_ACTIONS, roles)):
            match = pattern.match(action)
            if match and int(match.group(1)) in ids:
                return True
        return bool(name) and name in label

    for state in candidates:
        options = [o for value in (state.menu or {}).values() if isinstance(value, list) for o in value]
        said = str((state.menu or {}).get("text") or "")
        if any(names_them(o) for o in options) or (name and name in said):
            state.menu = None
            state.version += 1
            session.add(state)
    await session.flush()


async def forget_identities(session: AsyncSession, *, person_id: int | None = None, identity_id: int | None = None) -> None:
    """Delete identities (and, by cascade, their conversation state). The outbox rows addressed
    to them stay as anonymous outcomes (the database sets their identity to NULL, their group
    stays, so a broadcast's delivery report keeps its counts); those not yet sent are
    cancelled, and no row keeps what it said to them."""
    ids = (select(Identity.id).where(Identity.id == identity_id) if identity_id is not None
           else select(Identity.id).where(Identity.person_id == person_id))
    if identity_id is None and person_id is None:
        return
    addressed = col(Outbox.identity_id).in_(ids)
    await session.exec(
        update(Outbox)
        .where(addressed, col(Outbox.status).in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]))
        .values(status=OutboxStatus.CANCELLED.value, lease_until=None, last_error=ERASED_REASON)
    )
    await session.exec(update(Outbox).where(addressed).values(payload={}))
    await session.exec(delete(ConversationState).where(col(ConversationState.identity_id).in_(ids)))
    await session.exec(delete(Identity).where(col(Identity.id).in_(ids)))
