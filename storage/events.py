"""Events the channels delivered and the engine handled (table ``handled_event``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import HandledEvent


async def prune_handled(session: AsyncSession, *, before: datetime) -> int:
    """Forget events handled before ``before`` (no channel redelivers that late); returns how
    many were deleted."""
    result = await session.exec(  # type: ignore[call-overload]
        delete(HandledEvent).where(col(HandledEvent.handled_at) < before)
    )
    return max(result.rowcount or 0, 0)
