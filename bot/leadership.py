"""One active worker per database: the process that holds the worker lock runs the outbox
senders and the scheduler; any other waits as a standby and takes over when the lock is free.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection of its
  own, outside the pool. When the active process dies — even by SIGKILL — its connection
  closes and the server frees the lock; a standby asks again every ``poll`` seconds.
- SQLite: an exclusive ``flock`` on a file beside the database (``<file>.worker.lock``): one
  machine, and the kernel frees it when the process dies. An in-memory database has no lock.

A holder that loses its lock (the connection to PostgreSQL broke: the server may already have
given it to a standby) stops at once: :meth:`WorkerLock.held` returns, ``serve`` ends the
process with an error, and its supervisor starts it again — as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

LOCK_KEY = 0x486F63567553  # "HocVuS": the advisory lock of the worker role
POLL_SECONDS = 1.0  # how often a standby asks for the lock
CHECK_SECONDS = 2.0  # how often a holder checks that its connection (and so its lock) is alive


class LeadershipLost(RuntimeError):
    """The worker lock is no longer held: this process must stop sending."""


class WorkerLock(Protocol):
    async def acquire(self) -> None:
        """Wait until this process holds the lock."""

    async def held(self) -> None:
        """Return (raising :class:`LeadershipLost`) only if the lock is lost."""

    async def release(self) -> None: ...


class NoLock:
    """A database only this process can open (SQLite in memory): always the holder."""

    async def acquire(self) -> None:
        return None

    async def held(self) -> None:
        await asyncio.Event().wait()

    async def release(self) -> None:
        return None


class FileLock:
    """SQLite: ``flock`` on ``path`` (created if missing)."""

    def __init__(self, path: Path, *, poll: float = POLL_SECONDS) -> None:
        self.path, self._poll, self._fd = path, poll, -1

    def _try(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def acquire(self) -> None:
        if not self._try():
            log.info("worker standby: another process holds %s", self.path.name)
            while not self._try():
                await asyncio.sleep(self._poll)

    async def held(self) -> None:
        await asyncio.Event().wait()  # the kernel keeps it until the process ends

    async def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


class AdvisoryLock:
    """PostgreSQL: a session advisory lock on a connection of its own."""

    def __init__(self, dsn: str, *, key: int = LOCK_KEY, poll: float = POLL_SECONDS,
                 check: float = CHECK_SECONDS) -> None:
        self._dsn, self._key, self._poll, self._check = dsn, key, poll, check
        self._connection: object | None = None

    async def _connect(self) -> object:
        import asyncpg

        return await asyncpg.connect(self._dsn, timeout=10)

    async def acquire(self) -> None:
        told = False
        while True:
            try:
                if self._connection is None:
                    self._connection = await self._connect()
                if await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", self._key):  # type: ignore[attr-defined]
                    return
                if not told:
                    log.info("worker standby: another process holds the worker lock")
                    told = True
            except Exception as exc:  # the server away: ask again later
                log.warning("worker lock: PostgreSQL not reachable (%s); asking again", type(exc).__name__)
                await self._drop()
            await asyncio.sleep(self._poll)

    async def held(self) -> None:
        assert self._connection is not None
        while True:
            await asyncio.sleep(self._check)
            try:
                await asyncio.wait_for(self._connection.fetchval("SELECT 1"), self._check * 2)  # type: ignore[attr-defined]
            except Exception as exc:
                await self._drop()
                raise LeadershipLost(f"the connection holding the worker lock broke ({type(exc).__name__})") from exc

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)  # type: ignore[attr-defined]

    async def release(self) -> None:
        await self._drop()  # closing the session frees its advisory locks


def worker_lock(database_url: str) -> WorkerLock:
    """The worker lock of the database at ``database_url`` (a SQLAlchemy async URL)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(url.set(drivername="postgresql").render_as_string(hide_password=False))
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return NoLock()
    return FileLock(Path(database).with_name(Path(database).name + ".worker.lock"))
