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
        assert head_revision() == "0005"
    finally:
        await engine.dispose()
