"""Identities, people and conversation state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ConversationState, Identity, Person, QuizAnswer


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
    """Delete a person's personal data: name, channel identities (and with them the
    conversation state) and quiz answers. The row stays as an anonymous tombstone with its
    group and lesson completions, so the group's statistics keep their counts."""
    await session.exec(delete(QuizAnswer).where(QuizAnswer.person_id == person_id))
    await forget_identities(session, person_id=person_id)
    await session.exec(
        update(Person)
        .where(Person.id == person_id)
        .values(
            display_name=None,
            consent_at=None,
            consent_version=None,
            reminders_on=False,
            last_active_at=None,
            deleted_at=now,
        )
    )


async def forget_identities(session: AsyncSession, *, person_id: int | None = None, identity_id: int | None = None) -> None:
    """Delete identities (and, by cascade, their conversation state)."""
    if identity_id is not None:
        await session.exec(delete(ConversationState).where(ConversationState.identity_id == identity_id))
        await session.exec(delete(Identity).where(Identity.id == identity_id))
    if person_id is not None:
        ids = select(Identity.id).where(Identity.person_id == person_id)
        await session.exec(delete(ConversationState).where(ConversationState.identity_id.in_(ids)))
        await session.exec(delete(Identity).where(Identity.person_id == person_id))
