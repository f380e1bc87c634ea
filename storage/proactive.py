"""How a proactive message's options meet the resident's conversation state.

The outbox sender reads and writes ``conversation_state`` under the engine's lock
discipline: ``SELECT … FOR UPDATE`` on the state row (effective on PostgreSQL; SQLite
serialises writers) in a short transaction, and every write guarded by the ``version`` it
read, so a resident's update handled in between is never overwritten.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ConversationState


async def _locked(session: AsyncSession, identity_id: int) -> ConversationState | None:
    query = select(ConversationState).where(ConversationState.identity_id == identity_id).with_for_update()
    return (await session.exec(query)).first()


async def resting_version(
    session: AsyncSession, *, identity_id: int, now: datetime, steps: Collection[str], rest: timedelta
) -> int | None:
    """The state's ``version`` if the conversation is *at rest* — its step is one of
    ``steps`` and nothing happened in it for ``rest`` — else None (mid-quiz, typing a name,
    just answered…; or no state at all)."""
    state = await _locked(session, identity_id)
    if state is None or state.step not in steps or state.updated_at is None:
        return None
    return state.version if state.updated_at <= now - rest else None


async def offer_options(
    session: AsyncSession,
    *,
    identity_id: int,
    options: list[list[Any]],
    pending_at: int | None,
    pending_step: str,
    text: str | None = None,
) -> bool:
    """Record the options of a proactive message that was just sent.

    ``pending_at``: the version at which the state was seen at rest when the options were
    sent numbered. If the state is still at that version, the options become the pending
    menu (``menu["options"]``: a typed number picks them; ``text``, the message, is the question
    a confused reply gets again), the step ``pending_step`` and the version goes up by one;
    returns True. In every other case (sent as buttons or keywords,
    or the resident moved on meanwhile) they become ``menu["extra"]``, replacing older
    extras, and the step, the data, the pending options and the version stay; returns False.
    """
    state = await _locked(session, identity_id)
    if state is None:
        return False
    menu = dict(state.menu or {})
    if pending_at is not None and state.version == pending_at:
        menu.pop("extra", None)
        menu.pop("marks", None)  # sent numbered (``bot.core.render.numbered_menu``)
        menu.pop("misses", None)
        menu["options"] = options
        if text is not None:
            menu["text"] = text[:4000]
        taken = await session.exec(  # type: ignore[call-overload]
            update(ConversationState)
            .where(ConversationState.id == state.id, ConversationState.version == pending_at)
            .values(menu=menu, step=pending_step, version=ConversationState.version + 1)
        )
        return bool(taken.rowcount)
    menu["extra"] = options
    await session.exec(  # type: ignore[call-overload]
        update(ConversationState)
        .where(ConversationState.id == state.id, ConversationState.version == state.version)
        .values(menu=menu)
    )
    return False
