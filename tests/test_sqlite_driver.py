"""SQLite statements in one trip to aiosqlite's thread (``storage.sqlite_driver``): what a
statement returns is what SQLAlchemy's own adapter returns, in a quarter of the thread hops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine

metadata = MetaData()
people = Table("people", metadata, Column("id", Integer, primary_key=True), Column("name", String, unique=True))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@contextmanager
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The calls handed to aiosqlite's thread while the block runs."""
    made: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield made
    monkeypatch.undo()


async def test_each_statement_is_one_trip_to_the_thread(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection's own set-up happens before counting
        with trips(monkeypatch) as made:
            inserted = await conn.execute(insert(people).values(name="Lan"))
            found = (await conn.execute(select(people.c.id, people.c.name))).all()
            changed = await conn.execute(update(people).values(name="Lan Nguyễn"))
        await conn.commit()
    # SQLAlchemy's own adapter: cursor, execute, fetch, close — three or four trips each.
    assert len(made) == 3, made
    assert inserted.inserted_primary_key == (1,)
    assert found == [(1, "Lan")]
    assert changed.rowcount == 1


async def test_rows_columns_counts_and_many_rows_are_as_the_driver_gives_them(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        many = await conn.execute(insert(people), [{"name": f"người {i}"} for i in range(5)])
        assert many.rowcount == 5
        result = await conn.execute(select(people.c.id, people.c.name).order_by(people.c.id))
        assert list(result.keys()) == ["id", "name"]
        assert [row.name for row in result] == [f"người {i}" for i in range(5)]
        assert (await conn.execute(update(people).where(people.c.id > 3).values(name=None))).rowcount == 2
        assert (await conn.execute(select(people.c.id).where(people.c.id > 99))).first() is None
        streamed = await conn.stream(select(people.c.id).order_by(people.c.id))  # a server-side cursor
        assert [row.id async for row in streamed] == [1, 2, 3, 4, 5]


async def test_an_error_is_sqlalchemys_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(insert(people).values(name="Lan"))
        with pytest.raises(IntegrityError):
            await conn.execute(insert(people).values(name="Lan"))
        await conn.rollback()
        await conn.execute(insert(people).values(name="Minh"))
        await conn.commit()
        assert (await conn.execute(select(people.c.name))).scalars().all() == ["Minh"]
