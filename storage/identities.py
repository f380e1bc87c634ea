"""Channel identities outside a conversation (a channel says a user left or came back)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Identity


async def set_blocked(session: AsyncSession, *, channel: str, external_id: str, blocked_at: datetime | None) -> bool:
    """Mark the identity as unreachable (``blocked_at``) or reachable again (None).
    Returns whether such an identity exists; an unknown user creates nothing."""
    result = await session.exec(
        update(Identity)
        .where(Identity.channel == channel, Identity.external_id == external_id)
        .values(blocked_at=blocked_at)
    )
    return bool(result.rowcount)
