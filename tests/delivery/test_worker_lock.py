"""One active worker per database (issue 12 §2): two real ``hocvuso run --role worker``
processes on one database; one sends and schedules, the other waits as a standby. The active
one is killed with SIGKILL: the standby takes over within 10 seconds (the issue's bound; the
time measured is printed) and the next broadcast reaches everyone once, from it alone."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from storage.broadcasts import create_broadcast
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Outbox, OutboxStatus
from tests.clocked import command, environment
from tests.conftest import START, postgres_database
from tests.delivery.helpers import FIRST_USER, seed_residents
from tests.fakes.telegram_api import FakeTelegram
from tests.support import free_port

RECIPIENTS = 20
TAKEOVER = 10.0  # seconds: the bound


class Worker:
    """A ``hocvuso run --role worker`` process and the lines it logs."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process, self.name, self.lines = process, name, []  # type: ignore[var-annotated]
        self.metrics_url = ""
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path, name: str) -> Worker:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            *command(START, "run", "--role", "worker"), env={**env, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port)},
            cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        worker = cls(process, name)
        worker.metrics_url = f"http://127.0.0.1:{port}/metrics"
        return worker

    async def sample(self, name: str, **labels: str) -> float:
        """A sample as the process reports it at /metrics (0 if absent)."""
        async with aiohttp.ClientSession() as http, http.get(self.metrics_url) as answer:
            assert answer.status == 200
            text = await answer.text()
        return next((s.value for family in text_string_to_metric_families(text) for s in family.samples
                     if s.name == name and s.labels == labels), 0.0)

    async def active(self) -> float:
        return await self.sample("hocvuso_worker_active")

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.lines.append(line.decode(errors="replace"))
            self._changed.set()

    def said(self, words: str) -> bool:
        return any(words in line for line in self.lines)

    async def until(self, words: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not self.said(words):
                self._changed.clear()
                await self._changed.wait()

    async def end(self, signum: int) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signum)
        code = await asyncio.wait_for(self.process.wait(), 30)
        await self._reader
        return code


async def test_one_worker_sends_and_a_standby_takes_over_after_sigkill(any_db_url: str, tmp_path: Path) -> None:
    database = any_db_url
    await asyncio.to_thread(upgrade, database)
    engine = create_engine(database)
    sessions = session_factory(engine)
    await seed_residents(sessions, RECIPIENTS, now=START)

    async def broadcast(text: str) -> None:
        async with sessions() as session, session.begin():
            await create_broadcast(session, author="test", text=text, now=START, audience={"kind": "all"},
                                   scheduled_at=START)

    async def settled() -> None:
        """Every outbox row written as sent (the API calls are done before their outcome is)."""
        while True:
            async with sessions() as session:
                statuses = (await session.exec(select(Outbox.status))).all()
            if statuses and all(status == OutboxStatus.SENT for status in statuses):
                return
            await asyncio.sleep(0.1)

    async with FakeTelegram() as tg:
        users = [FIRST_USER + i for i in range(RECIPIENTS)]
        for user in users:
            tg.add_user(user)
        env = environment(DATABASE_URL=database, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.url,
                          TELEGRAM_RATE="200", TELEGRAM_CHAT_INTERVAL="0", LOG_LEVEL="INFO")
        first = await Worker.start(env, tmp_path, "first")
        await first.until("worker active", timeout=60)
        second = await Worker.start(env, tmp_path, "second")
        try:
            await second.until("worker standby", timeout=60)
            assert (await first.active(), await second.active()) == (1.0, 0.0)
            await broadcast("Tin thứ nhất")
            await tg.wait_for(lambda t: all(t.sent_count(u) >= 1 for u in users), timeout=60)
            await asyncio.wait_for(settled(), 60)
            assert not second.said("worker active") and not second.said("sender for telegram started")
            sent = {"channel": "telegram", "result": "sent"}
            assert (await first.sample("hocvuso_outbox_sends_total", **sent),
                    await second.sample("hocvuso_outbox_sends_total", **sent)) == (RECIPIENTS, 0)

            first.process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            assert await first.end(signal.SIGKILL) == -signal.SIGKILL
            await second.until("worker active", timeout=TAKEOVER)
            print(f"\nstandby took over {time.monotonic() - killed:.1f} s after the SIGKILL")
            assert await second.active() == 1.0
            await broadcast("Tin thứ hai")
            await tg.wait_for(lambda t: all(t.sent_count(u) >= 2 for u in users), timeout=60)
            await asyncio.wait_for(settled(), 60)
        finally:
            code = await second.end(signal.SIGTERM)
            if first.process.returncode is None:
                await first.end(signal.SIGTERM)
        assert code == 0, "".join(second.lines)[-2000:]
        texts = [[m.text for m in tg.chat(u)] for u in users]
    async with sessions() as session:
        statuses = (await session.exec(select(Outbox.status))).all()
    await engine.dispose()
    assert len(statuses) == 2 * RECIPIENTS
    # Everyone got each broadcast once: the standby never sent beside the active worker.
    assert all(len(t) == 2 and sum("Tin thứ nhất" in x for x in t) == 1 and sum("Tin thứ hai" in x for x in t) == 1
               for t in texts), texts[:3]
    assert statuses and all(status == OutboxStatus.SENT for status in statuses)


@pytest.mark.postgres
async def test_a_holder_whose_connection_breaks_stops_and_the_lock_passes_on() -> None:
    from sqlalchemy import text

    from bot.leadership import AdvisoryLock, LeadershipLost, worker_lock

    async with postgres_database() as url:
        active, standby = worker_lock(url), worker_lock(url)
        assert isinstance(active, AdvisoryLock) and isinstance(standby, AdvisoryLock)
        active._check = standby._poll = 0.1  # quick rounds for the test
        await active.acquire()
        waiting = asyncio.create_task(standby.acquire())
        watching = asyncio.create_task(active.held())
        await asyncio.sleep(0.5)
        assert not waiting.done() and not watching.done()  # one holder; the other waits
        # The server drops the holder's session (a network cut, a restarted pooler…).
        engine = create_engine(url)
        async with engine.connect() as connection:
            await connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"))
        await engine.dispose()
        with pytest.raises(LeadershipLost):
            await asyncio.wait_for(watching, 10)
        await asyncio.wait_for(waiting, 10)  # the standby holds it now
        await standby.release()
        await active.release()
