"""A broadcast's status moves by guarded UPDATEs (``scheduled → queued``, ``scheduled|queued
→ cancelled``): a cancel that meets the tick queueing the same broadcast is never undone."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

import bot.scheduling
from bot.app import App
from bot.broadcasting import message_for
from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, tick
from storage.broadcasts import cancel_broadcast, create_broadcast, queue_broadcast
from storage.models import Broadcast, BroadcastStatus, Outbox, OutboxStatus
from tests.delivery.helpers import ZONE, seed_residents
from tests.staff import rows
from tests.support import ManualClock


async def _due_broadcast(app: App, now: datetime) -> int:
    await seed_residents(app.sessions, 5, now=now)
    async with app.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="test", text="Ngày hội", audience={"kind": "all"},
                                           scheduled_at=now, now=now)
    assert broadcast.id is not None
    return broadcast.id


async def _cancel(app: App, broadcast_id: int) -> bool:
    async with app.sessions() as session, session.begin():
        return await cancel_broadcast(session, broadcast_id=broadcast_id)


def _producers(app: App, clock: ManualClock) -> Producers:
    return Producers(sessions=app.sessions, clock=clock, lessons=app.lessons, catalog=app.catalog,
                     policy=ReminderPolicy(zone=ZONE))


async def _state(app: App) -> tuple[BroadcastStatus, set[str]]:
    [broadcast] = await rows(app, Broadcast)
    return broadcast.status, {row.status for row in await rows(app, Outbox)}


async def test_cancelled_between_the_ticks_read_and_its_write_nothing_is_queued(
    app: App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite: the tick's read takes no lock, so a cancel can commit before the tick writes.
    # (PostgreSQL's FOR UPDATE makes the cancel wait for the tick: the next test's order.)
    broadcast_id = await _due_broadcast(app, clock.now())
    read = bot.scheduling.due_broadcasts

    async def read_then_cancelled(session: Any, **kwargs: Any) -> Any:
        due = await read(session, **kwargs)
        assert [b.id for b in due] == [broadcast_id]
        assert await _cancel(app, broadcast_id)  # an admin cancels, committed in between
        return due

    monkeypatch.setattr(bot.scheduling, "due_broadcasts", read_then_cancelled)
    counts = await tick(_producers(app, clock))
    assert counts["broadcast_rows"] == 0
    assert await _state(app) == (BroadcastStatus.CANCELLED, set())


async def test_cancelled_while_the_tick_queues_its_pending_rows_are_cancelled(
    any_app: App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = any_app
    broadcast_id = await _due_broadcast(app, clock.now())
    queue = bot.scheduling.queue_broadcast
    cancelling: list[asyncio.Task[bool]] = []

    async def queued_then_cancelled(session: Any, **kwargs: Any) -> Any:
        queued = await queue(session, **kwargs)
        # The admin cancels now: the cancel waits for the tick's transaction (the row lock
        # on PostgreSQL, the write lock on SQLite) and then finds the broadcast queued.
        cancelling.append(asyncio.create_task(_cancel(app, broadcast_id)))
        await asyncio.sleep(0.05)  # let it reach its UPDATE (if it comes after the commit, the same holds)
        return queued

    monkeypatch.setattr(bot.scheduling, "queue_broadcast", queued_then_cancelled)
    counts = await tick(_producers(app, clock))
    assert counts["broadcast_rows"] == 5
    assert await asyncio.wait_for(cancelling[0], 10)
    assert await _state(app) == (BroadcastStatus.CANCELLED, {OutboxStatus.CANCELLED})
    monkeypatch.undo()
    assert (await tick(_producers(app, clock)))["broadcast_rows"] == 0  # never queued again
    assert not await _cancel(app, broadcast_id)  # nothing left to cancel


async def test_queued_once_even_if_two_ticks_read_it(any_app: App, clock: ManualClock) -> None:
    app = any_app
    broadcast_id = await _due_broadcast(app, clock.now())
    message = message_for(app.catalog)
    async with app.sessions() as session, session.begin():
        assert await queue_broadcast(session, broadcast_id=broadcast_id, now=clock.now(),
                                     message=message) == 5
    async with app.sessions() as session, session.begin():
        assert await queue_broadcast(session, broadcast_id=broadcast_id, now=clock.now(),
                                     message=message) is None
    [broadcast] = await rows(app, Broadcast)
    assert (broadcast.status, broadcast.recipients, broadcast.queued_at) == (BroadcastStatus.QUEUED, 5, clock.now())
    assert len(await rows(app, Outbox)) == 5
