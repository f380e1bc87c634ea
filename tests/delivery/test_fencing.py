"""Lease fencing: every claim gets a token (``outbox.claim``) and only its holder can finish
the row. A sender whose lease ran out while another claimed the row changes nothing with
its late outcome, and a sender never re-claims (and so fences out) a row it still holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.app import App
from storage import outbox
from storage.models import Identity, Outbox, OutboxStatus
from tests.delivery.helpers import FIRST_USER, seed_residents, telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.support import ManualClock


async def enqueue_now(app: App, identities: list[int], now: datetime, *, kind: str = "broadcast") -> None:
    async with app.sessions() as session, session.begin():
        await outbox.enqueue(session, [
            outbox.outbox_row(kind=kind, identity_id=i, channel="telegram", payload={"text": "Thông báo"},
                              due_at=now, dedupe_key=f"fence:{kind}:{i}", now=now)
            for i in identities
        ])


async def the_row(app: App) -> Outbox:
    async with app.sessions() as session:
        [row] = await outbox.rows_of(session)
    return row


async def until(app: App, predicate: Callable[[Outbox], bool], timeout: float = 10) -> Outbox:
    async def poll() -> Outbox:
        while not predicate(row := await the_row(app)):
            await asyncio.sleep(0.02)
        return row
    return await asyncio.wait_for(poll(), timeout)


async def test_only_the_latest_claim_can_finish_a_row(any_app: App, clock: ManualClock) -> None:
    app = any_app
    now = clock.now()
    [identity] = await seed_residents(app.sessions, 1, now=now)
    await enqueue_now(app, [identity], now)
    async with app.sessions() as session, session.begin():
        [first] = await outbox.claim_due(session, channel="telegram", now=now, lease_until=now + timedelta(seconds=60),
                                         limit=10)
    later = now + timedelta(seconds=61)  # the first lease ran out: another sender claims the row
    async with app.sessions() as session, session.begin():
        [second] = await outbox.claim_due(session, channel="telegram", now=later,
                                          lease_until=later + timedelta(seconds=60), limit=10)
    assert (first.id, first.claim, second.claim) == (second.id, 1, 2)

    stale = {"outbox_id": first.id, "claim": first.claim}
    async with app.sessions() as session, session.begin():
        assert not await outbox.mark_sent(session, now=later, **stale)
        assert not await outbox.mark_failed(session, reason="chat not found", **stale)
        assert not await outbox.mark_cancelled(session, reason="đã trả lời", **stale)
        assert not await outbox.requeue(session, due_at=later, **stale)
        assert not await outbox.retry_later(session, due_at=later, reason="502", **stale)
        assert not await outbox.mark_blocked(session, identity_id=identity, now=later, reason="blocked", **stale)
    row = await the_row(app)
    assert (row.status, row.claim, row.attempts, row.last_error) == (OutboxStatus.SENDING, 2, 0, None)
    assert row.sent_at is None
    async with app.sessions() as session:
        assert (await session.get(Identity, identity)).blocked_at is None  # type: ignore[union-attr]

    async with app.sessions() as session, session.begin():
        assert await outbox.mark_sent(session, outbox_id=second.id, claim=second.claim, now=later)
    row = await the_row(app)
    assert (row.status, row.sent_at) == (OutboxStatus.SENT, later)


async def test_a_late_outcome_of_an_expired_lease_changes_nothing(app: App, clock: ManualClock) -> None:
    [identity] = await seed_residents(app.sessions, 1, now=clock.now())
    await enqueue_now(app, [identity], clock.now())
    # Sender A's Bot API does not know the chat ("chat not found") and answers after 0.3 s;
    # sender B's delivers, and answers after 3 s: A's outcome arrives while B holds the row.
    async with FakeTelegram() as slow, FakeTelegram() as right:
        slow.latency(0.3, 0.3)
        right.add_user(FIRST_USER)
        right.latency(3, 3)
        a = telegram_sender(app.sessions, slow, clock=clock, lease_seconds=60)
        b = telegram_sender(app.sessions, right, clock=clock, lease_seconds=60)
        task_a = asyncio.create_task(a.run())
        task_b: asyncio.Task[None] | None = None
        try:
            await until(app, lambda r: r.status == OutboxStatus.SENDING and r.claim == 1)
            clock.advance(seconds=61)  # A's call is still in flight; its lease runs out
            task_b = asyncio.create_task(b.run())
            await until(app, lambda r: r.claim == 2)
            a.stop()
            await asyncio.wait_for(task_a, 10)  # A has stored (tried to store) its outcome
            assert [c.status for c in slow.calls_to("sendMessage")] == [400]  # A's call really failed
            row = await the_row(app)
            assert (row.status, row.claim, row.last_error) == (OutboxStatus.SENDING, 2, None)  # B still holds it
            row = await until(app, lambda r: r.status != OutboxStatus.SENDING)
        finally:
            a.stop()
            b.stop()
            await asyncio.gather(task_a, *([task_b] if task_b else []))
            for sender in (a, b):
                await sender.transport.bot.session.close()
        assert right.sent_count(FIRST_USER) == 1
    assert (row.status, row.claim, row.last_error, row.sent_at) == (OutboxStatus.SENT, 2, None, clock.now())


async def test_a_sender_never_reclaims_a_row_it_is_still_sending(app: App, clock: ManualClock) -> None:
    [identity] = await seed_residents(app.sessions, 1, now=clock.now())
    await enqueue_now(app, [identity], clock.now())
    async with FakeTelegram() as tg:
        tg.add_user(FIRST_USER)
        tg.latency(0.5, 0.5)
        sender = telegram_sender(app.sessions, tg, clock=clock, lease_seconds=60)
        task = asyncio.create_task(sender.run())
        try:
            await until(app, lambda r: r.claim == 1)
            clock.advance(seconds=61)  # the lease runs out while the call is in flight…
            rounds = sender.rounds
            while sender.rounds < rounds + 3:  # …and the sender looks for due rows meanwhile
                sender.wake()
                await asyncio.sleep(0.01)
            row = await until(app, lambda r: r.status == OutboxStatus.SENT)
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
        assert tg.sent_count(FIRST_USER) == 1
    assert row.claim == 1
