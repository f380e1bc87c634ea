"""The outbox sender: one per channel (bot token), draining due rows at the channel's pace.

Loop: claim a batch of due rows with a lease → for each, wait for the rate limiter, call
the channel, and record the outcome in its own short transaction **right after the API
answers**. A crash therefore re-sends at most the rows whose call had returned but whose
outcome was not yet written: at most ``concurrency`` rows. Rows claimed but not yet sent
simply wait for their lease to run out and are claimed again.

Outcomes: sent → ``sent``; 429 → every send pauses for ``retry_after`` and the row goes back
to pending without counting an attempt; blocked → identity flagged, row ``blocked``, the
identity's other pending rows too; permanent error → ``failed`` with the reason; transient
(5xx, timeout, network) → retried with exponential backoff, ``failed`` after ``max_attempts``.
Nothing is sent in the quiet hours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.conversation import Clock
from bot.delivery.limiter import RateLimiter
from bot.delivery.quiet import QuietHours
from bot.delivery.transport import Delivery, OutboundMessage, Recipient, Result, Transport
from storage import outbox
from storage.db import SessionFactory
from storage.models import ConversationState

log = logging.getLogger(__name__)

AfterSent = Callable[[AsyncSession, outbox.Claimed, datetime], Awaitable[None]]


class Sender:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        transport: Transport,
        clock: Clock,
        quiet: QuietHours,
        lease_seconds: float = 60,
        concurrency: int = 8,
        batch_size: int | None = None,
        idle_seconds: float = 1.0,
        max_attempts: int = 6,
        backoff_seconds: float = 5.0,
        backoff_max_seconds: float = 3600.0,
        after_sent: dict[str, AfterSent] | None = None,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.clock = clock
        self.quiet = quiet
        self.lease = timedelta(seconds=lease_seconds)
        self.concurrency = concurrency
        self.batch_size = batch_size or concurrency * 4
        self.idle_seconds = idle_seconds
        self.max_attempts = max_attempts
        self.backoff = backoff_seconds
        self.backoff_max = backoff_max_seconds
        self.after_sent = after_sent or {}
        pacing = transport.pacing
        self.limiter = RateLimiter(pacing.per_second, burst=pacing.burst, per_key_interval=pacing.per_chat_interval)
        self._slots = asyncio.Semaphore(concurrency)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._abort_batch = False
        self.rounds = 0  # loop iterations, for monitoring and tests
        self._held: set[int] = set()  # rows this sender is working on (never start one twice)

    @property
    def channel(self) -> str:
        return self.transport.channel

    def wake(self) -> None:
        """New rows were queued: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Keep up to ``batch_size`` rows claimed and moving until :meth:`stop`.

        Rows are claimed again as soon as half the window is free, so the channel is never
        idle between batches; the rate limiter, not the batch size, sets the pace."""
        log.info("sender for %s started", self.channel)
        tasks: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            self.rounds += 1
            try:
                now = self.clock.now()
                if self.quiet.contains(now):
                    await self._wait(tasks, (self.quiet.next_allowed(now) - now).total_seconds())
                    continue
                room = self.batch_size - len(tasks)
                claimed = await self._claim(now, room) if room * 2 >= self.batch_size else []
                for row in claimed:
                    if row.id in self._held:
                        continue  # its lease ran out while it waited here: the claim renewed it
                    self._held.add(row.id)
                    task = asyncio.create_task(self._send(row))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if not tasks:
                    self._abort_batch = False
                await self._wait(tasks, self.idle_seconds if not claimed else 0.05)
            except Exception:
                # The database may be briefly unavailable; never let the loop die.
                log.exception("sender for %s failed a round; retrying", self.channel)
                await self._wait(tasks, self.idle_seconds * 5)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        log.info("sender for %s stopped", self.channel)

    async def _claim(self, now: datetime, limit: int) -> list[outbox.Claimed]:
        async with self.sessions() as session, session.begin():
            return await outbox.claim_due(
                session, channel=self.channel, now=now, lease_until=now + self.lease, limit=limit
            )

    async def _wait(self, tasks: set[asyncio.Task[None]], seconds: float) -> None:
        """Until a send finishes, someone calls :meth:`wake`, or ``seconds`` pass."""
        self._wake.clear()
        waiter = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({waiter, *tasks}, timeout=max(0.01, min(seconds, 60.0)),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    async def _send(self, row: outbox.Claimed) -> None:
        try:
            await self._deliver(row)
        finally:
            self._held.discard(row.id)

    async def _deliver(self, row: outbox.Claimed) -> None:
        message = OutboundMessage.from_payload(row.payload)
        await self.limiter.acquire(row.identity_id)
        if self._abort_batch or self._stop.is_set():
            await self._record(row, None)  # back to pending, untouched
            return
        async with self._slots:
            try:
                delivery = await self.transport.deliver(Recipient(row.external_id, row.last_seen_at), message)
            except Exception as exc:  # an adapter bug must not stop the queue
                log.exception("delivery of outbox row %s raised", row.id)
                delivery = Delivery(Result.TRANSIENT, reason=f"{type(exc).__name__}")
            await self._record(row, delivery)

    async def _record(self, row: outbox.Claimed, delivery: Delivery | None) -> None:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            if delivery is None:
                await outbox.requeue(session, outbox_id=row.id, due_at=now)
            elif delivery.result == Result.SENT:
                if await outbox.mark_sent(session, outbox_id=row.id, now=now):
                    await self._remember_options(session, row)
                    hook = self.after_sent.get(row.kind)
                    if hook is not None:
                        await hook(session, row, now)
            elif delivery.result == Result.RETRY_AFTER:
                self.limiter.pause(delivery.retry_after)
                if delivery.retry_after >= self.lease.total_seconds() / 2:
                    self._abort_batch = True  # don't sit on leases through a long pause
                await outbox.requeue(session, outbox_id=row.id, due_at=now)
            elif delivery.result == Result.BLOCKED:
                await outbox.mark_blocked(
                    session, outbox_id=row.id, identity_id=row.identity_id, now=now, reason=delivery.reason
                )
            elif delivery.result in (Result.FAILED, Result.NOT_ALLOWED):
                await outbox.mark_failed(session, outbox_id=row.id, reason=delivery.reason or delivery.result)
            elif row.attempts + 1 >= self.max_attempts:
                await outbox.mark_failed(session, outbox_id=row.id, reason=f"hết lượt thử: {delivery.reason}")
            else:
                # The channel may say when to come back (Zalo OA at night); else back off.
                delay = delivery.retry_after or min(self.backoff * 2**row.attempts, self.backoff_max)
                await outbox.retry_later(
                    session, outbox_id=row.id, due_at=now + timedelta(seconds=delay), reason=delivery.reason
                )

    @staticmethod
    async def _remember_options(session: AsyncSession, row: outbox.Claimed) -> None:
        """A proactive message with options becomes the pending menu, so a reply "1" (or the
        option's label) on a numbered channel picks from it like from any other menu."""
        options = row.payload.get("options")
        if not options:
            return
        state = (
            await session.exec(select(ConversationState).where(ConversationState.identity_id == row.identity_id))
        ).first()
        if state is not None:
            state.menu = {"options": [[label, action, []] for label, action in options]}
            session.add(state)
