"""Pacing for one channel: a token bucket across chats, a least interval per chat, and a
global pause when the channel answers 429 (Telegram's flood control applies to the bot)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable


DEBT = 10.0  # seconds of the rate that replies may run ahead of the outbox


class RateLimiter:
    """``await acquire(key)`` returns when one more message may go to ``key``.

    Tokens refill at ``per_second`` up to ``burst``, never more: a waiter woken a little after
    its token was due loses that time, on purpose — paying it back paced nearer the true rate,
    and with the network's jitter drew 429s, each pausing the account a second
    (tests/delivery/test_limiter.py, docs/benchmarks.md). ``pause(seconds)`` stops every send
    until then (a 429's ``retry_after``). Time is the event loop's monotonic clock.
    """

    def __init__(
        self,
        per_second: float,
        *,
        burst: int = 1,
        per_key_interval: float = 0.0,
        now: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._rate = per_second
        self._burst = max(1, burst)
        self._interval = per_key_interval
        self._now = now
        self._tokens = float(self._burst)
        self._updated = now()
        self._paused_until = 0.0
        self._last_by_key: OrderedDict[object, float] = OrderedDict()
        self._max_keys = max_keys
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._now() + seconds)

    def spend(self) -> None:
        """One message went out without waiting (a reply to a resident, who is waiting): it
        takes a token now — the bucket may go below zero, by at most ``DEBT`` seconds of the
        rate — so the messages that do wait (the outbox) leave the channel within its cap."""
        self._refill()
        self._tokens = max(self._tokens - 1, -self._rate * DEBT)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._now())

    async def acquire(self, key: object = None) -> None:
        if key is not None and self._interval:
            # Reserve this chat's next slot first, and wait for it without holding up others.
            now = self._now()
            slot = max(now, self._last_by_key.get(key, -1e18) + self._interval)
            self._remember(key, slot)
            if slot > now:
                await asyncio.sleep(slot - now)
        async with self._lock:  # one waiter at a time keeps the order fair
            while True:
                wait = self.ready_in()
                if wait <= 0:
                    self._tokens -= 1
                    return
                await asyncio.sleep(wait)

    def ready_in(self) -> float:
        """Seconds until the next message may go (0: now), ignoring per-chat intervals."""
        now = self._refill()
        wait = self._paused_until - now
        if self._tokens < 1:
            wait = max(wait, (1 - self._tokens) / self._rate)
        return max(0.0, wait)

    def _refill(self) -> float:
        now = self._now()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        return now

    def _remember(self, key: object, at: float) -> None:
        self._last_by_key[key] = at
        self._last_by_key.move_to_end(key)
        cutoff = self._now() - self._interval
        while self._last_by_key and (
            len(self._last_by_key) > self._max_keys or next(iter(self._last_by_key.values())) < cutoff
        ):
            self._last_by_key.popitem(last=False)
