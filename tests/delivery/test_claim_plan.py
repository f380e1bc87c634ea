"""The outbox claim reads its index in order (issue 12 §3): for each of its two queries — rows
pending and due, rows whose lease expired — SQLite's plan walks ``ix_outbox_claim (channel,
status, due_at)`` and needs no sort, so a claim costs the same with 100 rows due or 100,000.
(PostgreSQL's plans: docs/benchmarks.md.)"""

from __future__ import annotations

from datetime import timedelta

from bot.app import App
from storage import outbox
from tests.support import sqlite_plans


async def test_each_claim_query_walks_the_claim_index_without_sorting(app: App, clock) -> None:  # type: ignore[no-untyped-def]
    async def claim() -> None:
        async with app.sessions() as session:
            assert not await outbox.any_due(session, channel="telegram", now=clock.now())
        async with app.sessions() as session, session.begin():
            assert await outbox.claim_due(session, channel="telegram", now=clock.now(),
                                          lease_until=clock.now() + timedelta(minutes=1), limit=50) == []

    plans = await sqlite_plans(app, claim, touching="FROM outbox")
    assert len(plans) == 4  # the two probes, the two claims
    for statement, plan in plans:
        assert any("ix_outbox_claim (channel=? AND status=?" in step for step in plan), (statement, plan)
        assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)
