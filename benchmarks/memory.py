"""Issue 12 §3: the memory of ``hocvuso run`` serving a city-sized database.

Builds the synthetic ward of ``benchmarks/ward_scale.py`` (500,000 residents by default, each
with a Telegram identity, everyone's reminder hour 19:00), then starts the whole bot
(``hocvuso run``, role ``all``) on the fake Bot API, on a clock set to 19:04:30 local time, so that
within the measure the evening reminder wave is planned and the outbox starts sending it while
residents write to the bot. Samples the process's resident memory (``VmRSS``) twice a second and
prints it after start, its peak (``VmHWM``, the kernel's high-water mark) and at the end.

    .venv/bin/python benchmarks/memory.py                                  # SQLite, 500,000
    .venv/bin/python benchmarks/memory.py --database postgresql --seconds 90
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import text  # noqa: E402
from ward_scale import ZONE, build_ward, on_database  # noqa: E402

FIRST_USER = 10_000_000


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (empty once the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if k in ("VmRSS", "VmHWM")}


async def main(url: str, tmp: Path, residents: int, seconds: float) -> None:
    from bot.core.conversation import SystemClock
    from bot.curriculum import load_library
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade
    from tests.clocked import command, environment
    from tests.fakes.telegram_api import FakeTelegram
    from tests.support import free_port

    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    today = SystemClock().now().astimezone(ZONE).date()
    start = datetime(today.year, today.month, today.day, 19, 4, 30, tzinfo=ZONE)
    await build_ward(sessions, residents=residents, lesson_ids=[lesson.id for lesson in load_library()],
                     now=start - timedelta(minutes=5))
    async with sessions() as session, session.begin():  # every resident on Telegram, by a numeric chat id
        await session.exec(text(  # type: ignore[call-overload]
            f"INSERT INTO identity (person_id, channel, external_id, created_at, last_seen_at) "
            f"SELECT p.id, 'telegram', CAST({FIRST_USER} + p.id AS VARCHAR(20)), p.created_at, p.last_active_at "
            f"FROM person p WHERE NOT EXISTS (SELECT 1 FROM identity i WHERE i.person_id = p.id)"))
    await engine.dispose()
    writers = [FIRST_USER + 100 + n for n in range(20)]
    async with FakeTelegram() as tg:
        tg.accept_any_chat = True  # every resident's chat exists
        env = environment(DATABASE_URL=url, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.url,
                          TELEGRAM_BOT_USERNAME="bench_bot", LOG_LEVEL="WARNING", WEB_HOST="127.0.0.1",
                          WEB_PORT=str(free_port()), TELEGRAM_RATE="200")
        process = await asyncio.create_subprocess_exec(
            *command(start, "run"), env=env, cwd=tmp, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        try:
            await tg.wait_for(lambda t: t.waiting_pollers, timeout=180)
            started = _status(process.pid)
            began = time.monotonic()
            samples: list[int] = []
            n = 0
            while time.monotonic() - began < seconds:
                for user in writers:  # residents writing while the wave is planned and sent
                    tg.push_text(user, ["/tiendo", "/start", "xin chào", "/menu"][n % 4])
                n += 1
                await asyncio.sleep(0.5)
                status = _status(process.pid)
                if status:
                    samples.append(status["VmRSS"])
            final = _status(process.pid)
        finally:
            process.terminate()
            _, err = await asyncio.wait_for(process.communicate(), 120)
        sent = len(tg.calls_to("sendMessage"))
    if b"Traceback" in err:
        print(err.decode()[-3000:])
    print(f"database {url.split('+')[0]}, {residents:,} residents; hocvuso run on a clock from 19:04:30 "
          f"for {seconds:.0f} s, {os.cpu_count()} cores")
    print(f"  RSS after start        {started['VmRSS'] / 1024:7.0f} MB")
    print(f"  RSS at the end         {final.get('VmRSS', 0) / 1024:7.0f} MB")
    print(f"  peak RSS (VmHWM)       {final.get('VmHWM', max(samples, default=0)) / 1024:7.0f} MB  (goal < 200 MB)")
    print(f"  messages sent meanwhile {sent:,} (replies and the reminder wave)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--residents", type=int, default=500_000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    on_database(args.database, lambda url, tmp: main(url, tmp, args.residents, args.seconds))
