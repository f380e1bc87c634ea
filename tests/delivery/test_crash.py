"""A broadcast to 2,000 residents; the worker process is killed with SIGKILL halfway and
started again: everyone gets the message, and duplicates stay within the sender's
in-flight limit (the rows whose API call returned but whose outcome was not yet written).

The worker is the real ``hocvuso run --role worker`` on a clock that starts at START
(tests.clocked); the restarted one starts an hour later, when the killed worker's leases have
long expired."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Outbox, OutboxStatus
from storage.broadcasts import create_broadcast
from tests.clocked import command, environment
from tests.conftest import START
from tests.delivery.helpers import FIRST_USER, seed_residents
from tests.fakes.telegram_api import FakeTelegram
from tests.support import free_port

RECIPIENTS = 2000
IN_FLIGHT = 8


async def _start_worker(env: dict[str, str], cwd: Path, *, after: timedelta) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command(START + after, "run", "--role", "worker"), env={**env, "WEB_PORT": str(free_port())}, cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


async def test_sigkill_halfway_then_restart_delivers_to_everyone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    await seed_residents(sessions, RECIPIENTS, now=START)
    async with sessions() as session, session.begin():
        await create_broadcast(session, author="test", text="Mời bà con dự Ngày hội học tập số", now=START,
                               audience={"kind": "all"}, scheduled_at=START)

    async with FakeTelegram() as tg:
        for i in range(RECIPIENTS):
            tg.add_user(FIRST_USER + i)
        tg.latency(0.002, 0.01, seed=3)
        env = environment(
            DATABASE_URL=url, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.url,
            OUTBOX_LEASE_SECONDS="5", SENDER_CONCURRENCY=str(IN_FLIGHT), TELEGRAM_RATE="500",
            TELEGRAM_CHAT_INTERVAL="0", LOG_LEVEL="WARNING", WEB_HOST="127.0.0.1",  # START is 10:00 in Hà Nội: no quiet hours
        )
        sent = lambda t: sum(t.sent_count(FIRST_USER + i) for i in range(RECIPIENTS))  # noqa: E731

        worker = await _start_worker(env, tmp_path, after=timedelta(0))
        await tg.wait_for(lambda t: sent(t) >= RECIPIENTS // 2, timeout=120)
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
        at_kill = sent(tg)
        assert worker.returncode == -signal.SIGKILL and at_kill < RECIPIENTS

        worker = await _start_worker(env, tmp_path, after=timedelta(hours=1))
        try:
            await tg.wait_for(lambda t: all(t.sent_count(FIRST_USER + i) for i in range(RECIPIENTS)), timeout=120)

            async def settled() -> None:
                while True:
                    async with sessions() as session:
                        rows = (await session.exec(select(Outbox.status))).all()
                    if rows and all(status == OutboxStatus.SENT for status in rows):
                        return
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(settled(), 60)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, stderr.decode()[-2000:]
        counts = [tg.sent_count(FIRST_USER + i) for i in range(RECIPIENTS)]
    await engine.dispose()

    duplicates = sum(n - 1 for n in counts if n > 1)
    print(f"\nkilled after {at_kill} of {RECIPIENTS} sends; after restart every recipient has the message; "
          f"duplicates: {duplicates} (in-flight limit {IN_FLIGHT})")
    assert min(counts) == 1
    assert duplicates <= IN_FLIGHT
