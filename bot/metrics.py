"""What a process reports at ``GET /metrics`` (Prometheus text format, prometheus-client's
default registry, which also carries the process's CPU, memory and open files).

- ``hocvuso_updates_total{channel, result}``: updates handled (``ok``; ``error``: the resident
  got the apology);
- ``hocvuso_handler_seconds{channel}``: the time from an update reaching the engine to its
  commit — waiting for the user's earlier updates and a free slot, the transaction and its retries
  (the replies' sending not included);
- ``hocvuso_outbox_sends_total{channel, result}``: what the channel answered each outbox send
  (``sent``, ``retry_after``, ``blocked``, ``failed``, ``transient``, ``not_allowed``);
- ``hocvuso_outbox_rows{channel, status}``: rows waiting (``pending``) or being sent
  (``sending``), read from the database at each scrape (the claim index answers it);
- ``hocvuso_scheduler_tick_seconds``: one scheduler tick (broadcasts and reminders queued);
- ``hocvuso_worker_active``: 1 while this process holds the worker lock (it sends and schedules).

Durations are measured on the monotonic clock (``time.perf_counter``), never the wall clock.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func
from sqlmodel import col, select

from storage.db import SessionFactory
from storage.models import Outbox, OutboxStatus

UPDATES = Counter("hocvuso_updates", "Updates handled, by channel and result (ok, error)", ["channel", "result"])
HANDLER_SECONDS = Histogram(
    "hocvuso_handler_seconds", "Time from an update reaching the engine to its commit (queueing included)",
    ["channel"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SENDS = Counter("hocvuso_outbox_sends", "Outbox sends, by channel and what the channel answered",
                ["channel", "result"])
OUTBOX_ROWS = Gauge("hocvuso_outbox_rows", "Outbox rows waiting or being sent, by channel and status",
                    ["channel", "status"])
TICK_SECONDS = Histogram("hocvuso_scheduler_tick_seconds", "One scheduler tick: broadcasts and reminders queued",
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
WORKER_ACTIVE = Gauge("hocvuso_worker_active", "1 while this process holds the worker lock (sends and schedules)")

QUEUED = (OutboxStatus.PENDING, OutboxStatus.SENDING)
CONTENT_TYPE = CONTENT_TYPE_LATEST


async def read_outbox_depth(sessions: SessionFactory) -> None:
    """Set ``hocvuso_outbox_rows`` from the database: one grouped count of the queued rows."""
    async with sessions() as session:
        rows = (await session.exec(
            select(Outbox.channel, Outbox.status, func.count())
            .where(col(Outbox.status).in_([s.value for s in QUEUED]))
            .group_by(col(Outbox.channel), col(Outbox.status))
        )).all()
    OUTBOX_ROWS.clear()
    for channel, status in {(c, s.value) for c, _, _ in rows for s in QUEUED}:
        OUTBOX_ROWS.labels(channel=channel, status=status).set(0)
    for channel, status, count in rows:
        OUTBOX_ROWS.labels(channel=channel, status=str(status)).set(int(count))


def exposition() -> bytes:
    """Every metric of this process in the Prometheus text format."""
    return generate_latest(REGISTRY)
