"""An update's own rows read and written by the database driver itself.

Every update of a resident runs the same few statements on the same three rows (its identity,
its conversation state, its person: ``storage.people``). Through the ORM session each costs
several times what the driver spends on it — the session's bookkeeping, the statement's cache
key, the result's objects — about 0.5 ms of an update's 1.4 ms on PostgreSQL (measured,
docs/benchmarks.md). So these statements are written with SQLAlchemy Core as everywhere else,
compiled once for the engine's database (:func:`prepared`), and run here through the driver's
own prepared statements on the connection the engine checked out of its pool: asyncpg's
``fetch``, or on SQLite ``sqlite3`` itself on the event loop's thread (``storage.sqlite_driver``:
a few microseconds each, where a trip to aiosqlite's thread costs ~50 µs and a wait for the busy
loop — in which the one writer's lock is held and every other resident's update waits). Their values
still go through the columns' types (``UTCDateTime``, JSON, booleans), so what comes back is
what the ORM would have made.

:class:`UpdateTransaction` is one update's transaction on such a connection: the driver's
statements and, when a handler asks for it, an ORM session that joins the same transaction
(``join_transaction_mode`` "rollback_only": committing is the transaction's, not the session's).
On SQLite it takes the write lock when it begins (``BEGIN IMMEDIATE``: what it reads is what it
writes over) and commits on the loop's thread, but for one commit in :data:`CHECKPOINT_EVERY`,
made on aiosqlite's thread, where SQLite checkpoints the WAL once it has grown.

It reaches into SQLAlchemy's asyncpg and aiosqlite adapters as ``storage.sqlite_driver`` does
(the adapter's driver connection, and on PostgreSQL its ``_start_transaction`` so that the
driver's statements and the adapter's commit are one transaction); both are pinned in
``pyproject.toml`` and ``tests/test_driver.py`` checks what this relies on.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from asyncpg.exceptions import ConnectionDoesNotExistError
from sqlalchemy import inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql import ClauseElement
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.sqlite_driver import _run, commit_now, take_write_lock_now

_Convert = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Prepared:
    """A statement compiled for one database: its SQL, its parameters in order (with the values
    written into the statement itself) and how each parameter and each result column is
    converted."""

    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]
    binders: tuple[_Convert, ...]
    readers: tuple[_Convert, ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, bind in zip(self.names, self.binders, strict=True):
            value = params[name] if name in params else self.fixed[name]
            values.append(value if bind is None or value is None else bind(value))
        return values

    def read(self, row: Sequence[Any]) -> tuple[Any, ...]:
        if not self.readers:  # a write returning nothing asked for (an insert's implicit RETURNING of its key)
            return tuple(row)
        return tuple(value if read is None or value is None else read(value)
                     for value, read in zip(row, self.readers, strict=True))


_compiled: dict[tuple[int, int], tuple[ClauseElement, Prepared]] = {}


def prepared(statement: ClauseElement, dialect: Dialect) -> Prepared:
    """``statement`` compiled for ``dialect``, once (the statements given are built once too)."""
    key = (id(statement), id(dialect))
    found = _compiled.get(key)
    if found is not None and found[0] is statement:
        return found[1]
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    binds = compiled.binds
    fixed = {name: binds[name].value for name in names}
    binders = tuple(binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
    columns = statement.exported_columns  # type: ignore[attr-defined]  # a select's, or what DML returns
    readers = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    result = Prepared(compiled.string, names, fixed, binders, readers)
    _compiled[key] = (statement, result)
    return result


# On SQLite, one commit in this many is made on aiosqlite's thread, where SQLite checkpoints the
# WAL when it has more than ``AUTOCHECKPOINT_PAGES`` (a resident's update adds a few pages: the
# WAL stays within a few hundred pages of SQLite's own bound).
CHECKPOINT_EVERY = 64
_commits = itertools.count(1)


class DriverLost(Exception):
    """The connection broke under a driver statement (it was invalidated): try again."""


class UpdateTransaction:
    """One update's transaction: a connection from the engine's pool, the driver's statements
    (:meth:`rows`, :meth:`objects`) and an ORM session joined on first use (:attr:`session`).
    Commits when the block ends without an error (the session flushed first), else rolls back."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._connection: AsyncConnection | None = None
        self._session: AsyncSession | None = None
        self._adapted: Any = None  # SQLAlchemy's adapter of the driver's connection
        self._driver: Any = None  # the driver's own connection (asyncpg's, aiosqlite's)
        self._attach: list[Any] = []

    async def __aenter__(self) -> UpdateTransaction:
        connection = await self.engine.connect()
        try:
            await connection.begin()
            adapted = (await connection.get_raw_connection()).dbapi_connection
            self._driver = adapted._connection  # type: ignore[union-attr]
            self._adapted = adapted
            if self.dialect.name == "postgresql":
                if adapted._transaction is None:  # type: ignore[union-attr]
                    await adapted._start_transaction()  # type: ignore[union-attr]
            elif not take_write_lock_now(self._driver._conn):
                # Another connection (a sender, the scheduler, another process) is writing: wait
                # for it on the connection's thread, never on the loop's.
                async with adapted._execute_mutex:
                    await self._driver._execute(_run, self._driver._conn, "BEGIN IMMEDIATE", None)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        return self

    async def __aexit__(self, kind: Any, error: Any, trace: Any) -> None:
        connection = self._connection
        assert connection is not None
        try:
            if kind is None:
                if self._session is not None:
                    await self._session.flush()
                if self.dialect.name == "sqlite" and next(_commits) % CHECKPOINT_EVERY:
                    commit_now(self._driver._conn)
                await connection.commit()  # SQLAlchemy's; on SQLite no trip when committed above
            else:
                await connection.rollback()
        finally:
            if self._session is not None:
                await self._session.close()
            await connection.close()

    @property
    def connection(self) -> AsyncConnection:
        assert self._connection is not None
        return self._connection

    @property
    def session(self) -> AsyncSession:
        """The ORM session of this transaction, made on first use; rows handed to
        :meth:`attach` before are in it."""
        if self._session is None:
            self._session = AsyncSession(bind=self.connection, expire_on_commit=False,
                                         join_transaction_mode="rollback_only")
            self._session.add_all(self._attach)
        return self._session

    @property
    def session_used(self) -> AsyncSession | None:
        """The session if a handler used it, else None."""
        return self._session

    def attach(self, *rows: Any) -> None:
        """Rows (detached, as :func:`storage.people` makes them) to put in the session when it
        is made, or now if it is."""
        if self._session is not None:
            self._session.add_all(rows)
        else:
            self._attach.extend(rows)

    def loaded(self) -> list[Any]:
        """The rows read in this transaction as objects: the session's, or those waiting for it."""
        if self._session is not None:
            return list(self._session.identity_map.values())
        return list(self._attach)

    async def objects(self, entity: type[Any], statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
        """The rows of ``statement`` (which selects ``entity``'s columns) as objects the ORM
        would have loaded, detached; put in the session if it is made later (:meth:`attach`),
        so a handler that then reads or changes them through the session has these."""
        keys = column_keys(entity)
        made = [detached(entity, dict(zip(keys, row, strict=True))) for row in await self.rows(statement, params)]
        self.attach(*made)
        return made

    async def rows(self, statement: ClauseElement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of ``statement`` (built once), converted as the ORM would."""
        found = prepared(statement, self.dialect)
        arguments = found.arguments(params)
        connection = self.connection.sync_connection
        if connection.dispatch.before_cursor_execute:  # what watches the engine's statements sees these too
            connection.dispatch.before_cursor_execute(connection, None, found.sql, arguments, None, False)
        try:
            if self.dialect.name == "postgresql":
                raw = await self._driver.fetch(found.sql, *arguments)
            else:  # the write lock is held: nothing here waits for another connection
                _, _, _, raw = _run(self._driver._conn, found.sql, arguments)
        except (OSError, ConnectionDoesNotExistError) as exc:
            # SQLAlchemy would have invalidated the connection: so is it here, never pooled again.
            await self.connection.invalidate()
            raise DriverLost(str(exc)) from exc
        return [found.read(row) for row in raw]


@cache
def column_keys(entity: type[Any]) -> tuple[str, ...]:
    """The attributes of ``entity``'s columns, in the table's order (as ``select(entity)`` has them)."""
    return tuple(column.key for column in entity.__table__.columns)


def detached(entity: type[Any], values: dict[str, Any]) -> Any:
    """``entity`` with ``values`` as loaded from its row: detached, unchanged (SQLAlchemy's
    ``make_transient_to_detached``)."""
    row = inspect(entity).class_manager.new_instance()
    row.__dict__.update(values)
    make_transient_to_detached(row)
    return row
