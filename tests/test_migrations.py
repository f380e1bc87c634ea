"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import create_engine
from storage.migrate import head_revision, schema_is_current, upgrade


async def test_upgrade_to_head_matches_the_models(any_db_url: str) -> None:
    await asyncio.to_thread(upgrade, any_db_url)  # Alembic runs its own event loop
    engine = create_engine(any_db_url)
    try:
        def diff(connection):  # type: ignore[no-untyped-def]
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)

        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
        assert differences == []
        assert await schema_is_current(engine)
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent_and_a_fresh_database_is_not_current(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        assert not await schema_is_current(engine)
        await asyncio.to_thread(upgrade, sqlite_url)
        await asyncio.to_thread(upgrade, sqlite_url)
        assert await schema_is_current(engine)
        assert head_revision() == "0012"
    finally:
        await engine.dispose()


async def test_0006_keeps_delivery_outcomes_when_the_recipient_erases(any_db_url: str) -> None:
    """Rows queued before 0006 get their recipient's group; after it, deleting an identity keeps
    its outbox rows as anonymous outcomes (identity NULL, group kept) instead of deleting them."""
    from sqlalchemy import text

    await asyncio.to_thread(upgrade, any_db_url, "0005")
    engine = create_engine(any_db_url)
    at = "2026-11-30 08:00:00+00:00"
    try:
        async with engine.begin() as connection:
            run = connection.execute
            await run(text("INSERT INTO ward (id, code, name) VALUES (1, 'w', 'Phường Thử')"))
            await run(text("INSERT INTO resident_group (id, code, ward_id, name, kind, target_percent) "
                           "VALUES (7, 'to1', 1, 'Tổ 1', 'to-dan-pho', 80)"))
            await run(text("INSERT INTO person (id, group_id, display_name, locale, reminder_hour, reminders_on, "
                           f"reminders_unanswered, created_at) VALUES (3, 7, 'Hoa', 'vi', 19, true, 0, '{at}')"))
            await run(text("INSERT INTO identity (id, person_id, channel, external_id, created_at) "
                           f"VALUES (5, 3, 'telegram', '42', '{at}')"))
            await run(text("INSERT INTO outbox (kind, identity_id, channel, payload, due_at, status, attempts, "
                           "claim, dedupe_key, created_at) VALUES ('broadcast', 5, 'telegram', '{}', "
                           f"'{at}', 'sent', 1, 1, 'b:1:3', '{at}')"))
        await asyncio.to_thread(upgrade, any_db_url)
        async with engine.begin() as connection:
            assert (await connection.execute(text("SELECT group_id, identity_id FROM outbox"))).one() == (7, 5)
            assert (await connection.execute(text("SELECT adults FROM resident_group"))).scalar() is None
            await connection.execute(text("DELETE FROM identity WHERE id = 5"))
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT group_id, identity_id, status FROM outbox"))).all()
        assert [tuple(r) for r in rows] == [(7, None, "sent")]
    finally:
        await engine.dispose()
