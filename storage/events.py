"""Events a channel delivered and the engine handled (table ``handled_event``): each is
handled at most once.

The row is written in the same transaction as the update's effects, so a redelivery (a webhook
retry, an update fetched again after a restart) finds it and changes nothing, while an update
whose transaction failed leaves no row and is handled when it comes again. Rows older than the
retention window (longer than any channel redelivers) are pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, select
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert, insert_of
from storage.models import HandledEvent


async def record_event(session: AsyncSession, *, source: str, event_id: str, now: datetime) -> bool:
    """Record that ``event_id`` of ``source`` is being handled; False if it was handled before
    (or is being handled right now by another transaction, which then wins)."""
    connection = await session.connection()
    result = await connection.execute(_record_statement(dialect_insert(session)),
                                      event_params(source=source, event_id=event_id, now=now))
    return bool(result.rowcount)


def record_statement(dialect: str) -> Any:
    """The insert of :func:`record_event` for the database named ``dialect``."""
    return _record_statement(insert_of(dialect))


@cache
def _record_statement(insert: Callable[..., Any]) -> Any:
    """The insert of :func:`record_event` made with ``insert`` (the database's own:
    :func:`storage.db.dialect_insert`), built once — every update runs it — and bound with
    :func:`event_params`."""
    table = HandledEvent.__table__  # type: ignore[attr-defined]
    return insert(table).values(
        source=bindparam("event_source", type_=table.c.source.type),
        event_id=bindparam("event_id", type_=table.c.event_id.type),
        handled_at=bindparam("event_at", type_=table.c.handled_at.type),
    ).on_conflict_do_nothing(index_elements=["source", "event_id"])


def recording(*, only_if: ColumnElement[bool]) -> Insert:
    """PostgreSQL: the insert of :func:`record_event` as a statement to embed (a CTE), made only
    when ``only_if`` holds; it returns a row if the event is new. Bound with
    :func:`event_params`."""
    table = HandledEvent.__table__  # type: ignore[attr-defined]
    values = select(bindparam("event_source", type_=table.c.source.type),
                    bindparam("event_id", type_=table.c.event_id.type),
                    bindparam("event_at", type_=table.c.handled_at.type))
    return (
        pg_insert(table)
        .from_select(["source", "event_id", "handled_at"], values.where(only_if))
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(table.c.id)
    )


def event_params(*, source: str, event_id: str, now: datetime) -> dict[str, object]:
    """The values of :func:`recording`'s parameters."""
    return {"event_source": source[:48], "event_id": event_id[:128], "event_at": now}


async def prune_handled(session: AsyncSession, *, before: datetime) -> int:
    """Forget events handled before ``before`` (no channel redelivers that late); returns how
    many were deleted."""
    result = await session.exec(  # type: ignore[call-overload]
        delete(HandledEvent).where(col(HandledEvent.handled_at) < before)
    )
    return max(result.rowcount or 0, 0)
