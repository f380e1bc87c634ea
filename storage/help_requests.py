"""Residents' help requests ("🙋 Nhờ hỗ trợ") and the outbox rows that carry them.

A request is kept until it is answered (and after), whoever could be reached when it was
asked; the rows that forward it to a leader or an admin name it in ``outbox.ref``
(``help_request:<id>``), so they can be found and checked again before they are sent.

Keyword-only functions; none commits (the caller owns the transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import HelpRequest, Outbox, OutboxStatus

REF_PREFIX = "help_request:"


class RoutedTo(StrEnum):
    """Who a request is addressed to (``help_request.routed_to``)."""

    LEADERS = "leaders"  # the leaders of the asker's group
    ADMINS = "admins"  # the group has no leader who can be reached: the ward's admins
    NOBODY = "nobody"  # nobody can be reached yet: kept for a leader appointed later


def ref_of(request_id: int) -> str:
    return f"{REF_PREFIX}{request_id}"


def request_id_of(ref: str | None) -> int | None:
    """The request an outbox row is about (``help_request:12`` → 12), or None."""
    if ref is None or not ref.startswith(REF_PREFIX):
        return None
    number = ref.removeprefix(REF_PREFIX)
    return int(number) if number.isascii() and number.isdigit() else None


async def create_request(
    session: AsyncSession, *, person_id: int, group_id: int | None, text: str, routed_to: RoutedTo, now: datetime
) -> HelpRequest:
    request = HelpRequest(person_id=person_id, group_id=group_id, text=text, routed_to=routed_to.value,
                          created_at=now)
    session.add(request)
    await session.flush()
    return request


async def open_requests(session: AsyncSession, *, group_id: int) -> Sequence[HelpRequest]:
    """The group's unanswered requests, oldest first (what its leaders see on the dashboard)."""
    query = (
        select(HelpRequest)
        .where(HelpRequest.group_id == group_id, col(HelpRequest.answered_at).is_(None))
        .order_by(col(HelpRequest.created_at), col(HelpRequest.id))
    )
    return (await session.exec(query)).all()


async def cancel_forwards(session: AsyncSession, *, request_id: int, reason: str) -> int:
    """Cancel the request's ``help`` rows that are still waiting (an answer came first).
    A row being sent right now is left to the sender's check."""
    statement = (
        update(Outbox)
        .where(Outbox.ref == ref_of(request_id), Outbox.kind == "help", Outbox.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.CANCELLED.value, last_error=reason[:300])
    )
    result = await session.exec(statement)  # type: ignore[call-overload]
    return result.rowcount or 0
