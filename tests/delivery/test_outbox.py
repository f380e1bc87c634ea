"""The outbox table on SQLite and PostgreSQL: idempotent inserts, disjoint concurrent
claims (SKIP LOCKED), leases that expire, state changes guarded by status."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.app import App
from storage import outbox
from storage.models import OutboxStatus
from tests.delivery.helpers import seed_residents


async def _enqueue(app: App, identities: list[int], now) -> int:  # type: ignore[no-untyped-def]
    async with app.sessions() as session, session.begin():
        return await outbox.enqueue(session, [
            outbox.outbox_row(kind="broadcast", identity_id=i, channel="telegram", payload={"text": "x"},
                              due_at=now, dedupe_key=f"t:{i}", now=now)
            for i in identities
        ])


async def test_inserts_are_idempotent_and_claims_are_disjoint(any_app: App, clock) -> None:  # type: ignore[no-untyped-def]
    app = any_app
    now = clock.now()
    identities = await seed_residents(app.sessions, 60, now=now)
    assert await _enqueue(app, identities, now) == 60
    assert await _enqueue(app, identities, now) == 0  # the same plan again adds nothing

    async def claim() -> list[int]:
        async with app.sessions() as session, session.begin():
            rows = await outbox.claim_due(session, channel="telegram", now=now,
                                          lease_until=now + timedelta(seconds=30), limit=20)
            await asyncio.sleep(0.01)  # hold the transaction a moment, as a busy sender would
            return [r.id for r in rows]

    batches = await asyncio.gather(*(claim() for _ in range(4)))
    claimed = [i for batch in batches for i in batch]
    assert len(claimed) == len(set(claimed)) == 60  # nobody got a row twice
    async with app.sessions() as session, session.begin():
        assert await outbox.claim_due(session, channel="telegram", now=now, lease_until=now, limit=100) == []
        assert await outbox.claim_due(session, channel="zalo", now=now + timedelta(hours=1),
                                      lease_until=now, limit=100) == []  # other channels' rows only
        # The leases run out (a sender died): the rows can be claimed again.
        again = await outbox.claim_due(session, channel="telegram", now=now + timedelta(seconds=31),
                                       lease_until=now + timedelta(seconds=61), limit=100)
        assert len(again) == 60
        assert await outbox.mark_sent(session, outbox_id=again[0].id, claim=again[0].claim, now=now)
        # only from "sending"
        assert not await outbox.mark_sent(session, outbox_id=again[0].id, claim=again[0].claim, now=now)
        assert await outbox.requeue(session, outbox_id=again[1].id, claim=again[1].claim, due_at=now)
    rows = {r.id: r for r in await _all(app)}
    assert rows[again[0].id].status == OutboxStatus.SENT and rows[again[1].id].status == OutboxStatus.PENDING
    assert rows[again[1].id].attempts == 0


async def _all(app: App):  # type: ignore[no-untyped-def]
    async with app.sessions() as session:
        return await outbox.rows_of(session)
