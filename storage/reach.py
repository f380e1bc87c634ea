"""Reaching people unasked: through which account, and what they were sent lately.

A person may have a Telegram and a Zalo account; a proactive message goes once, through
the unblocked account they used most recently (as broadcasts and reminders do).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Identity, Outbox, OutboxStatus


def most_recent_first() -> tuple[Any, ...]:
    """The order in which a person's accounts are preferred: the one used most recently first.
    NULLS LAST: PostgreSQL would otherwise put never-seen accounts first, SQLite last."""
    return col(Identity.last_seen_at).desc().nulls_last(), col(Identity.id).desc()


class Account(NamedTuple):
    """The account :func:`reachable` chooses, as columns only."""

    identity_id: int
    channel: str


def _unblocked(query: Any, people: list[int] | Select) -> Any:
    return query.where(col(Identity.person_id).in_(people), col(Identity.blocked_at).is_(None)).order_by(
        *most_recent_first())


async def reachable(session: AsyncSession, *, person_ids: Iterable[int] | Select) -> dict[int, Identity]:
    """The account to write to, per person; people with no unblocked account are absent.

    ``person_ids`` is a few ids, or a query selecting them (a broadcast to a whole ward must
    not bind one parameter per resident)."""
    people = person_ids if isinstance(person_ids, Select) else list(person_ids)
    if isinstance(people, list) and not people:
        return {}
    chosen: dict[int, Identity] = {}
    for identity in (await session.exec(_unblocked(select(Identity), people))).all():
        assert identity.person_id is not None
        chosen.setdefault(identity.person_id, identity)
    return chosen


async def reachable_accounts(session: AsyncSession, *, person_ids: Select) -> dict[int, Account]:
    """:func:`reachable`'s choice, without loading ORM objects (the reminder planner asks for
    hundreds at a time, on the event loop)."""
    query = _unblocked(select(Identity.person_id, Identity.id, Identity.channel), person_ids)
    chosen: dict[int, Account] = {}
    for person_id, identity_id, channel in (await session.exec(query)).all():
        chosen.setdefault(person_id, Account(identity_id, channel))
    return chosen


async def sent_since(session: AsyncSession, *, kind: str, person_ids: Iterable[int], since: datetime) -> set[int]:
    """People with an outbox row of ``kind`` queued since ``since`` (sent, waiting or failed:
    anything but cancelled), through any of their accounts."""
    ids = list(person_ids)
    if not ids:
        return set()
    query = (
        select(Identity.person_id)
        .join(Outbox, col(Outbox.identity_id) == Identity.id)
        .where(
            Outbox.kind == kind,
            col(Identity.person_id).in_(ids),
            col(Outbox.created_at) >= since,
            Outbox.status != OutboxStatus.CANCELLED,
        )
        .distinct()
    )
    return {person_id for person_id in (await session.exec(query)).all() if person_id is not None}
