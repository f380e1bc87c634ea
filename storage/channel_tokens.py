"""Rotating channel credentials (the Zalo OA access and refresh tokens)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChannelToken


async def read_token(session: AsyncSession, *, name: str) -> ChannelToken | None:
    return (await session.exec(select(ChannelToken).where(ChannelToken.name == name))).first()


async def lock_token(
    session: AsyncSession, *, name: str, seed_refresh_token: str | None, now: datetime
) -> ChannelToken:
    """The row ``name``, locked for this transaction (``FOR UPDATE``: a second process that
    wants to refresh waits here and then sees the new pair). Created from the seed refresh
    token (the operator's setting) the first time."""
    query = select(ChannelToken).where(ChannelToken.name == name).with_for_update()
    row = (await session.exec(query)).first()
    if row is not None:
        return row
    try:
        async with session.begin_nested():
            session.add(ChannelToken(name=name, refresh_token=seed_refresh_token, updated_at=now))
    except IntegrityError:
        pass  # another process created it at the same moment: lock theirs
    return (await session.exec(query)).one()
