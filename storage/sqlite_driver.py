"""SQLite through aiosqlite in one trip to its thread per statement.

aiosqlite runs each SQLite connection in a thread of its own and hands it one call at a time
through a queue; every call is a thread hop (a queue put, a wake-up, a future resolved through
the event loop's self-pipe), about 50 µs of CPU here. SQLAlchemy's aiosqlite adapter makes
four of them per statement that returns rows (open a cursor, execute, fetch, close) and three
for the others: 26 hops for a resident's update of seven statements (measured, docs/benchmarks.md).
The cursor below does the four steps in one call on the connection's own thread, so a statement
is one hop. Everything else — the connection, transactions, server-side cursors, errors — stays
SQLAlchemy's adapter; this module only hands the engine a DB-API module whose connections make
these cursors (``create_engine(..., module=one_hop_dbapi())``, a documented engine argument).

A resident's update needs no trip at all: ``storage.driver.UpdateTransaction`` runs its few
small statements on the event loop's own thread (:func:`take_write_lock_now`, :func:`commit_now`
below), where one costs a few microseconds against the ~50 µs and the wait for the loop that a
trip costs. What may wait stays on the thread: taking the write lock when another connection holds
it (the busy timeout sleeps), and the WAL's checkpoint (it writes the database file and syncs it).
A transaction that does not commit on the loop thread commits on the connection's thread as before;
one that made no change (sqlite3 began none: reads only) commits and rolls back with no trip.

It reaches into aiosqlite as SQLAlchemy's adapter itself does (``Connection._execute``, the
queue runner, and ``_conn``, the ``sqlite3`` connection on its thread, which SQLAlchemy opens for
use from any thread); ``aiosqlite`` is pinned in ``pyproject.toml`` and
``tests/test_sqlite_driver.py`` checks the behaviour a statement relies on.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

_Outcome = tuple[Any, int, int | None, list[Any]]

BUSY_TIMEOUT_MS = 5000  # how long a statement waits for another connection's write lock
AUTOCHECKPOINT_PAGES = 1000  # SQLite's default: a commit that finds the WAL this long checkpoints it


def _run(connection: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """On the connection's thread: the statement, its rows and what the cursor tells of it."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, operation: str, seq_of_parameters: Any) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return None, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs, is fetched and closed in one hop."""

    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # Not the base class's __init__: it opens an aiosqlite cursor, a hop of its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows: collections.deque[Any] = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    async def _hop(self, fn: Any, operation: str, parameters: Any) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(fn, connection._conn, operation, parameters)
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._hop(_run, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._hop(_run_many, operation, list(seq_of_parameters))

    async def _async_soft_close(self) -> None:
        """Nothing to close: the rows were fetched and the cursor closed on the thread."""

    def close(self) -> None:
        self._rows.clear()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def commit(self) -> None:
        if self._in_transaction():  # else there is nothing to commit: no trip
            super().commit()

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()

    def _in_transaction(self) -> bool:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        return connection._connection is not None and connection._conn.in_transaction


def take_write_lock_now(connection: sqlite3.Connection) -> bool:
    """On the calling thread, ``BEGIN IMMEDIATE`` without waiting: False (and no transaction)
    when another connection holds the write lock — then take it on the connection's own thread,
    where the busy timeout may sleep."""
    connection.execute("PRAGMA busy_timeout=0")
    try:
        connection.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as exc:
        # The primary code of an extended one (SQLITE_BUSY_RECOVERY…).
        if (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    finally:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def commit_now(connection: sqlite3.Connection) -> None:
    """On the calling thread, commit without checkpointing the WAL (that writes and syncs the
    database file): the next commit made on the connection's thread checkpoints it if it has grown."""
    connection.execute("PRAGMA wal_autocheckpoint=0")
    try:
        connection.commit()
    finally:
        connection.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DB-API adapter, making :class:`OneHopCursor` cursors."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def one_hop_dbapi() -> OneHopDBAPI:
    return OneHopDBAPI(aiosqlite, sqlite3)
