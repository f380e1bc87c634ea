"""Per-chat order for the channel adapters: one chat's updates are handled and answered one
after the other, in the order they arrived; different chats run in parallel.

The place in a chat's queue is taken synchronously, when the update is submitted — before any
``await`` — so nothing that happens later (a slow Bot API call, a busy database) can let a
chat's second update overtake its first: not its handling, not its replies, not the answer to a
pressed button.

Each job is given an acknowledgement future. The adapter resolves it once the update is
*committed* (its effects are in the database; the replies may still be on their way), and it
resolves by itself when the job ends or fails. A poller confirms an update to the channel only
once it is acknowledged; a webhook answers only then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[asyncio.Future[None]], Awaitable[None]]


def acknowledge(ack: asyncio.Future[None] | None) -> None:
    """Mark the update as committed (idempotent)."""
    if ack is not None and not ack.done():
        ack.set_result(None)


class ChatQueues:
    """Runs submitted jobs one at a time per chat, in submission order; at most ``concurrency``
    jobs of different chats at once. ``drain()`` waits for everything submitted so far;
    ``room()`` lets a poller wait while ``backlog`` jobs are already queued."""

    def __init__(self, *, concurrency: int = 64, backlog: int = 1000) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._backlog = backlog
        self._freed = asyncio.Event()
        self._tails: dict[Hashable, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = 0  # jobs submitted so far (for observers such as tests)
        self.finished = 0  # jobs ended so far, their replies sent (for observers such as tests)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def room(self) -> None:
        """Wait until fewer than ``backlog`` jobs are queued (a poller's backpressure)."""
        while len(self._tasks) >= self._backlog:
            self._freed.clear()
            await self._freed.wait()

    def submit(self, chat: Hashable, job: Job) -> asyncio.Future[None]:
        """Queue ``job`` behind the chat's earlier jobs; returns its acknowledgement."""
        loop = asyncio.get_running_loop()
        ack: asyncio.Future[None] = loop.create_future()
        previous = self._tails.get(chat)
        task = loop.create_task(self._run(chat, previous, job, ack))
        self._tails[chat] = task
        self._tasks.add(task)
        task.add_done_callback(self._done)
        self.started += 1
        return ack

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.finished += 1
        self._freed.set()

    async def _run(self, chat: Hashable, previous: asyncio.Task[None] | None, job: Job,
                   ack: asyncio.Future[None]) -> None:
        try:
            if previous is not None:
                await asyncio.wait({previous})  # its outcome is its own; only the order matters here
            async with self._slots:
                await job(ack)
        except Exception:
            # The engine already turns handler errors into an apology; what reaches here is a
            # sending failure. Our exceptions carry no URL or token, so the traceback is safe.
            log.exception("handling an update failed")
        finally:
            acknowledge(ack)
            if self._tails.get(chat) is asyncio.current_task():
                del self._tails[chat]

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
