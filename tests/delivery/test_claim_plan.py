"""The outbox claim reads its index in order (issue 12 §3): for each of its two queries — rows
pending and due, rows whose lease expired — SQLite's plan walks ``ix_outbox_claim (channel,
status, due_at)`` and needs no sort, so a claim costs the same with 100 rows due or 100,000.
(PostgreSQL's plans: docs/benchmarks.md.)"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from bot.app import App
from storage import outbox


async def test_each_claim_query_walks_the_claim_index_without_sorting(app: App, clock) -> None:  # type: ignore[no-untyped-def]
    statements: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if "FROM outbox" in statement:
            statements.append((statement, parameters))

    event.listen(app.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with app.sessions() as session:
            assert not await outbox.any_due(session, channel="telegram", now=clock.now())
        async with app.sessions() as session, session.begin():
            assert await outbox.claim_due(session, channel="telegram", now=clock.now(),
                                          lease_until=clock.now() + timedelta(minutes=1), limit=50) == []
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == 4  # the two probes, the two claims
    async with app.engine.connect() as connection:
        for statement, parameters in statements:
            plan = [str(row[-1]) for row in
                    (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()]
            assert any("ix_outbox_claim (channel=? AND status=?" in step for step in plan), (statement, plan)
            assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)
