"""Issue 11 §5: the numbers of one large ward — 50,000 residents in 40 groups, ~400,000 progress rows.

Builds the synthetic ward with a few INSERT … SELECT statements (a recursive CTE numbers the
residents), then times, as median of a few runs on the real clock:

- the leader page: ``group_stats`` of one group + ``members_progress`` of it (what /nhom reads);
- the ward overview and ranking: ``group_stats`` of the ward + ``ranking``;
- the workbook + charts + documents: ``build_report`` (as the admin's chat and the deadline
  reminders do: read on the event loop, drawn in the drawing process, the documents drawn while
  the residents' rows are read), one run, while a resident chats; the peak RSS of the bot's and
  of the drawing process; and the reading alone (``read_report``), for the split;
- the weekly digest planning for every leader (``plan_digests``, rolled back after each run);
- the reply latency of a resident chatting through the real conversation engine while the
  workbook is built (p50 / p99), against the same without a build.

Each measure also reports how many SQL statements it runs; the build, the event loop's longest
stall during it. The drawing process is started (and matplotlib loaded there) before the
measures, as in a bot that has drawn a report before; how long that takes is printed. PostgreSQL is vacuumed and analysed after the load; SQLite is not
analysed (the bot never does), so its planner works without statistics, as in production.

    .venv/bin/python benchmarks/ward_scale.py                                   # SQLite file
    .venv/bin/python benchmarks/ward_scale.py --database postgresql             # a fresh PostgreSQL database
    .venv/bin/python benchmarks/ward_scale.py --residents 5000 --runs 1         # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, event, func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core.conversation import SystemClock  # noqa: E402
from bot.curriculum import load_library  # noqa: E402
from bot.digest import plan_digests  # noqa: E402
from bot.reports.chart import GroupChart, group_chart_png  # noqa: E402
from bot.reports.docx import Signer  # noqa: E402
from bot.reports.exports import build_report, in_drawing_process, read_report  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Identity, LessonProgress, Person, ResidentGroup, Role, RoleKind, Ward  # noqa: E402
from storage.stats import group_stats, members_progress, ranking  # noqa: E402
from storage.types import UTCDateTime  # noqa: E402
from tests.support import Chat, join  # noqa: E402

POSTGRES_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
GROUPS = 40
DAYS = 540  # 18 months of activity
WARD = "BENCH"


async def build_ward(sessions: Any, *, residents: int, lesson_ids: list[str], now: Any) -> dict[str, int]:
    """The ward, its groups and leaders (ORM), then residents and progress (INSERT … SELECT)."""
    started = time.monotonic()
    async with sessions() as session, session.begin():
        ward = Ward(code=WARD, name="Phường Thử Tải")
        session.add(ward)
        await session.flush()
        groups = [ResidentGroup(code=f"{WARD}-{n:02d}", name=f"Tổ dân phố {n}", ward_id=ward.id,  # type: ignore[arg-type]
                                target_percent=60 + n % 30) for n in range(1, GROUPS + 1)]
        session.add_all(groups)
        await session.flush()
        leaders = [Person(display_name=f"Tổ trưởng {n}", group_id=g.id, consent_at=now, consent_version="1",
                          created_at=now - timedelta(days=DAYS), last_active_at=now)
                   for n, g in enumerate(groups, 1)]
        session.add_all(leaders)
        await session.flush()
        session.add_all(Identity(person_id=p.id, channel="telegram", external_id=f"leader-{p.id}", created_at=now,
                                 last_seen_at=now) for p in leaders)
        session.add_all(Role(person_id=p.id, kind=RoleKind.LEADER, group_id=g.id, granted_by="benchmark",  # type: ignore[arg-type]
                             granted_at=now) for p, g in zip(leaders, groups, strict=True))
        first_group = groups[0].id
        assisting = leaders[0].id
        connection = await session.connection()
        # Helper tables: one timestamp per day of the 18 months, the lessons by position.
        meta = MetaData()
        day = Table("bench_day", meta, Column("n", Integer, primary_key=True), Column("at", UTCDateTime))
        lesson = Table("bench_lesson", meta, Column("j", Integer, primary_key=True), Column("lesson_id", String(32)))
        await connection.run_sync(meta.create_all)
        await connection.execute(day.insert(), [{"n": n, "at": now - timedelta(days=n, hours=n % 11)}
                                                for n in range(DAYS)])
        await connection.execute(lesson.insert(), [{"j": j, "lesson_id": lid} for j, lid in enumerate(lesson_ids)])
        oldest = bindparam("oldest", now - timedelta(days=DAYS), type_=UTCDateTime)
        await connection.execute(text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
            "INSERT INTO person (display_name, group_id, locale, consent_at, consent_version, reminder_hour, "
            "reminders_on, reminders_unanswered, created_at, last_active_at) "
            "SELECT 'Cư dân ' || i, :first_group + i % :groups, 'vi', :oldest, '1', 19, :yes, 0, :oldest, "
            "(SELECT at FROM bench_day WHERE n = i % :days) FROM n"
        ).bindparams(oldest, bindparam("yes", True)),
            {"count": residents, "first_group": first_group, "groups": GROUPS, "days": DAYS})
        # Resident i opened the lessons j < i % 17 (capped by the curriculum), finished all but the
        # last one opened (every third resident finished that one too); every tenth was assisted.
        done = "(l.j < (p.id % 17) - 1 OR p.id % 3 = 0)"
        await connection.execute(text(
            "INSERT INTO lesson_progress (person_id, lesson_id, lesson_version, status, score, attempts, card, "
            "started_at, completed_at, updated_at, assisted_by) "
            f"SELECT p.id, l.lesson_id, 1, CASE WHEN {done} THEN 'completed' ELSE 'in_progress' END, "
            f"CASE WHEN {done} THEN 3 ELSE NULL END, 1, 0, d.at, CASE WHEN {done} THEN d.at ELSE NULL END, d.at, "
            f"CASE WHEN {done} AND p.id % 10 = 0 THEN CAST(:leader AS INTEGER) ELSE NULL END "
            "FROM person p JOIN bench_lesson l ON l.j < p.id % 17 "
            "JOIN bench_day d ON d.n = (p.id * 7 + l.j * 5) % :days "
            "WHERE p.display_name LIKE 'Cư dân %'"
        ), {"leader": assisting, "days": DAYS})
        await connection.run_sync(meta.drop_all)
    engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load (PostgreSQL 13+ vacuums after inserts too):
        # statistics for the planner and the visibility map that lets it read the covering index alone.
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))
    async with sessions() as session:
        people = (await session.exec(select(func.count()).select_from(Person))).one()  # type: ignore[call-overload]
        rows = (await session.exec(select(func.count()).select_from(LessonProgress))).one()  # type: ignore[call-overload]
    print(f"built {people[0]:,} people, {rows[0]:,} progress rows in {GROUPS} groups "
          f"in {time.monotonic() - started:.1f} s", flush=True)
    return {"ward": ward.id, "group": first_group}  # type: ignore[dict-item]


class Statements:
    """Counts the SQL statements the engine runs (one measure's query count)."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: object) -> None:
        self.count += 1


class LoopStalls:
    """The event loop's longest stall: a task that asks to wake every 5 ms and records how late
    it woke (what a resident's reply waits for on top of its own work)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(0.005)
            self.longest = max(self.longest, time.monotonic() - asked - 0.005)

    def start(self) -> None:
        self.longest = 0.0
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.longest


async def timed(runs: int, work: Callable[[], Awaitable[object]], *, warm_up: bool = True) -> float:
    """Median wall time in seconds of ``runs`` runs (after one warm-up run)."""
    if warm_up:
        await work()
    times = []
    for _ in range(runs):
        started = time.monotonic()
        await work()
        times.append(time.monotonic() - started)
    return statistics.median(times)


async def main(database: str, residents: int, runs: int, tmp: Path) -> None:
    # Start the drawing process and load matplotlib and its fonts there once, as a running bot has
    # after its first report (the time it takes is printed): the report runs are not warmed up.
    started = time.monotonic()
    await in_drawing_process(group_chart_png, GroupChart("warm-up", []))
    print(f"drawing process started and warmed in {time.monotonic() - started:.1f} s", flush=True)
    await asyncio.to_thread(upgrade, database)
    clock = SystemClock()
    app = build_app(Settings(database_url=database, _env_file=None), clock=clock, files_dir=tmp / "files")  # type: ignore[call-arg]
    lessons = load_library()
    ids = [lesson.id for lesson in lessons]
    now = clock.now()
    keys = await build_ward(app.sessions, residents=residents, lesson_ids=ids, now=now)
    ward_id, group_id = keys["ward"], keys["group"]

    async def leader_page() -> None:
        async with app.sessions() as session:
            await group_stats(session, lesson_ids=ids, since=clock.now() - timedelta(days=7), group_ids=[group_id])
            await members_progress(session, group_id=group_id, lesson_ids=ids)

    async def overview_and_ranking() -> None:
        async with app.sessions() as session:
            ranking(await group_stats(session, lesson_ids=ids, since=clock.now() - timedelta(days=7), ward_id=ward_id))

    peak = {"rss": 0}
    stall: dict[str, float] = {}
    stalls = LoopStalls()

    async def workbook_and_chart() -> None:
        end = clock.now()
        stalls.start()
        made = await build_report(app.sessions, ward_id=ward_id, lessons=lessons, start=end - timedelta(days=182),
                                  end=end, zone=ZONE, span=None, now=end, signer=Signer())
        stall["build"] = await stalls.stop()
        assert made.workbook and made.report and made.charts
        peak["rss"] = max(peak["rss"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        drawing = await in_drawing_process(resource.getrusage, resource.RUSAGE_SELF)
        peak["drawing"] = max(peak.get("drawing", 0), drawing.ru_maxrss)

    async def report_read() -> None:
        """The reading alone (what the build does on the event loop), for the split."""
        end = clock.now()
        async with app.sessions() as session:
            await read_report(session, ward_code=WARD, lessons=lessons, start=end - timedelta(days=182), end=end,
                              zone=ZONE)

    async def digest() -> None:
        async with app.sessions() as session:
            transaction = await session.begin()
            queued = await plan_digests(session, now=clock.now(), zone=ZONE, lessons=lessons, catalog=app.catalog)
            assert queued == GROUPS, queued
            await transaction.rollback()

    statements = Statements(app.engine)
    results: dict[str, float] = {}
    queries: dict[str, int] = {}
    for name, count, work, warm_up in (("leader page", runs * 2, leader_page, True),
                                       ("ward overview + ranking", runs * 2, overview_and_ranking, True),
                                       ("weekly digest, all leaders", runs, digest, True),
                                       ("report read alone (6 months)", 1, report_read, False)):
        before = statements.count
        await work()
        queries[name] = statements.count - before
        results[name] = await timed(count, work, warm_up=warm_up)
        print(f"  {name}: {results[name] * 1000:.0f} ms, {queries[name]} statements", flush=True)

    # A resident keeps chatting while the report is built.
    resident = Chat(app.conversation, user="bench-resident", name="Lan")
    await join(resident, group_code=f"{WARD}-01")

    async def chat_latencies(stop: asyncio.Event, minimum: int) -> list[tuple[float, float]]:
        """(sent at, reply latency) of each message."""
        latencies: list[tuple[float, float]] = []
        while not stop.is_set() or len(latencies) < minimum:
            started = time.monotonic()
            replies = await resident.send("xin chào")
            assert replies
            latencies.append((started, time.monotonic() - started))
            await asyncio.sleep(0.02)
        return latencies

    idle_stop = asyncio.Event()
    idle_stop.set()
    idle = [latency for _, latency in await chat_latencies(idle_stop, 50)]
    during_stop = asyncio.Event()
    chatting = asyncio.create_task(chat_latencies(during_stop, 20))
    before = statements.count
    build_started = time.monotonic()
    await workbook_and_chart()
    build_time = time.monotonic() - build_started
    queries["report files (6 months)"] = statements.count - before  # the resident's own included
    results["report files (6 months)"] = build_time  # workbook, charts, DOCX: one run, while the resident chats
    during_stop.set()
    during = await chatting

    def p(values: list[float], q: float) -> float:
        ordered = sorted(values) or [0.0]
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    await app.close()
    print(f"database                      {database.split('://')[0]}")
    print(f"residents / groups            {residents:,} / {GROUPS}")
    for name, seconds in results.items():
        count = runs * 2 if "page" in name or "ranking" in name else 1 if "files" in name or "read" in name else runs
        print(f"{name:<30}{seconds * 1000:9.0f} ms  (median of {count}; {queries[name]} SQL statements)")
    print(f"  the event loop's longest stall during the build: {stall['build'] * 1000:.0f} ms")
    print(f"peak RSS of the bot's process {peak['rss'] / 1024:9.0f} MB; of the drawing process "
          f"{peak['drawing'] / 1024:.0f} MB")
    print(f"resident reply, idle          p50 {p(idle, 0.5):.0f} ms, p99 {p(idle, 0.99):.0f} ms ({len(idle)} replies)")
    replies = [latency for _, latency in during]
    print(f"resident reply, during build  p50 {p(replies, 0.5):.0f} ms, p99 {p(replies, 0.99):.0f} ms "
          f"({len(replies)} replies during a {build_time:.1f} s build)")


async def _fresh_postgres() -> tuple[str, Callable[[], Awaitable[None]]]:
    name = f"hocvuso_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()

    async def drop() -> None:
        admin = create_async_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}", drop


def on_database(database: str, work: Callable[[str, Path], Awaitable[None]]) -> None:
    """``work(url, folder)`` on a SQLite file in a temporary folder, or on a fresh PostgreSQL
    database (dropped afterwards)."""
    with tempfile.TemporaryDirectory() as tmp:
        if database == "sqlite":
            asyncio.run(work(f"sqlite+aiosqlite:///{tmp}/ward.db", Path(tmp)))
            return
        url, drop = asyncio.run(_fresh_postgres())
        try:
            asyncio.run(work(url, Path(tmp)))
        finally:
            asyncio.run(drop())


def run(database: str, residents: int, runs: int) -> None:
    on_database(database, lambda url, tmp: main(url, residents, runs, tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                        help="sqlite: a temporary file; postgresql: a fresh database on 127.0.0.1:5432 (dropped)")
    parser.add_argument("--residents", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    run(args.database, args.residents, args.runs)
