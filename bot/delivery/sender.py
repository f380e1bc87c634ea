"""The outbox sender: one per channel account (a bot), draining its due rows at its pace.

Loop: claim due rows with a lease, each claim with its own fencing token (``outbox.claim``,
never re-claiming a row this sender still holds) → for each row, wait for the rate limiter
and a send slot, run the kind's check if it has one, call the channel, and store the outcome
in a short transaction **while still holding the slot**. Outcomes are stored by group commit:
one transaction takes every outcome that arrived while the previous one was being written
(the plain "sent" ones as one statement run for many rows), so a sender at hundreds of
messages a second writes a few transactions a second; if one outcome of a group fails for
good, each is stored on its own. A failed outcome write (the database busy or unreachable)
is retried with capped backoff until it is stored, so at most ``concurrency`` rows are ever
in doubt: sent but not yet marked. A crash re-sends at most
those. Rows claimed but not yet sent simply wait for their lease to run out and are claimed
again; an outcome arriving after someone else re-claimed the row changes nothing (the
token no longer matches).

A broadcast's row names its broadcast and carries no payload: the message is read from the
broadcast once per broadcast (a short read of its own, never inside a claim) and kept in
memory; rows that carry a payload (everything else, and broadcasts queued before 0012) are
sent as they are. The limiter is asked once per API call the message takes (a photo followed
by its text is two), so a broadcast with a photo keeps the channel's pace too.

Outcomes: sent → ``sent``; 429 → every send pauses for ``retry_after`` and the row goes back
to pending without counting an attempt; blocked → identity flagged, row ``blocked``, the
identity's other pending rows too; permanent error → ``failed`` with the reason; transient
(5xx, timeout, network) → retried with exponential backoff, ``failed`` after ``max_attempts``;
a check's reason → ``cancelled`` with that reason.

Nothing is sent in the quiet hours: the loop does not claim then, and a claimed row whose
turn comes in the quiet hours goes back to pending — except the kinds in ``at_any_hour``: the
other half of something the recipient did a moment ago (confirming a /lienket code, which lives
10 minutes), never news, reminders or nudges. Producers set ``due_at`` to the intended
time; the quiet hours are this sender's, so changing them applies to what is queued.

Options of a proactive message never change what a typed number means: on a numbered
channel they are numbered only when the resident's conversation is at rest (at the menu,
untouched for ``rest``); otherwise they are words to type. Once sent, they become the pending
menu only if they were numbered and the conversation did not move meanwhile, else the
menu's ``extra`` (``storage.proactive``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import metrics
from bot.core.conversation import Clock
from bot.delivery.limiter import RateLimiter
from bot.delivery.quiet import QuietHours
from bot.delivery.transport import Delivery, OutboundMessage, Recipient, Result, Transport
from handlers.steps import Step
from storage import broadcasts, outbox, proactive
from storage.db import SessionFactory

log = logging.getLogger(__name__)

AfterSent = Callable[[AsyncSession, outbox.Claimed, datetime], Awaitable[None]]
# Runs in a short transaction just before a row is sent: None to send it, or a reason (in
# Vietnamese) to cancel it. It may enqueue other rows (re-routing); they commit with the cancel.
Check = Callable[[AsyncSession, outbox.Claimed, datetime], Awaitable[str | None]]
Work = Callable[[AsyncSession], Awaitable[Any]]

AT_REST_STEPS = frozenset({Step.MENU.value, Step.NEW.value})
# The other half of a handshake the recipient started a moment ago: sent in the quiet hours too.
AT_ANY_HOUR = frozenset({"link_confirm", "link_done"})
REST = timedelta(minutes=10)  # untouched this long at the menu: a typed number may pick proactive options
OUTCOMES_AT_ONCE = 200  # outcomes stored in one transaction at most
MESSAGES_KEPT = 64  # broadcasts whose message a sender keeps in memory (a few run at once)
NO_MESSAGE = "không tìm thấy nội dung của thông báo"


class _Fenced(Exception):
    """Someone else holds the row now (its lease ran out and it was claimed again)."""


def transient(exc: BaseException) -> bool:
    """A database error that may pass: busy/locked, a lost connection, a pool timeout,
    a deadlock or serialisation failure. Constraint and SQL errors will not."""
    if isinstance(exc, (IntegrityError, ProgrammingError, DataError)):
        return False
    return isinstance(exc, (DBAPIError, PoolTimeout, OSError, asyncio.TimeoutError))


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
        store_retry_seconds: tuple[float, float] = (0.1, 5.0),
        rest: timedelta = REST,
        after_sent: dict[str, AfterSent] | None = None,
        checks: dict[str, Check] | None = None,
        at_any_hour: Collection[str] = AT_ANY_HOUR,
        limiter: RateLimiter | None = None,
    ) -> None:
        """``limiter``: the channel account's pace, when its replies share it (they spend first,
        this sender sends with what is left); by default one of the transport's ``pacing``."""
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
        self.store_retry = store_retry_seconds  # first and longest wait between tries of a write
        self.rest = rest
        self.after_sent = after_sent or {}
        self.checks = checks or {}
        self.at_any_hour = frozenset(at_any_hour)
        pacing = transport.pacing
        self.limiter = limiter or RateLimiter(pacing.per_second, burst=pacing.burst,
                                              per_key_interval=pacing.per_chat_interval)
        self._slots = asyncio.Semaphore(concurrency)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._abort_batch = False
        self.rounds = 0  # loop iterations, for monitoring and tests
        self._held: set[int] = set()  # rows this sender is working on: never claimed again by it
        # Broadcast id → its message (immutable once queued), read once by this sender.
        self._messages: OrderedDict[int, dict[str, Any] | None] = OrderedDict()
        self._reading = asyncio.Lock()
        self._outcomes: list[_Outcome] = []  # waiting for the next group commit
        self._writer: asyncio.Task[None] | None = None

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
        idle between batches; the rate limiter, not the batch size, sets the pace. A round
        that fails (the database busy or away) is logged and tried again later."""
        log.info("sender for %s started", self.channel)
        tasks: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            self.rounds += 1
            try:
                now = self.clock.now()
                quiet = self.quiet.contains(now)
                if quiet and not self.at_any_hour:
                    await self._wait((self.quiet.next_allowed(now) - now).total_seconds())
                    continue
                room = self.batch_size - len(tasks)
                kinds = self.at_any_hour if quiet else None
                claimed = await self._claim(now, room, kinds) if room * 2 >= self.batch_size else []
                for row in claimed:
                    self._held.add(row.id)
                    task = asyncio.create_task(self._send(row))
                    tasks.add(task)
                    task.add_done_callback(lambda done: (tasks.discard(done), self._wake.set()))
                if not tasks:
                    self._abort_batch = False
                await self._wait(self.idle_seconds if not claimed else 0.05)
            except Exception:
                # The database may be briefly unavailable; never let the loop die.
                log.exception("sender for %s failed a round; retrying", self.channel)
                await self._wait(self.idle_seconds * 5)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        log.info("sender for %s stopped", self.channel)

    async def _claim(self, now: datetime, limit: int, kinds: Collection[str] | None = None) -> list[outbox.Claimed]:
        async with self.sessions() as session:  # look first: an idle poll never takes the write lock
            if not await outbox.any_due(session, channel=self.channel, now=now, exclude=self._held, kinds=kinds):
                return []
        async with self.sessions() as session, session.begin():
            return await outbox.claim_due(
                session, channel=self.channel, now=now, lease_until=now + self.lease, limit=limit,
                exclude=self._held, kinds=kinds,
            )

    async def _wait(self, seconds: float) -> None:
        """Until a send finishes (its task sets the wake event as it ends), someone calls
        :meth:`wake`, or ``seconds`` pass. Never ``asyncio.wait`` on every send in flight: with
        hundreds of them each round would hook and unhook a callback on each."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, min(seconds, 60.0)))

    async def _send(self, row: outbox.Claimed) -> None:
        try:
            await self._deliver(row)
        except Exception:
            # Nobody awaits this task: say what happened here. The row stays "sending" and is
            # claimed again when its lease runs out.
            log.exception("outbox row %s could not be handled", row.id)
        finally:
            self._held.discard(row.id)

    async def _payload(self, row: outbox.Claimed) -> dict[str, Any] | None:
        """What the row says: its payload, or for a broadcast's row (which names its broadcast
        and carries nothing) the broadcast's message — read in a short transaction of its own,
        never in the claim's, once per broadcast: later rows take it from memory. None: the
        broadcast has no message (a row without one cannot be sent)."""
        if row.payload or row.broadcast_id is None:
            return row.payload
        broadcast_id = row.broadcast_id
        async with self._reading:  # the first row of a broadcast reads; the others wait for it
            if broadcast_id not in self._messages:
                found: dict[str, Any] | None = None

                async def read(session: AsyncSession) -> None:
                    nonlocal found
                    found = await broadcasts.broadcast_message(session, broadcast_id=broadcast_id)

                await self._store(row, "message", read)
                self._messages[broadcast_id] = found
                while len(self._messages) > MESSAGES_KEPT:
                    self._messages.popitem(last=False)
            self._messages.move_to_end(broadcast_id)
            return self._messages[broadcast_id]

    async def _paced(self, row: outbox.Claimed, calls: int) -> bool:
        """Wait for the row's turns at the channel's pace (one per API call of its message; a
        429's pause included); False when the sender is stopped first: a shutdown never waits
        out a "retry after"."""

        async def turns() -> None:
            await self.limiter.acquire(row.identity_id)
            for _ in range(calls - 1):
                await self.limiter.acquire()  # every call of the message counts against the channel's pace

        turn = asyncio.ensure_future(turns())
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({turn, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if turn.done() and not turn.cancelled():
            return True
        turn.cancel()
        await asyncio.gather(turn, return_exceptions=True)
        return False

    async def _deliver(self, row: outbox.Claimed) -> None:
        payload = await self._payload(row)
        if payload is None:
            await self._store_outcome(row, lambda s: outbox.mark_failed(
                s, outbox_id=row.id, claim=row.claim, reason=NO_MESSAGE))
            return
        message = OutboundMessage.from_payload(payload)
        if not await self._paced(row, message.calls(self.transport.capabilities)):
            # Stopping: the row goes back to pending now (its lease released) for whoever sends next.
            await self._store(row, "requeue", lambda s: self._requeue(s, row, self.clock.now()))
            return
        async with self._slots:  # held until the outcome is stored: at most `concurrency` in doubt
            now = self.clock.now()
            quiet = self.quiet.contains(now) and row.kind not in self.at_any_hour
            if self._abort_batch or self._stop.is_set() or quiet:
                await self._store_outcome(row, lambda s: self._requeue(s, row, now))
                return
            prepared = await self._prepare(row, message, now)
            if prepared is None:
                return  # cancelled by its check, or no longer ours
            recipient = Recipient(row.external_id, row.last_seen_at)
            try:
                delivery = await self.transport.deliver(recipient, prepared.message)
            except Exception as exc:  # an adapter bug must not stop the queue
                log.exception("delivery of outbox row %s raised", row.id)
                delivery = Delivery(Result.TRANSIENT, reason=f"{type(exc).__name__}")
            metrics.SENDS.labels(channel=self.channel, result=delivery.result.value).inc()
            if delivery.result == Result.RETRY_AFTER:
                self.limiter.pause(delivery.retry_after)
                if delivery.retry_after >= self.lease.total_seconds() / 2:
                    self._abort_batch = True  # don't sit on leases through a long pause
            if delivery.result == Result.SENT and not prepared.message.options and row.kind not in self.after_sent:
                await self._store_outcome(row, sent_at=self.clock.now())  # nothing else to do: with the others
            else:
                await self._store_outcome(row, lambda s: self._outcome(s, row, prepared, delivery))

    async def _prepare(self, row: outbox.Claimed, message: OutboundMessage, now: datetime) -> _Prepared | None:
        """Run the row's check and, for options on a numbered channel, decide whether they
        may be numbered — in one short transaction. None: the row is not to be sent."""
        check = self.checks.get(row.kind)
        look = bool(message.options) and self.transport.capabilities.numbered_menus
        if check is None and not look:
            return _Prepared(message)
        reason: str | None = None
        version: int | None = None

        async def work(session: AsyncSession) -> None:
            nonlocal reason, version
            if check is not None:
                reason = await check(session, row, now)
                if reason is not None:
                    if not await outbox.mark_cancelled(session, outbox_id=row.id, claim=row.claim, reason=reason):
                        raise _Fenced  # roll back whatever the check queued: the new holder decides
                    return
            if look:
                version = await proactive.resting_version(
                    session, identity_id=row.identity_id, now=now, steps=AT_REST_STEPS, rest=self.rest
                )

        try:
            await self._store(row, "check", work)
        except _Fenced:
            return None
        if reason is not None:
            log.info("outbox row %s cancelled before sending: %s", row.id, reason)
            return None
        if not look:
            return _Prepared(message)
        return _Prepared(replace(message, numbered=version is not None), seen_at_rest=version)

    async def _store(self, row: outbox.Claimed, what: str, work: Work, *, others: int = 0) -> None:
        """Run ``work`` in its own transaction until it is stored. Transient database errors
        are logged (WARNING, with the exception) and retried with capped backoff; anything
        else propagates. ``others``: how many more rows' work the transaction carries."""
        delay, longest = self.store_retry
        attempt = 0
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    await work(session)
                return
            except Exception as exc:
                if not transient(exc):
                    raise
                attempt += 1
                log.warning("storing the %s of outbox row %s%s failed (try %s), trying again in %.1f s",
                            what, row.id, f" and {others} others" if others else "", attempt, delay, exc_info=exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)

    async def _store_outcome(self, row: outbox.Claimed, work: Work | None = None, *,
                             sent_at: datetime | None = None) -> None:
        """Store a row's outcome — ``work``, or, with ``sent_at`` alone, "sent then" — together
        with the others waiting: one transaction for all the outcomes that arrived while the
        previous one was written (a group commit), the plain "sent" ones in one statement run
        for many rows, so hundreds of sends in flight cost a few transactions a second, not
        hundreds. Returns once this outcome is stored, so the caller still holds its send slot
        until then: at most ``concurrency`` rows are ever in doubt."""
        outcome = _Outcome(row, work, sent_at, asyncio.get_running_loop().create_future())
        self._outcomes.append(outcome)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_outcomes())
        await outcome.done

    async def _write_outcomes(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes[:OUTCOMES_AT_ONCE], self._outcomes[OUTCOMES_AT_ONCE:]

            async def all_of(session: AsyncSession, batch: list[_Outcome] = batch) -> None:
                sent = [(o.row.id, o.row.claim, o.sent_at) for o in batch if o.sent_at is not None]
                if sent:
                    await outbox.mark_sent_many(session, rows=sent)
                for outcome in batch:
                    if outcome.sent_at is None and outcome.work is not None:
                        await outcome.work(session)

            try:
                await self._store(batch[0].row, "outcome", all_of, others=len(batch) - 1)
                results: list[BaseException | None] = [None] * len(batch)
            except Exception:
                # One of them fails for good (or a hook does): each on its own, so that the
                # others are stored and the failure reaches its own row.
                log.warning("storing %s outcomes together failed; storing each on its own", len(batch), exc_info=True)
                results = []
                for outcome in batch:
                    try:
                        await self._store(outcome.row, "outcome", lambda s, o=outcome: all_of(s, [o]))
                        results.append(None)
                    except Exception as exc:
                        results.append(exc)
            for outcome, error in zip(batch, results):
                if not outcome.done.done():
                    outcome.done.set_result(None) if error is None else outcome.done.set_exception(error)

    async def _requeue(self, session: AsyncSession, row: outbox.Claimed, now: datetime) -> None:
        await outbox.requeue(session, outbox_id=row.id, claim=row.claim, due_at=now)

    async def _outcome(
        self, session: AsyncSession, row: outbox.Claimed, prepared: _Prepared, delivery: Delivery
    ) -> None:
        """Store what the channel answered, if this sender still holds the row's claim."""
        now = self.clock.now()
        ids = {"outbox_id": row.id, "claim": row.claim}
        if delivery.result == Result.SENT:
            if await outbox.mark_sent(session, now=now, **ids):
                await self._remember_options(session, row, prepared)
                hook = self.after_sent.get(row.kind)
                if hook is not None:
                    await hook(session, row, now)
        elif delivery.result == Result.RETRY_AFTER:
            await outbox.requeue(session, due_at=now, **ids)
        elif delivery.result == Result.BLOCKED:
            await outbox.mark_blocked(session, identity_id=row.identity_id, now=now, reason=delivery.reason, **ids)
        elif delivery.result in (Result.FAILED, Result.NOT_ALLOWED):
            await outbox.mark_failed(session, reason=delivery.reason or delivery.result, **ids)
        elif row.attempts + 1 >= self.max_attempts:
            await outbox.mark_failed(session, reason=f"hết lượt thử: {delivery.reason}", **ids)
        else:
            # The channel may say when to come back (Zalo OA at night); else back off.
            delay = delivery.retry_after or min(self.backoff * 2**row.attempts, self.backoff_max)
            await outbox.retry_later(session, due_at=now + timedelta(seconds=delay), reason=delivery.reason, **ids)

    @staticmethod
    async def _remember_options(session: AsyncSession, row: outbox.Claimed, prepared: _Prepared) -> None:
        """The options just sent join the conversation state: as the pending menu only if
        they went out numbered and the conversation is still where it was seen at rest; else
        as ``menu["extra"]``, whose labels (typed) pick them without touching the step."""
        options = prepared.message.options
        if not options:
            return
        await proactive.offer_options(
            session, identity_id=row.identity_id, options=[[o.label, o.action, list(o.aliases)] for o in options],
            pending_at=prepared.seen_at_rest, pending_step=Step.MENU.value, text=prepared.message.text,
        )


@dataclass(frozen=True)
class _Outcome:
    """An outcome waiting for the next group commit: ``work`` to run, or (``sent_at``) the row
    to mark sent; ``done`` is resolved once it is stored."""

    row: outbox.Claimed
    work: Work | None
    sent_at: datetime | None
    done: asyncio.Future[None]


@dataclass(frozen=True)
class _Prepared:
    """A row ready to send: the message as it will go out, and the conversation state's
    version when its options were numbered because it was at rest (None otherwise)."""

    message: OutboundMessage
    seen_at_rest: int | None = None
