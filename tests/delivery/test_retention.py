"""Retention: finished outbox rows older than ``OUTBOX_RETENTION_DAYS`` keep their row (the
delivery reports count them) but lose their payload, in bounded batches; handled events older
than a week are forgotten. The hourly job is idempotent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

import bot.scheduling
from bot.app import App
from bot.config import Settings
from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, build_scheduler, prune
from storage import outbox
from storage.broadcasts import create_broadcast
from storage.models import HandledEvent, Outbox, OutboxStatus
from tests.delivery.helpers import ZONE, seed_residents
from tests.staff import rows
from tests.support import ManualClock

DAY = timedelta(days=1)


def test_the_retention_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).outbox_retention_days == 30  # type: ignore[call-arg]
    monkeypatch.setenv("OUTBOX_RETENTION_DAYS", "90")
    assert Settings(_env_file=None).outbox_retention_days == 90  # type: ignore[call-arg]


async def test_old_finished_payloads_are_emptied_in_batches_and_events_forgotten(
    any_app: App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = any_app
    now = clock.now()
    identities = await seed_residents(app.sessions, 9, now=now - 60 * DAY)
    # (status, due, sent): which of them may lose their text after 30 days?
    plan = [
        (OutboxStatus.SENT, now - 40 * DAY, now - 40 * DAY),  # yes
        (OutboxStatus.SENT, now - 31 * DAY, now - 31 * DAY),  # yes
        (OutboxStatus.FAILED, now - 40 * DAY, None),  # yes
        (OutboxStatus.BLOCKED, now - 40 * DAY, None),  # yes
        (OutboxStatus.CANCELLED, now - 40 * DAY, None),  # yes
        (OutboxStatus.SENT, now - 40 * DAY, now - 2 * DAY),  # no: sent two days ago
        (OutboxStatus.SENT, now - 10 * DAY, now - 10 * DAY),  # no: recent
        (OutboxStatus.PENDING, now - 40 * DAY, None),  # no: still to send
        (OutboxStatus.SENDING, now - 40 * DAY, None),  # no: being sent
    ]
    async with app.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="test", text="Lan hỏi về VNeID", audience={"kind": "all"},
                                           scheduled_at=now - 40 * DAY, now=now - 40 * DAY)
        await outbox.enqueue(session, [
            outbox.outbox_row(kind="broadcast", identity_id=i, channel="telegram", due_at=due, now=due,
                              payload={"text": "Lan hỏi về VNeID", "options": [["✍️ Trả lời", "hotro:rep:1"]]},
                              dedupe_key=f"old:{n}", broadcast_id=broadcast.id)
            for n, (i, (_, due, _)) in enumerate(zip(identities, plan))
        ])
        for i, (status, _, sent_at) in zip(identities, plan):
            await session.exec(update(Outbox).where(Outbox.identity_id == i)  # type: ignore[call-overload]
                               .values(status=status.value, sent_at=sent_at))
        session.add_all([HandledEvent(source="zalo", event_id="old", handled_at=now - 8 * DAY),
                         HandledEvent(source="telegram", event_id="recent", handled_at=now - 6 * DAY)])
    async with app.sessions() as session:
        before = await outbox.delivery_report(session, broadcast_id=broadcast.id)  # type: ignore[arg-type]

    monkeypatch.setattr(bot.scheduling, "PRUNE_BATCH", 2)  # several batches, one transaction each
    producers = Producers(sessions=app.sessions, clock=clock, lessons=app.lessons,
                          catalog=app.catalog, policy=ReminderPolicy(zone=ZONE))
    assert await prune(producers) == {"payloads": 5, "events": 1}
    assert await prune(producers) == {"payloads": 0, "events": 0}  # idempotent

    emptied = {r.identity_id: r.payload == {} for r in await rows(app, Outbox)}
    assert [emptied[i] for i in identities] == [True] * 5 + [False] * 4
    assert len(await rows(app, Outbox)) == len(plan)  # the rows stay…
    async with app.sessions() as session:
        after = await outbox.delivery_report(session, broadcast_id=broadcast.id)  # type: ignore[arg-type]
    assert after == before  # …and the delivery report counts them as before
    assert [e.event_id for e in await rows(app, HandledEvent)] == ["recent"]

    producers.outbox_retention = 5 * DAY  # OUTBOX_RETENTION_DAYS=5
    assert (await prune(producers))["payloads"] == 1  # sent ten days ago: now too; two days ago: not yet


def test_the_scheduler_prunes_every_hour(app: App, clock: ManualClock) -> None:
    producers = Producers(sessions=app.sessions, clock=clock, lessons=app.lessons,
                          catalog=app.catalog, policy=ReminderPolicy(zone=ZONE))
    job = build_scheduler(producers, zone=ZONE).get_job("outbox-prune")
    assert job is not None and job.func is prune and job.trigger.interval == timedelta(hours=1)
