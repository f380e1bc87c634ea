"""The rate limiter keeps an account's pace when its waiters wake late, and never lets more
than Telegram's 30 messages through in any one second at a pace of 28/s (issue 12 §3: a
broadcast runs at ≥ 95 % of the account's cap with < 1 % 429s).

The clock is the limiter's injected ``now``: each message waits what ``ready_in`` says and
then some (the event loop wakes a sleeper a little after its time), as ``acquire`` does."""

from __future__ import annotations

from bot.delivery.limiter import RateLimiter

RATE = 28.0


def _send_for(seconds: float, *, wake_late: float) -> list[float]:
    """When each message went, pacing at RATE for ``seconds``, each waiter woken ``wake_late``
    after its token was due."""
    now = [0.0]
    pace = RateLimiter(RATE, now=lambda: now[0])
    sent: list[float] = []
    while now[0] < seconds:
        wait = pace.ready_in()
        if wait > 0:
            now[0] += wait + max(wake_late, 1e-9)  # a sleep always ends after its time
            continue
        pace.spend()  # what acquire does once ready_in is 0: take the token
        sent.append(now[0])
    return sent


def test_waiters_woken_late_keep_the_pace() -> None:
    sent = _send_for(60.0, wake_late=0.002)  # 2 ms late each time: 7 % of a 36 ms interval
    assert len(sent) >= 0.99 * RATE * 60  # 1,680; with the bucket capped at one token, 1,591


def test_no_second_holds_more_than_telegrams_thirty() -> None:
    for late in (0.0, 0.001, 0.005, 0.019, 0.05):
        sent = _send_for(20.0, wake_late=late)
        busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
        assert busiest <= 30, (late, busiest)
