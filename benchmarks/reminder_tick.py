"""Issue 12 §3: the reminder planning of one scheduler tick, on a ward of many residents.

Builds the synthetic ward of ``benchmarks/ward_scale.py`` (every resident's reminder hour is
the default 19:00; those inactive for two days with a lesson in progress are due then), then
times ``plan_reminders`` — what each 5-second tick runs — rolled back after each run, at two
local moments: 10:00 (nobody's hour: nobody is due) and 19:05 (the evening wave). Prints the
median of a few runs, the rows it would queue and the SQL statements it runs.

    .venv/bin/python benchmarks/reminder_tick.py                                  # SQLite, 50,000
    .venv/bin/python benchmarks/reminder_tick.py --database postgresql            # fresh PostgreSQL database
    .venv/bin/python benchmarks/reminder_tick.py --residents 500000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import text  # noqa: E402
from ward_scale import ZONE, LoopStalls, Statements, build_ward, on_database  # noqa: E402

from bot.app import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core.conversation import SystemClock  # noqa: E402
from bot.curriculum import load_library  # noqa: E402
from bot.reminders import ReminderPolicy, plan_reminders  # noqa: E402
from storage.migrate import upgrade  # noqa: E402


async def main(database: str, residents: int, runs: int, tmp: Path) -> None:
    await asyncio.to_thread(upgrade, database)
    clock = SystemClock()
    app = build_app(Settings(database_url=database, _env_file=None), clock=clock, files_dir=tmp / "files")  # type: ignore[call-arg]
    lessons = load_library()
    now = clock.now()
    await build_ward(app.sessions, residents=residents, lesson_ids=[lesson.id for lesson in lessons], now=now)
    async with app.sessions() as session, session.begin():  # every resident reachable on Telegram
        await session.exec(text(  # type: ignore[call-overload]
            "INSERT INTO identity (person_id, channel, external_id, created_at, last_seen_at) "
            "SELECT p.id, 'telegram', 'r' || p.id, p.created_at, p.last_active_at FROM person p "
            "WHERE NOT EXISTS (SELECT 1 FROM identity i WHERE i.person_id = p.id)"))
    policy = ReminderPolicy(zone=ZONE)
    today = now.astimezone(ZONE).date()
    statements = Statements(app.engine)
    print(f"database {database.split('://')[0]}, {residents:,} residents")
    stalls = LoopStalls()
    for label, hour, minute, keep in (("10:00, nobody due", 10, 0, False), ("19:05, the evening wave", 19, 5, True),
                                      ("19:06, the tick after it", 19, 6, False)):
        moment = datetime(today.year, today.month, today.day, hour, minute, tzinfo=ZONE)
        times, stalled, queued, count = [], [], 0, 0
        for run in range(runs + 1):
            before = statements.count
            stalls.start()
            started = time.perf_counter()
            async with app.sessions() as session:
                transaction = await session.begin()
                queued = await plan_reminders(session, now=moment, policy=policy, lessons=lessons,
                                              catalog=app.catalog)
                if keep and run == runs:
                    await transaction.commit()  # the wave stays queued for the next tick
                else:
                    await transaction.rollback()
            elapsed = time.perf_counter() - started
            stall = await stalls.stop()
            if run:  # the first run warms the caches
                times.append(elapsed)
                stalled.append(stall)
            count = statements.count - before
        print(f"  tick at {label:<26} {statistics.median(times) * 1000:8.0f} ms  (median of {runs}; "
              f"{queued:,} reminders; {count} SQL statements; the event loop's longest stall "
              f"{max(stalled) * 1000:.0f} ms)", flush=True)
    await app.close()


def run(database: str, residents: int, runs: int) -> None:
    on_database(database, lambda url, tmp: main(url, residents, runs, tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--residents", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    run(args.database, args.residents, args.runs)
