"""``GET /metrics`` (issue 12 §4): the Prometheus text a process exposes — updates by channel and
result, the handler's latency histogram, the outbox depth read from the database at the scrape,
the scheduler's tick — with the values the work just done gives. (The worker lock's gauge and the
sends are read from real worker processes in tests/delivery/test_worker_lock.py.)"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import aiohttp
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from bot.app import App
from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, tick
from bot.web import create_web_app, start_web
from storage.models import Identity
from storage.outbox import enqueue, outbox_row
from tests.support import Chat, join

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


async def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain")
        text = await answer.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_metrics_count_updates_latency_and_the_queued_outbox(ward: App, clock) -> None:  # type: ignore[no-untyped-def]
    runner = await start_web(create_web_app(sessions=ward.sessions), host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    try:
        before = await _scrape(url)
        lan = Chat(ward.conversation, user="m1", name="Lan")
        await join(lan)  # /start, consent, name, group: four updates
        await lan.send("xin chào")
        async with ward.sessions() as session, session.begin():
            identity = (await session.exec(select(Identity))).one()
            assert identity.id is not None
            await enqueue(session, [outbox_row(kind="news", identity_id=identity.id, channel="telegram",
                                               payload={"text": f"tin {n}"}, due_at=clock.now(),
                                               dedupe_key=f"metrics:{n}", now=clock.now()) for n in range(3)])
        after = await _scrape(url)
    finally:
        await runner.cleanup()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    updates = delta("hocvuso_updates_total", channel="test", result="ok")
    assert updates >= 5 and delta("hocvuso_handler_seconds_count", channel="test") == updates
    assert delta("hocvuso_handler_seconds_sum", channel="test") > 0
    assert after[("hocvuso_outbox_rows", (("channel", "telegram"), ("status", "pending")))] == 3
    assert after[("hocvuso_outbox_rows", (("channel", "telegram"), ("status", "sending")))] == 0
    assert ("process_resident_memory_bytes", ()) in after  # the process's own, from prometheus-client


async def test_the_scheduler_tick_is_timed(ward: App, clock) -> None:  # type: ignore[no-untyped-def]
    count = REGISTRY.get_sample_value("hocvuso_scheduler_tick_seconds_count") or 0.0
    await tick(Producers(sessions=ward.sessions, clock=clock, lessons=ward.lessons, catalog=ward.catalog,
                         policy=ReminderPolicy(zone=HANOI)))
    assert REGISTRY.get_sample_value("hocvuso_scheduler_tick_seconds_count") == count + 1
