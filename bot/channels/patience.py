"""Sending a reply patiently: the resident's step has already moved on when a reply is refused
(a 429, a passing server error), so a dropped reply would leave them with nothing. Every adapter
sends each reply call through :func:`send_patiently` with its own reading of the channel's
errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

PATIENCE = 600.0  # seconds one reply keeps being retried before it is given up
TRANSIENT_TRIES = 4  # tries of one call after passing errors (5xx, network), pauses doubling


@dataclass(frozen=True)
class Pause:
    """What to do after a refused call: wait ``seconds`` and call again. ``transient``: a passing
    error, counted against ``TRANSIENT_TRIES`` (its pause doubles each time); otherwise the
    channel said how long to wait (a rate limit), which does not count."""

    seconds: float
    transient: bool = False


async def send_patiently(
    call: Callable[[], Awaitable[T]],
    *,
    pause_for: Callable[[Exception], Pause | None],
    patience: float = PATIENCE,
    tries: int = TRANSIENT_TRIES,
) -> T:
    """``call()``, made again after each refusal ``pause_for`` says to wait for (None: give up at
    once), as long as the waits add up to at most ``patience`` seconds; the last error is raised."""
    waited, transient = 0.0, 0
    while True:
        try:
            return await call()
        except Exception as exc:
            pause = pause_for(exc)
            if pause is None:
                raise
            seconds = pause.seconds
            if pause.transient:
                transient += 1
                if transient >= tries:
                    raise
                seconds *= 2 ** (transient - 1)
            if waited + seconds > patience:
                raise
            log.info("a reply was refused (%s); sending it again in %.1f s", type(exc).__name__, seconds)
        await asyncio.sleep(seconds)
        waited += seconds
