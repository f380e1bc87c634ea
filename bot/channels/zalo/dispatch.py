"""What both Zalo adapters share: dropping repeated events, and handling updates as
concurrent tasks while keeping each chat's replies in order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from bot.core.conversation import KeyedLocks

log = logging.getLogger(__name__)


class RecentKeys:
    """Remembers keys for ``ttl`` seconds, at most ``max_size`` of them (oldest forgotten
    first): enough to drop a webhook retry or a repeated delivery, bounded in memory."""

    def __init__(self, *, ttl: float = 600.0, max_size: int = 20_000, now: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_size
        self._now = now
        self._seen: OrderedDict[Hashable, float] = OrderedDict()

    def seen(self, key: Hashable) -> bool:
        """True if ``key`` was seen within the ttl; otherwise remember it and return False."""
        now = self._now()
        while self._seen and (len(self._seen) >= self._max or next(iter(self._seen.values())) <= now):
            self._seen.popitem(last=False)
        if key in self._seen:
            return True
        self._seen[key] = now + self._ttl
        return False

    def __len__(self) -> int:
        return len(self._seen)


class UpdateTasks:
    """Runs one coroutine per update as a task, at most ``concurrency`` at once.

    The work of one chat runs under that chat's lock, so a resident's replies arrive in
    the order of their messages even when the next message comes before the last answer
    was sent. ``drain()`` waits for everything started so far (shutdown, tests).
    """

    def __init__(self, *, concurrency: int = 16) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._chats = KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = 0  # updates accepted so far (for observers such as tests)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def start(self, chat: Hashable, work: Callable[[], Awaitable[None]]) -> None:
        """Start ``work`` for ``chat``; waits only while ``concurrency`` tasks are running."""
        await self._slots.acquire()
        self.started += 1
        task = asyncio.create_task(self._run(chat, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, chat: Hashable, work: Callable[[], Awaitable[None]]) -> None:
        try:
            async with self._chats.hold(chat):
                await work()
        except Exception:
            # The engine already turns handler errors into an apology; what reaches here is
            # a sending failure. Our exceptions carry no URL, so the traceback is safe.
            log.exception("handling an update failed")
        finally:
            self._slots.release()

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
