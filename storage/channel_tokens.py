"""Rotating channel credentials (the Zalo OA access and refresh tokens) and the refresh lease.

A refresh is leased, not locked: the lease (``refreshing_until``, ``refresh_owner``) is taken
and released in short transactions, so no transaction stays open while the single-use refresh
token is exchanged over the network. Every change is one guarded UPDATE.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import ChannelToken


async def read_token(session: AsyncSession, *, name: str) -> ChannelToken | None:
    """The row ``name`` as the database holds it now (not as this session last saw it)."""
    query = select(ChannelToken).where(ChannelToken.name == name).execution_options(populate_existing=True)
    return (await session.exec(query)).first()


async def ensure_token(
    session: AsyncSession, *, name: str, seed_refresh_token: str | None, now: datetime
) -> None:
    """Create the row ``name`` from the seed refresh token (the operator's setting) unless it
    exists; two processes doing this at once create one row."""
    insert = dialect_insert(session)
    statement = (
        insert(ChannelToken)
        .values(name=name, refresh_token=seed_refresh_token, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    await session.exec(statement)  # type: ignore[call-overload]


async def take_lease(session: AsyncSession, *, name: str, owner: str, now: datetime, until: datetime) -> bool:
    """Lease the refresh of ``name`` to ``owner`` until ``until``, unless another owner's lease
    is still running at ``now``. True if taken."""
    lease = col(ChannelToken.refreshing_until)
    statement = (
        update(ChannelToken)
        .where(col(ChannelToken.name) == name, or_(lease.is_(None), lease < now))
        .values(refreshing_until=until, refresh_owner=owner)
    )
    result = await session.exec(statement)  # type: ignore[call-overload]
    return bool(result.rowcount)


async def release_lease(session: AsyncSession, *, name: str, owner: str) -> bool:
    """End ``owner``'s lease without changing the tokens (its refresh failed or was not needed)."""
    statement = (
        update(ChannelToken)
        .where(col(ChannelToken.name) == name, col(ChannelToken.refresh_owner) == owner)
        .values(refreshing_until=None, refresh_owner=None)
    )
    result = await session.exec(statement)  # type: ignore[call-overload]
    return bool(result.rowcount)


async def store_pair(
    session: AsyncSession,
    *,
    name: str,
    owner: str,
    previous_refresh_token: str | None,
    access_token: str,
    refresh_token: str,
    expires_at: datetime,
    now: datetime,
) -> bool:
    """Store the pair ``owner`` obtained by exchanging the refresh token it leased, and end its
    lease. Guarded: only while ``owner`` holds the lease, or — if the lease ran out while the
    database could not be written and someone took it over — while the row still holds
    ``previous_refresh_token`` (the one ``owner`` read and consumed: nobody has stored a newer
    pair since). Another owner's running lease is left in place. False if neither holds."""
    mine = col(ChannelToken.refresh_owner) == owner
    guard = mine if previous_refresh_token is None else or_(
        mine, col(ChannelToken.refresh_token) == previous_refresh_token
    )
    statement = (
        update(ChannelToken)
        .where(col(ChannelToken.name) == name, guard)
        .values(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=expires_at,
            updated_at=now,
            refreshing_until=case((mine, None), else_=col(ChannelToken.refreshing_until)),
            refresh_owner=case((mine, None), else_=col(ChannelToken.refresh_owner)),
        )
    )
    result = await session.exec(statement)  # type: ignore[call-overload]
    return bool(result.rowcount)
