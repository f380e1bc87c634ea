"""Broadcast throughput: the real outbox senders of one or more ward bots against fake Bot APIs.

Each bot has its own fake Bot API server (a separate aiohttp server on 127.0.0.1), which
enforces Telegram's bulk limit with 429s (30 messages/s in any 1 s window, retry_after 1 s)
and answers each send after 50–150 ms. Each bot's sender runs with the shipped defaults: its
account's pace (``TELEGRAM_RATE``, 28/s — the account's cap) shared with its replies, 8 sends
in flight, leases and outcomes as in the worker. One broadcast goes to every resident; the
residents are split evenly across the bots (each bot is one ward's account, as in a city).

Prints per bot: messages/s from its first to its last accepted send, that rate as a share of
the account's cap and of Telegram's 30/s, the share of sends answered 429, duplicates; and
all bots together.

    .venv/bin/python benchmarks/broadcast.py                                # 10,000 recipients, 1 bot, SQLite
    .venv/bin/python benchmarks/broadcast.py --bots 2 --recipients 200000 --database postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import text
from sqlmodel import col, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ward_scale import on_database  # noqa: E402
from bot.broadcasting import message_for  # noqa: E402
from bot.channels.telegram.transport import TelegramTransport  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core.conversation import SystemClock  # noqa: E402
from bot.core.i18n import Catalog  # noqa: E402
from bot.delivery.limiter import RateLimiter  # noqa: E402
from bot.delivery.sender import Sender  # noqa: E402
from bot.delivery.transport import Pacing  # noqa: E402
from storage.broadcasts import create_broadcast, queue_broadcast  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Outbox, OutboxStatus  # noqa: E402
from storage.types import UTCDateTime  # noqa: E402
from tests.delivery.helpers import FIRST_USER, NO_QUIET  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

TELEGRAM_CAP = 30  # messages/s the fake allows a bot, Telegram's documented bulk limit


def bot_key(n: int) -> str:
    return f"phuong{n + 1}"


async def seed(sessions, recipients: int, bots: int, now) -> None:  # type: ignore[no-untyped-def]
    """``recipients`` consenting residents, resident i on bot i % bots, in two INSERT … SELECT."""
    from sqlalchemy import bindparam

    at = bindparam("at", now, type_=UTCDateTime)
    keys = " ".join(f"WHEN {n} THEN '{bot_key(n)}'" for n in range(bots))
    async with sessions() as session, session.begin():
        connection = await session.connection()
        await connection.execute(text(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count - 1) "
            "INSERT INTO person (display_name, locale, consent_at, consent_version, reminder_hour, reminders_on, "
            "reminders_unanswered, created_at, last_active_at) "
            "SELECT 'Cư dân ' || i, 'vi', :at, 'b', 19, :no, 0, :at, :at FROM n"
        ).bindparams(at, bindparam("no", False)), {"count": recipients})
        first = (await connection.execute(text("SELECT min(id) FROM person"))).scalar_one()
        await connection.execute(text(
            "INSERT INTO identity (person_id, channel, external_id, created_at, last_seen_at) "
            f"SELECT id, CASE (id - :first) % :bots {keys} END, CAST(:base + id - :first AS VARCHAR(64)), :at, :at "
            "FROM person"
        ).bindparams(at), {"first": first, "bots": bots, "base": FIRST_USER})
    engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))


async def main(database: str, recipients: int, bots: int, rate: float, concurrency: int) -> None:
    await asyncio.to_thread(upgrade, database)
    engine = create_engine(database)
    sessions = session_factory(engine)
    # A benchmark runs on the real clock, but through the clock, like the bot.
    clock = SystemClock()
    now = clock.now()
    started = time.monotonic()
    await seed(sessions, recipients, bots, now)
    async with sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="benchmark", text="Mời bà con dự Ngày hội học tập số",
                                           audience={"kind": "all"}, scheduled_at=now, now=now)
        queued = await queue_broadcast(session, broadcast_id=broadcast.id, now=now,  # type: ignore[arg-type]
                                       message=message_for(Catalog.load()))
    print(f"seeded {recipients} residents on {bots} bot(s), queued {queued} outbox rows in "
          f"{time.monotonic() - started:.1f} s", flush=True)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    fakes = [FakeTelegram(token=f"{100 + n}:BENCH", bot_id=100 + n) for n in range(bots)]
    senders: list[Sender] = []
    for n, tg in enumerate(fakes):
        await tg.start()
        tg.accept_any_chat = True
        tg.rate_limit(TELEGRAM_CAP, retry_after=1)
        tg.latency(0.05, 0.15, seed=n + 1)
        bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.url)))
        # As bot/app.py builds each account: one pace for its replies and its outbox.
        pacing = Pacing(rate, settings.telegram_chat_interval)
        limiter = RateLimiter(pacing.per_second, burst=pacing.burst, per_key_interval=pacing.per_chat_interval)
        transport = TelegramTransport(bot, pacing=pacing, channel=bot_key(n))
        # No quiet hours: the benchmark measures throughput whatever the time of day.
        senders.append(Sender(sessions=sessions, transport=transport, clock=clock, quiet=NO_QUIET,
                              lease_seconds=settings.outbox_lease_seconds, concurrency=concurrency,
                              idle_seconds=0.2, limiter=limiter))

    started = time.monotonic()
    tasks = [asyncio.create_task(s.run()) for s in senders]
    last_report = started
    while True:
        await asyncio.sleep(5)
        async with sessions() as session:
            open_rows = (await session.exec(select(func.count()).select_from(Outbox).where(
                col(Outbox.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).one()
        if time.monotonic() - last_report >= 60:
            last_report = time.monotonic()
            print(f"  {recipients - open_rows}/{recipients} after {last_report - started:.0f} s", flush=True)
        if open_rows == 0:
            break
    elapsed = time.monotonic() - started
    for sender in senders:
        sender.stop()
    await asyncio.gather(*tasks)
    async with sessions() as session:
        statuses = dict((await session.exec(
            select(Outbox.status, func.count()).group_by(Outbox.status))).all())  # type: ignore[call-overload]
    await engine.dispose()

    print(f"recipients            {recipients} on {bots} bot(s); outbox rows by status {statuses}")
    print(f"total time            {elapsed:.1f} s")
    all_ok: list[float] = []
    for n, (tg, sender) in enumerate(zip(fakes, senders, strict=True)):
        sends = [c for c in tg.calls if c.method == "sendMessage"]
        codes = Counter(c.status for c in sends)
        ok = sorted(c.at for c in sends if c.status == 200)
        all_ok.extend(ok)
        sent = sum(tg._sent.values())
        duplicates = sum(count - 1 for count in tg._sent.values() if count > 1)
        window = (ok[-1] - ok[0]) if len(ok) > 1 else elapsed
        achieved = (len(ok) - 1) / window if len(ok) > 1 else 0.0
        print(f"bot {bot_key(n)}: delivered {len(tg._sent)} people ({sent} messages), sendMessage calls {len(sends)} "
              f"{dict(codes)}, answered 429 {codes[429] / max(1, len(sends)):.2%}, duplicates {duplicates}")
        print(f"    achieved {achieved:.2f} msg/s over {window:.0f} s = {achieved / rate:.1%} of the account's cap "
              f"({rate:g}/s), {achieved / TELEGRAM_CAP:.1%} of Telegram's {TELEGRAM_CAP}/s")
        await sender.transport.bot.session.close()  # type: ignore[attr-defined]
        await tg.stop()
    if bots > 1:
        all_ok.sort()
        together = (len(all_ok) - 1) / (all_ok[-1] - all_ok[0])
        print(f"all bots together     {together:.2f} msg/s ({together / (rate * bots):.1%} of {bots} × {rate:g}/s)")
    print(f"sender settings       pace {rate:g}/s per bot, {concurrency} in flight; fake: {TELEGRAM_CAP}/s cap, "
          "50-150 ms latency")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000, help="all bots together")
    parser.add_argument("--bots", type=int, default=1)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                        help="sqlite: a temporary file; postgresql: a fresh database on 127.0.0.1:5432 (dropped)")
    parser.add_argument("--rate", type=float, default=28.0, help="each account's pace (its cap), messages/s")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    on_database(args.database, lambda url, _tmp: main(url, args.recipients, args.bots, args.rate, args.concurrency))
