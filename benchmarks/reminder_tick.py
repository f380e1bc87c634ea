"""Issue 12 §3: the reminder planning of the scheduler's tick, on a ward of many residents.

Builds the synthetic ward of ``benchmarks/ward_scale.py``, every resident reachable on Telegram,
their reminder hours spread over the hours on offer so that about ``--wave`` of them are due at
19:00 (the rest at 07:00, 09:00, 12:00 and 20:00); gives everyone who may be reminded the moment
migration 0011's backfill gives (their last activity), then runs ``plan_reminders`` — what each
5-second tick runs — at these local moments of one day, each committed as in production:

1. 15:00, the first tick after the upgrade: it reads everyone the backfill gave a moment and moves
   them on to their hour (nobody's hour is 15:00: nothing is queued);
2. 15:01, nobody due (median of ``--runs``; goal < 50 ms at 500,000 residents);
3. 19:05, the evening wave (one run: the total, the rows queued, and the longest time the event
   loop was blocked: the largest gap between two wake-ups of a task that sleeps 10 ms in a loop,
   less those 10 ms; goal < 100 ms; and the longest full garbage collection meanwhile);
4. 19:06, the tick after the wave: nobody due again (median of ``--runs``).

SQLite and PostgreSQL run one after the other in one command and are printed side by side.

    .venv/bin/python benchmarks/reminder_tick.py --residents 500000 --wave 200000
    .venv/bin/python benchmarks/reminder_tick.py --residents 20000 --wave 8000 --database sqlite   # quick
    .venv/bin/python benchmarks/reminder_tick.py --profile /tmp/wave.prof --database sqlite      # cProfile of the wave
    .venv/bin/python benchmarks/reminder_tick.py --explain ...     # and the plan of the read when nobody is due
    .venv/bin/python benchmarks/reminder_tick.py --freeze ...      # gc.freeze() before the ticks (see docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import bindparam, event, text  # noqa: E402
from ward_scale import ZONE, Statements, build_ward, on_database  # noqa: E402

from bot.app import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core.conversation import SystemClock  # noqa: E402
from bot.curriculum import load_library  # noqa: E402
from bot.reminders import BATCH, ReminderPolicy, plan_reminders  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.types import UTCDateTime  # noqa: E402

OTHER_HOURS = (7, 9, 12, 20)  # on offer, and none of their windows holds 15:00 or 19:05
TICKER_SLEEP = 0.010


class Ticker:
    """A task that sleeps 10 ms in a loop: the largest gap between two of its wake-ups, less the
    10 ms it asked for, is the longest the event loop was blocked (what a resident's reply waits).
    Also how much of that gap the loop's thread spent on the CPU: on a loaded machine the rest is
    the process waiting for a core (or the driver's thread holding the interpreter lock)."""

    def __init__(self) -> None:
        self.longest = self.longest_cpu = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            asked, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(TICKER_SLEEP)
            gap = time.perf_counter() - asked - TICKER_SLEEP
            if gap > self.longest:
                self.longest, self.longest_cpu = gap, time.thread_time() - cpu

    def start(self) -> None:
        self.longest = self.longest_cpu = 0.0
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> tuple[float, float]:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.longest, self.longest_cpu


class Collections:
    """The longest full (generation 2) garbage collection while it listens: the interpreter stops
    everything for it, and its length grows with every object alive, not with the work at hand."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._began = 0.0

    def _seen(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._began)

    def __enter__(self) -> Collections:
        self.longest = 0.0
        gc.callbacks.append(self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._seen)


async def _shape(app, wave: int, evening: datetime) -> None:  # type: ignore[no-untyped-def]
    """Every resident reachable; hours spread so that about ``wave`` are due at ``evening``; the
    moment migration 0011's backfill gives (one UPDATE)."""
    async with app.sessions() as session, session.begin():
        run = session.exec
        await run(text(
            "INSERT INTO identity (person_id, channel, external_id, created_at, last_seen_at) "
            "SELECT p.id, 'telegram', 'r' || p.id, p.created_at, p.last_active_at FROM person p "
            "WHERE NOT EXISTS (SELECT 1 FROM identity i WHERE i.person_id = p.id)"))
        everyone = (await run(text(  # who the wave takes if everyone's hour is 19:00 (all is)
            "SELECT count(*) FROM person p WHERE p.reminders_on AND p.last_active_at <= :cutoff AND EXISTS "
            "(SELECT 1 FROM lesson_progress l WHERE l.person_id = p.id AND l.status = 'in_progress')"
        ).bindparams(bindparam("cutoff", evening - timedelta(days=2), type_=UTCDateTime)))).one()[0]
        keep = min(1000, round(1000 * wave / max(everyone, 1)))  # per mille kept at 19:00
        cases = " ".join(f"WHEN {n} THEN {hour}" for n, hour in enumerate(OTHER_HOURS))
        await run(text(f"UPDATE person SET reminder_hour = CASE id % {len(OTHER_HOURS)} {cases} END "
                       f"WHERE id % 1000 >= {keep}"))
        await run(text(
            "UPDATE person SET next_reminder_at = COALESCE(last_active_at, created_at) "
            "WHERE reminders_on AND deleted_at IS NULL AND consent_at IS NOT NULL AND EXISTS "
            "(SELECT 1 FROM lesson_progress l WHERE l.person_id = person.id AND l.status = 'in_progress')"))
    if app.engine.dialect.name == "postgresql":
        async with app.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE person"))
            await connection.execute(text("VACUUM ANALYZE identity"))


async def _explain(app, work) -> None:  # type: ignore[no-untyped-def]
    """The database's plan of the read that ``work`` (a tick with nobody due) runs, run again."""
    seen: list[tuple[str, object]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(app.engine.sync_engine, "before_cursor_execute", keep)
    try:
        await work()
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", keep)
    statement, parameters = next((s, p) for s, p in seen if s.lstrip().startswith("SELECT person."))
    prefix = "EXPLAIN QUERY PLAN " if app.engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    async with app.engine.connect() as connection:
        plan = (await connection.exec_driver_sql(prefix + statement, parameters)).all()
    print("\n".join(f"    {row[-1]}" for row in plan), flush=True)


async def main(database: str, residents: int, wave: int, runs: int, batch: int, profile: str | None,
               explain: bool, freeze: bool, tmp: Path, results: dict[str, dict[str, str]]) -> None:
    await asyncio.to_thread(upgrade, database)
    clock = SystemClock()
    app = build_app(Settings(database_url=database, _env_file=None), clock=clock, files_dir=tmp / "files")  # type: ignore[call-arg]
    lessons = load_library()
    now = clock.now()
    await build_ward(app.sessions, residents=residents, lesson_ids=[lesson.id for lesson in lessons], now=now)
    policy = ReminderPolicy(zone=ZONE)
    today = now.astimezone(ZONE).date()
    started = time.perf_counter()
    await _shape(app, wave, datetime(today.year, today.month, today.day, 19, 5, tzinfo=ZONE))
    print(f"hours and moments set in {time.perf_counter() - started:.1f} s", flush=True)
    if freeze:  # what a bot that froze its start-up objects would collect (gc.freeze)
        gc.collect()
        gc.freeze()
        print(f"gc.freeze(): {gc.get_freeze_count():,} objects set aside", flush=True)
    statements = Statements(app.engine)
    ticker = Ticker()
    name = database.split("://")[0].split("+")[0]
    column = results.setdefault(name, {})

    async def tick(hour: int, minute: int, *, profiled: bool = False) -> tuple[float, tuple[float, float], int, int]:
        """(seconds, (longest loop block, the loop thread's CPU in it), reminders queued, SQL
        statements) of one tick."""
        moment = datetime(today.year, today.month, today.day, hour, minute, tzinfo=ZONE)
        before = statements.count
        ticker.start()
        profiler = cProfile.Profile(time.thread_time) if profiled else None  # the loop thread's own CPU
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        queued = await plan_reminders(app.sessions, now=moment, policy=policy, lessons=lessons,
                                      catalog=app.catalog, batch=batch)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - began
        return elapsed, await ticker.stop(), queued, statements.count - before

    def block_of(block: tuple[float, float]) -> str:
        gap, cpu = block
        return f"{gap * 1000:.0f} ms (its thread on the CPU {cpu * 1000:.0f} of those {(gap + TICKER_SLEEP) * 1000:.0f} ms)"

    def median_of(measures: list[tuple[float, tuple[float, float], int, int]]) -> str:
        return (f"{statistics.median(m[0] for m in measures) * 1000:.1f} ms "
                f"({measures[-1][3]} statement{'s' if measures[-1][3] != 1 else ''}, {measures[-1][2]} queued)")

    elapsed, block, queued, count = await tick(15, 0)
    column["15:00 first tick after the upgrade"] = (f"{elapsed:,.1f} s, longest block {block_of(block)}; "
                                                    f"{count:,} statements")
    print(f"  {name} 15:00 first tick after the upgrade: {column['15:00 first tick after the upgrade']}", flush=True)
    column["15:01 nobody due (goal < 50 ms)"] = median_of([await tick(15, 1) for _ in range(runs)])
    print(f"  {name} 15:01 nobody due: {column['15:01 nobody due (goal < 50 ms)']}", flush=True)
    print(f"  {len(gc.get_objects()):,} objects tracked by the garbage collector", flush=True)
    with Collections() as collections:
        elapsed, block, queued, count = await tick(19, 5, profiled=profile is not None)
    column["19:05 the wave: total"] = f"{elapsed:,.1f} s, {queued:,} queued ({count:,} statements)"
    column["19:05 the wave: longest loop block (goal < 100 ms)"] = block_of(block)
    column["19:05 the wave: longest full garbage collection"] = f"{collections.longest * 1000:.0f} ms"
    print(f"  {name} 19:05 wave: {column['19:05 the wave: total']}, longest block {block_of(block)}", flush=True)
    column["19:06 the tick after the wave"] = median_of([await tick(19, 6) for _ in range(runs)])
    print(f"  {name} 19:06 after the wave: {column['19:06 the tick after the wave']}", flush=True)
    if explain:
        await _explain(app, lambda: tick(19, 7))
    await app.close()


def run(databases: list[str], residents: int, wave: int, runs: int, batch: int, profile: str | None,
        explain: bool, freeze: bool) -> None:
    results: dict[str, dict[str, str]] = {}
    for database in databases:
        on_database(database, lambda url, tmp: main(url, residents, wave, runs, batch, profile, explain, freeze,
                                                    tmp, results))
    names = list(results)
    rows = list(next(iter(results.values())))
    print(f"\n{residents:,} residents, a wave of about {wave:,} at 19:00, batches of {batch}")
    print(f"| tick (local time) | {' | '.join(names)} |")
    print(f"| --- | {' | '.join('---' for _ in names)} |")
    for row in rows:
        print(f"| {row} | {' | '.join(results[n].get(row, '') for n in names)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--residents", type=int, default=500_000)
    parser.add_argument("--wave", type=int, default=200_000, help="about how many are due at 19:00")
    parser.add_argument("--runs", type=int, default=5, help="runs of each tick with nobody due (median)")
    parser.add_argument("--batch", type=int, default=BATCH, help="residents planned per transaction")
    parser.add_argument("--profile", help="write a cProfile of the wave here (the event loop thread's CPU time)")
    parser.add_argument("--explain", action="store_true", help="print the plan of the read when nobody is due")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() the objects alive before the ticks")
    args = parser.parse_args()
    chosen = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    run(chosen, args.residents, args.wave, args.runs, args.batch, args.profile, args.explain, args.freeze)
