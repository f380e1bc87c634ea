"""Broadcast throughput: the real outbox sender against the fake Bot API.

The fake enforces Telegram's bulk limit with 429s (30 messages/s, retry_after 1 s) and
answers each send after 50–150 ms. The sender runs with the shipped defaults (28/s, 8 in
flight). Prints achieved messages/s, the share of sends answered 429, duplicates, total time.

    .venv/bin/python benchmarks/broadcast.py                 # 10,000 recipients, SQLite
    .venv/bin/python benchmarks/broadcast.py --recipients 2000 --database postgresql+asyncpg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlmodel import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.broadcasting import message_for  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core.i18n import Catalog  # noqa: E402
from bot.core.conversation import SystemClock  # noqa: E402
from storage.broadcasts import create_broadcast, queue_broadcast  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Identity, Outbox, OutboxStatus, Person  # noqa: E402
from tests.delivery.helpers import FIRST_USER, NO_QUIET, telegram_sender  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402


async def main(recipients: int, database: str, rate: float, concurrency: int) -> None:
    await asyncio.to_thread(upgrade, database)
    engine = create_engine(database)
    sessions = session_factory(engine)
    # A benchmark runs on the real clock, but through the clock, like the bot.
    clock = SystemClock()
    now = clock.now()
    async with sessions() as session, session.begin():
        people = [Person(display_name=f"Cư dân {i}", consent_at=now, consent_version="b", created_at=now)
                  for i in range(recipients)]
        session.add_all(people)
        await session.flush()
        session.add_all(Identity(person_id=p.id, channel="telegram", external_id=str(FIRST_USER + i),
                                 created_at=now, last_seen_at=now) for i, p in enumerate(people))
    async with sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="benchmark", text="Mời bà con dự Ngày hội học tập số",
                                           audience={"kind": "all"}, scheduled_at=now, now=now)
        queued = await queue_broadcast(session, broadcast_id=broadcast.id, now=now,  # type: ignore[arg-type]
                                       message=message_for(Catalog.load()))
    print(f"queued {queued} outbox rows", flush=True)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    async with FakeTelegram() as tg:
        for i in range(recipients):
            tg.add_user(FIRST_USER + i)
        tg.rate_limit(30, retry_after=1)
        tg.latency(0.05, 0.15, seed=1)
        # No quiet hours: the benchmark measures throughput whatever the time of day.
        sender = telegram_sender(sessions, tg, clock=clock, per_second=rate, concurrency=concurrency, quiet=NO_QUIET,
                                 lease_seconds=settings.outbox_lease_seconds, idle_seconds=0.2)
        started = time.monotonic()
        task = asyncio.create_task(sender.run())
        last_report = started
        while True:
            await asyncio.sleep(1)
            async with sessions() as session:
                open_rows = (await session.exec(select(func.count()).select_from(Outbox).where(
                    Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).one()  # type: ignore[attr-defined]
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                done = recipients - open_rows
                print(f"  {done}/{recipients} after {last_report - started:.0f} s", flush=True)
            if open_rows == 0:
                break
        elapsed = time.monotonic() - started
        sender.stop()
        await task
        await sender.transport.bot.session.close()
        sends = [c for c in tg.calls if c.method == "sendMessage"]
        statuses = Counter(c.status for c in sends)
        ok = [c.at for c in sends if c.status == 200]
        counts = [tg.sent_count(FIRST_USER + i) for i in range(recipients)]
    await engine.dispose()

    delivered = sum(1 for n in counts if n >= 1)
    duplicates = sum(n - 1 for n in counts if n > 1)
    window = (max(ok) - min(ok)) if len(ok) > 1 else elapsed
    print(f"recipients            {recipients}")
    print(f"delivered             {delivered}")
    print(f"sendMessage calls     {len(sends)}  {dict(statuses)}")
    print(f"answered 429          {statuses[429] / max(1, len(sends)):.2%}")
    print(f"duplicates            {duplicates}")
    print(f"total time            {elapsed:.1f} s")
    print(f"achieved rate         {len(ok) / window:.2f} msg/s (first to last accepted send)")
    print(f"sender settings       rate {rate}/s, {concurrency} in flight; fake: 30/s cap, 50-150 ms latency")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--rate", type=float, default=28.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite+aiosqlite:///{tmp}/benchmark.db"
        asyncio.run(main(args.recipients, url, args.rate, args.concurrency))
