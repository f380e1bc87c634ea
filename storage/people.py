"""Identities, people and conversation state; erasing a person."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, String, Table, bindparam, cast, delete, exists, func, inspect, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import begins_with_a_write
from storage.events import event_params, record_event, recording
from storage.models import (
    ConversationState,
    HelpRequest,
    Identity,
    LinkCode,
    Outbox,
    OutboxStatus,
    Person,
    QuizAnswer,
    Role,
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


async def load_conversation(
    session: AsyncSession, *, channel: str, external_id: str,
) -> tuple[Identity, ConversationState, Person | None] | None:
    """A known user's identity, conversation state (locked for this transaction, as
    :func:`lock_state` locks it) and person, in one statement — every update's first read.
    None for someone new (no identity or no state yet): :func:`get_or_create_identity` and
    :func:`lock_state` make them."""
    row = (await session.exec(_known_statement(), params={"channel": channel, "external_id": external_id})).first()
    if row is None:
        return None
    identity, state, person = row
    return identity, state, None if person is None or person.deleted_at is not None else person


async def save_conversation(
    session: AsyncSession, *, state: ConversationState, identity: Identity, person: Person | None,
) -> None:
    """Write what changed on an update's three rows — its state, the identity and the person
    (their last contact, and whatever the handler changed) — at the end of the update.

    On PostgreSQL in one statement: the identity's and the person's changes as data-modifying
    CTEs of the state's ``UPDATE`` (one round trip instead of three, taken while the state is
    locked). SQLite has no statement that writes several tables: there the unit of work writes
    one ``UPDATE`` per changed row when the transaction commits, as for any other row. Either
    way the objects are clean afterwards; other rows the handler changed (lesson progress…)
    are flushed by the unit of work as usual."""
    rows = [row for row in (identity, person) if row is not None]
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    if dialect != "postgresql" or not all(_stored(row) for row in (state, *rows)):
        session.add_all([state, *rows])
        return
    changes = _changes(state)
    if not changes:  # the engine bumps the version of every state it saves: not expected
        session.add_all([state, *rows])
        return
    touched = [update(table).where(table.c.id == row.id).values(changed).cte(f"saved_{table.name}")
               for row in rows if (changed := _changes(row)) for table in [_table(row)]]
    table = _table(state)
    statement = update(table).where(table.c.id == state.id).values(changes)
    with session.no_autoflush:  # else the unit of work would write the three rows first
        await session.exec(statement.add_cte(*touched))  # type: ignore[call-overload]
    for row in (state, *rows):
        for key, value in _changes(row).items():
            set_committed_value(row, key, value)  # written: nothing left for the unit of work


def _stored(row: SQLModel) -> bool:
    return inspect(row).persistent and getattr(row, "id", None) is not None


def _table(row: SQLModel) -> Table:
    return row.__table__  # type: ignore[attr-defined,no-any-return]


def _changes(row: SQLModel) -> dict[str, Any]:
    """The columns of ``row`` set since it was loaded or last written, with their new values."""
    state = inspect(row)
    return {attribute.key: getattr(row, attribute.key) for attribute in state.mapper.column_attrs
            if state.attrs[attribute.key].history.has_changes()}


async def open_conversation(
    session: AsyncSession, *, channel: str, external_id: str, event_id: str | None, now: datetime,
) -> tuple[bool, tuple[Identity, ConversationState, Person | None] | None]:
    """The first statements of an update's transaction: record its event (at most once,
    ``storage.events``) and load the user as :func:`load_conversation` does. Returns whether the
    event is new (always, without an event id) and the user (None for someone new).

    On PostgreSQL a known user's update is one statement: the event is inserted by a
    data-modifying CTE once the state is locked (a second delivery waits for the first one's
    lock, then finds its row and inserts nothing). On SQLite, and for someone new, the event's
    insert comes first — on SQLite it takes the write lock (:func:`storage.db.begins_with_a_write`)
    — then the read. Call it first in the transaction."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    if event_id is not None and dialect == "postgresql":
        found = await _load_and_record(session, channel=channel, external_id=external_id, event_id=event_id, now=now)
        if found is not None:
            return found
        # Someone new (nothing was recorded): the engine makes the identity and state next.
        return await record_event(session, source=channel, event_id=event_id, now=now), None
    if event_id is not None:
        await begins_with_a_write(session)
        if not await record_event(session, source=channel, event_id=event_id, now=now):
            return False, None
    return True, await load_conversation(session, channel=channel, external_id=external_id)


@cache
def _known_statement() -> Select:  # type: ignore[type-arg]
    """A user's identity, state (locked) and person; built once, bound per update."""
    return (
        select(Identity, ConversationState, Person)
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
    return select(aliased(Identity, known), aliased(ConversationState, known), aliased(Person, known), fresh)


async def _load_and_record(
    session: AsyncSession, *, channel: str, external_id: str, event_id: str, now: datetime,
) -> tuple[bool, tuple[Identity, ConversationState, Person | None]] | None:
    """PostgreSQL: the known user's rows (state locked) and the event recorded, in one statement;
    None if the user is not known (nothing is recorded then)."""
    params = {"channel": channel, "external_id": external_id, **event_params(source=channel, event_id=event_id, now=now)}
    row = (await session.exec(_load_and_record_statement(), params=params)).first()  # type: ignore[call-overload]
    if row is None:
        return None
    identity, state, person, inserted = row
    return bool(inserted), (identity, state, None if person is None or person.deleted_at is not None else person)


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
