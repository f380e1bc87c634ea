"""SQLite statements in one trip to aiosqlite's thread (``storage.sqlite_driver``): what a
statement returns is what SQLAlchemy's own adapter returns, in a quarter of the thread hops; and
an update's transaction (``storage.driver.UpdateTransaction``) in none, on the loop's thread, with
the waits for the write lock and the WAL's checkpoints left on aiosqlite's thread."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import driver, sqlite_driver
from storage.db import create_engine
from storage.driver import UpdateTransaction

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


async def test_a_transaction_that_changed_nothing_ends_with_no_trip(engine: AsyncEngine,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        with trips(monkeypatch) as made:
            await conn.execute(select(people.c.id))  # sqlite3 begins no transaction for a read
            await conn.commit()
            await conn.execute(select(people.c.id))
            await conn.rollback()
    assert made == ["_run", "_run"]


# -- an update's transaction on the event loop's thread (storage.driver.UpdateTransaction) --

async def _insert_one(engine: AsyncEngine, name: str) -> None:
    async with UpdateTransaction(engine) as tx:
        await tx.rows(_INSERT, {"name": name})


_INSERT = insert(people).values(name=bindparam("name"))


async def test_an_updates_transaction_makes_no_trip_to_the_thread(engine: AsyncEngine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Its statements, its write lock and its commit run on the loop's thread: a trip costs
    more than such a statement, and the one writer's lock is held while the trip waits for the
    loop (docs/benchmarks.md, "Sixth round")."""
    monkeypatch.setattr(driver, "_commits", itertools.count(1), raising=False)  # not the commit that checkpoints
    await _insert_one(engine, "warm")  # the connection's own set-up happens before counting
    with trips(monkeypatch) as made:
        async with UpdateTransaction(engine) as tx:
            await tx.rows(_INSERT, {"name": "Lan"})
            read = await tx.rows(select(people.c.name).where(people.c.name == bindparam("name")), {"name": "Lan"})
    assert made == []
    assert read == [("Lan",)]
    async with engine.connect() as conn:  # committed
        assert (await conn.execute(select(people.c.name).order_by(people.c.id))).scalars().all() == ["warm", "Lan"]


async def test_an_update_waits_for_another_writer_on_the_thread_not_on_the_loop(
        engine: AsyncEngine, tmp_path: Path) -> None:
    """When another connection holds the write lock, the update waits for it where SQLite's busy
    timeout may sleep — aiosqlite's thread — while the loop goes on; then it runs and commits."""
    await _insert_one(engine, "warm")
    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0
    try:
        update = asyncio.create_task(_insert_one(engine, "Lan"))
        while ticks < 20:  # the loop runs other work while the update waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert not update.done()
    finally:
        other.execute("COMMIT")
        other.close()
    await asyncio.wait_for(update, 10)
    async with engine.connect() as conn:
        assert (await conn.execute(select(people.c.name).order_by(people.c.id))).scalars().all() == ["warm", "Lan"]


def _wal_frames(path: Path) -> int:
    """Frames the WAL file has room for: it grows while nothing checkpoints it, and is written
    again from its start after a checkpoint."""
    wal = path.with_name(path.name + "-wal")
    return (wal.stat().st_size - 32) // (4096 + 24) if wal.exists() else 0


@pytest.mark.parametrize("every", [4, 10_000])
async def test_commits_on_the_loop_leave_the_checkpoint_to_one_commit_in_a_few(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int) -> None:
    """A commit on the loop's thread never checkpoints the WAL (that writes and syncs the
    database file); one commit in ``CHECKPOINT_EVERY`` is made on aiosqlite's thread, where SQLite
    checkpoints a WAL longer than ``AUTOCHECKPOINT_PAGES``. Without it (every=10,000: no commit
    made there) the WAL only grows."""
    monkeypatch.setattr(sqlite_driver, "AUTOCHECKPOINT_PAGES", 8)
    monkeypatch.setattr("storage.db.AUTOCHECKPOINT_PAGES", 8)
    monkeypatch.setattr(driver, "CHECKPOINT_EVERY", every)
    monkeypatch.setattr(driver, "_commits", itertools.count(1))
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        for n in range(200):
            await _insert_one(engine, f"người {n}")
        frames = _wal_frames(path)
    finally:
        await engine.dispose()
    if every == 4:
        assert frames <= 8 + 4 * 3, frames  # the bound, and what four commits add past it
    else:
        assert frames >= 200, frames  # a page or more per commit, never written over
