"""Retention: finished outbox rows older than ``OUTBOX_RETENTION_DAYS`` (never less than 8
days) are deleted in bounded batches; a broadcast's rows are counted into its kept outcomes
first, so every delivery report — the composer's and the CLI's, the broadcast list's progress,
the ward workbook's share — reads the same numbers before and after. Handled events older than
a week are forgotten. The hourly job is idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

import bot.scheduling
from bot.app import App
from bot.config import Settings
from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, build_scheduler, prune
from storage import outbox
from storage.broadcasts import create_broadcast, delivery_progress
from storage.models import BroadcastOutcome, HandledEvent, Outbox, OutboxStatus, ResidentGroup, Ward
from storage.report_data import ward_broadcasts
from tests.delivery.helpers import ZONE, seed_residents
from tests.staff import rows
from tests.support import ManualClock

DAY = timedelta(days=1)


def test_the_retention_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).outbox_retention_days == 30  # type: ignore[call-arg]
    monkeypatch.setenv("OUTBOX_RETENTION_DAYS", "90")
    assert Settings(_env_file=None).outbox_retention_days == 90  # type: ignore[call-arg]


async def _reports(app: App, broadcast_id: int, ward_id: int, now: datetime) -> tuple[Any, ...]:
    """Every report that counts a broadcast's delivery."""
    async with app.sessions() as session:
        report = await outbox.delivery_report(session, broadcast_id=broadcast_id)
        progress = await delivery_progress(session, broadcast_ids=[broadcast_id])
        [share] = await ward_broadcasts(session, ward_id=ward_id, start=None, end=now)
    return report, progress, share.report, share.recipients


async def _kept(app: App) -> dict[tuple[int, str], tuple[int, datetime | None, datetime | None]]:
    """What the retention kept of the rows it deleted: (group, status) → rows, first and last sent."""
    kept = await rows(app, BroadcastOutcome, order=BroadcastOutcome.status)
    return {(k.group_id, k.status): (k.rows, k.first_sent_at, k.last_sent_at) for k in kept}


async def test_old_finished_rows_are_deleted_in_batches_and_the_reports_keep_their_numbers(
    any_app: App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = any_app
    now = clock.now()
    async with app.sessions() as session, session.begin():
        ward = Ward(code="W1", name="Phường Thử")
        session.add(ward)
        await session.flush()
        groups = [ResidentGroup(code=f"T{n}", ward_id=ward.id, name=f"Tổ {n}") for n in (1, 2)]
        session.add_all(groups)
        await session.flush()
        g1, g2 = (g.id for g in groups)
    # The rows count by the group they were queued for (outbox.group_id), whoever receives them.
    people = iter(await seed_residents(app.sessions, 9, now=now - 60 * DAY))
    # (group, status, due, sent, deleted after 30 days?), in the order queued: with batches of
    # two, the two old rows of Tổ 1 that were sent go in different batches, so the second adds
    # to the count the first kept.
    plan = [
        (g1, OutboxStatus.SENT, now - 40 * DAY, now - 40 * DAY, True),
        (g2, OutboxStatus.FAILED, now - 40 * DAY, None, True),
        (g1, OutboxStatus.SENT, now - 31 * DAY, now - 31 * DAY, True),
        (None, OutboxStatus.BLOCKED, now - 40 * DAY, None, True),
        (g2, OutboxStatus.CANCELLED, now - 40 * DAY, None, True),
        (g1, OutboxStatus.SENT, now - 40 * DAY, now - 2 * DAY, False),  # sent two days ago
        (g2, OutboxStatus.SENT, now - 10 * DAY, now - 10 * DAY, False),  # recent
        (g1, OutboxStatus.PENDING, now - 40 * DAY, None, False),  # still to send
        (None, OutboxStatus.SENDING, now - 40 * DAY, None, False),  # being sent
    ]
    async with app.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="test", text="Lan hỏi về VNeID",
                                           audience={"kind": "all", "ward": "W1"}, scheduled_at=now - 40 * DAY,
                                           now=now - 40 * DAY)
        queued = [(next(people), g, status, due, sent) for g, status, due, sent, _ in plan]
        await outbox.enqueue(session, [
            outbox.outbox_row(kind="broadcast", identity_id=i, channel="telegram", due_at=due, now=due, payload={},
                              dedupe_key=f"old:{i}", broadcast_id=broadcast.id, group_id=g)
            for i, g, _, due, _ in queued
        ] + [outbox.outbox_row(kind="reminder", identity_id=queued[0][0], channel="telegram", due_at=now - 40 * DAY,
                               now=now - 40 * DAY, payload={"text": "Nhắc học"}, dedupe_key="reminder:old")])
        for i, _, status, _, sent_at in queued:
            await session.exec(update(Outbox).where(Outbox.identity_id == i)  # type: ignore[call-overload]
                               .values(status=status.value, sent_at=sent_at))
        session.add_all([HandledEvent(source="zalo", event_id="old", handled_at=now - 8 * DAY),
                         HandledEvent(source="telegram", event_id="recent", handled_at=now - 6 * DAY)])
    assert broadcast.id is not None and ward.id is not None
    before = await _reports(app, broadcast.id, ward.id, now)
    report = before[0]
    assert (report.totals, report.first_sent_at, report.last_sent_at) == (
        {"sent": 4, "blocked": 1, "failed": 1, "pending": 2, "cancelled": 1}, now - 40 * DAY, now - 2 * DAY)
    assert report.by_group["Tổ 1 (T1)"] == {"sent": 3, "blocked": 0, "failed": 0, "pending": 1}

    monkeypatch.setattr(bot.scheduling, "PRUNE_BATCH", 2)  # several batches, one transaction each
    producers = Producers(sessions=app.sessions, clock=clock, lessons=app.lessons,
                          catalog=app.catalog, policy=ReminderPolicy(zone=ZONE))
    # Five rows of the broadcast, and the reminder.
    assert await prune(producers) == {"outbox_rows": 6, "events": 1, "web_rows": 0}
    assert await prune(producers) == {"outbox_rows": 0, "events": 0, "web_rows": 0}  # idempotent

    left = {r.identity_id for r in await rows(app, Outbox)}
    assert left == {i for (i, *_), (*_, deleted) in zip(queued, plan) if not deleted}
    assert await _reports(app, broadcast.id, ward.id, now) == before  # every report reads the same numbers
    kept = await _kept(app)
    assert kept == {(g1, "sent"): (2, now - 40 * DAY, now - 31 * DAY), (g2, "failed"): (1, None, None),
                    (0, "blocked"): (1, None, None), (g2, "cancelled"): (1, None, None)}
    assert [e.event_id for e in await rows(app, HandledEvent)] == ["recent"]

    producers.outbox_retention = 5 * DAY  # OUTBOX_RETENTION_DAYS=5: rows stay 8 days all the same
    assert (await prune(producers))["outbox_rows"] == 1  # sent ten days ago: now too; two days ago: not yet
    assert await _reports(app, broadcast.id, ward.id, now) == before
    assert await _kept(app) == kept | {(g2, "sent"): (1, now - 10 * DAY, now - 10 * DAY)}


def test_the_scheduler_prunes_every_hour(app: App, clock: ManualClock) -> None:
    producers = Producers(sessions=app.sessions, clock=clock, lessons=app.lessons,
                          catalog=app.catalog, policy=ReminderPolicy(zone=ZONE))
    job = build_scheduler(producers, zone=ZONE).get_job("outbox-prune")
    assert job is not None and job.func is prune and job.trigger.interval == timedelta(hours=1)
