"""Engine and session factories. Nothing here runs at import time.

On SQLite, a session's reads run outside any transaction until its first write, which begins
one (the driver's own behaviour): readers never wait for the write lock (WAL) and a writer takes
it at its first write. A transaction that reads *inside* a transaction and then writes would
fail at once with "database is locked" when another writer committed in between (its snapshot is
stale), which no busy timeout cures. The conversation engine's transaction must read its state
and write consistently and must not fail, so it starts with ``BEGIN IMMEDIATE``: it takes the
write lock first, waiting up to the busy timeout for it (``storage.driver.UpdateTransaction``);
other writers of the engine come from :func:`immediate_session_factory`. Writers that may still meet a busy database run
under :func:`retrying`. The engine sizes its connection pool for the work that may hold a
connection at once (updates in flight, outbox sends, the scheduler).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.driver import DriverLost
from storage.sqlite_driver import AUTOCHECKPOINT_PAGES, BUSY_TIMEOUT_MS, one_hop_dbapi

log = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]
T = TypeVar("T")

IMMEDIATE = "hocvuso_begin_immediate"  # execution option: start SQLite transactions with the write lock
# PostgreSQL errors that mean "try the same transaction again": serialization failure,
# deadlock detected, lock not available, and the connection-level failures.
_RETRY_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "08000", "08003", "08006"}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while one writer writes; the busy timeout makes a second
    # writer wait instead of failing; SQLite leaves foreign keys off unless asked.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")  # SQLite's default, restored after a commit without one
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Otherwise the driver begins the transaction itself, at the first write.
    if connection.get_execution_options().get(IMMEDIATE, False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the folder of a SQLite file (``data/`` by default) so a fresh clone just runs."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(database_url: str, *, connections: int | None = None, **kwargs: Any) -> AsyncEngine:
    """The engine of ``database_url``. ``connections``: how many connections may be in use
    at once (updates in flight + senders + scheduler); requests beyond it wait in the pool."""
    ensure_sqlite_directory(database_url)
    if connections is not None:
        kwargs.setdefault("pool_size", connections)
        kwargs.setdefault("max_overflow", 4)
        kwargs.setdefault("pool_timeout", 60)
    if make_url(database_url).drivername == "sqlite+aiosqlite":
        kwargs.setdefault("module", one_hop_dbapi())  # a statement in one trip to its thread
    engine = create_async_engine(database_url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def immediate_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions whose transactions take SQLite's write lock when they begin (see the module's
    docstring); the same as :func:`session_factory` on PostgreSQL."""
    return async_sessionmaker(engine.execution_options(**{IMMEDIATE: True}), class_=AsyncSession,
                              expire_on_commit=False)


def dialect_insert(session: AsyncSession) -> Callable[..., Any]:
    """The ``insert`` of the session's database, the one with ``on_conflict_do_…`` (PostgreSQL's
    or SQLite's; a session without a bind is taken for SQLite)."""
    bind = session.bind
    return insert_of(bind.dialect.name if bind is not None else "sqlite")


def insert_of(dialect: str) -> Callable[..., Any]:
    """The ``insert`` with ``on_conflict_do_…`` of the database named ``dialect``."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` means the database was busy or the connection dropped, so that the
    same transaction, tried again a moment later, may well succeed."""
    if isinstance(exc, PoolTimeoutError):
        return True  # every connection was in use for the pool timeout
    # SQLAlchemy's wrapping of a driver's error, or the driver's own (``storage.driver``'s statements).
    if isinstance(exc, OperationalError | sqlite3.OperationalError):
        message = str(getattr(exc, "orig", None) or exc).lower()
        if "database is locked" in message or "database is busy" in message or "database table is locked" in message:
            return True
    if getattr(exc, "sqlstate", None) in _RETRY_SQLSTATES or isinstance(exc, DriverLost):
        return True  # asyncpg's own error (a deadlock…), or a connection lost under a driver statement
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(getattr(exc.orig, "__cause__", None), "sqlstate", None)
        return sqlstate in _RETRY_SQLSTATES
    return False


async def retrying(work: Callable[[], Awaitable[T]], *, attempts: int = 6, first_delay: float = 0.05,
                   max_delay: float = 2.0, what: str = "transaction") -> T:
    """Run ``work`` (which opens and commits its own transaction); when the database was busy,
    run it again after a short, growing pause, at most ``attempts`` times in all. Each SQLite
    attempt itself waits up to the busy timeout (5 s) for the write lock."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except Exception as exc:
            if attempt == attempts or not is_busy(exc):
                raise
            log.warning("%s: database busy (%s), attempt %d of %d; retrying", what, type(exc).__name__,
                        attempt, attempts)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
