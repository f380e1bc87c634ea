"""Issue 12 §3: updates per second of the whole bot against a bare aiogram echo bot, side by side.

One run starts the fake Bot API (tests/fakes/telegram_api.py) in this process, then, each in a
process of its own on the same fake and with the same users: a bare aiogram 3 echo bot
(``dp.start_polling``, one ``message.answer`` per message), the same echo bot answering with a
six-button inline keyboard as the bot's main menu does (what aiogram alone spends on such a
reply: its models, serialising, and validating the message the Bot API sends back), then
``hocvuso run`` (the real bot,
SQLite or PostgreSQL, the demo ward's groups). Each user is a closed loop — sends a message,
waits for the bot's answer, sends the next — through the resident flow on the whole bot: join a
group with consent (``/start g_…``, then typed answers), open the first lesson and read its
cards by typing "tiếp" (state and progress written at every step), then the help answer to
"xin chào" for the rest. The echo bot gets the same texts. Prints updates/s and the latency of
each update (sent → first answer seen by the fake) for both, and their ratio.

    .venv/bin/python benchmarks/throughput.py                            # SQLite, 40 users × 25 messages
    .venv/bin/python benchmarks/throughput.py --database postgresql
    .venv/bin/python benchmarks/throughput.py --database postgresql --rounds 5   # five rounds in turn, the ratio's median
    .venv/bin/python benchmarks/throughput.py --profile /tmp/bot.prof     # cProfile of the whole bot's process
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ward_scale import on_database  # noqa: E402

ECHO = '''
import asyncio, sys
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message

# With "menu": every answer carries six buttons, as the bot's main menu does.
LABELS = ["📖 Học tiếp", "📚 Danh sách bài học", "📊 Tiến độ của tôi", "🔔 Nhắc học",
          "❓ Hỏi cán bộ", "ℹ️ Hướng dẫn"]

async def main() -> None:
    bot = Bot(sys.argv[2], session=AiohttpSession(api=TelegramAPIServer.from_base(sys.argv[1])))
    dp = Dispatcher()
    menu = len(sys.argv) > 3 and sys.argv[3] == "menu"

    @dp.message()
    async def echo(message: Message) -> None:
        markup = InlineKeyboardMarkup(inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=f"menu:{i}")] for i, label in enumerate(LABELS)
        ]) if menu else None
        await message.answer(message.text or "?", reply_markup=markup)

    await dp.start_polling(bot, polling_timeout=1, handle_signals=True)

asyncio.run(main())
'''


def texts(lesson_cards: int, count: int) -> list[str]:
    """One user's messages: join with consent, the lesson's cards, then small talk."""
    flow = ["/start g_DEMO-TDP03", "1", "1", "1", "1"] + ["tiếp"] * (lesson_cards - 1)
    return (flow + ["xin chào"] * count)[:count]


async def drive(tg, users: list[int], messages: list[str]) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """Every user sends ``messages`` one after the other, each after the answer to the last;
    returns the elapsed seconds and every update's latency."""
    latencies: list[float] = []

    async def user(uid: int) -> None:
        for text in messages:
            before = tg.sent_count(uid)
            sent = time.perf_counter()
            tg.push_text(uid, text, first_name="Lan")
            await tg.wait_for(lambda t, b=before, u=uid: t.sent_count(u) > b, timeout=120)
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(user(uid) for uid in users))
    return time.perf_counter() - started, latencies


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(label: str, argv: list[str], env: dict[str, str], users: list[int], messages: list[str],
                  tg, cwd: Path) -> float:  # type: ignore[no-untyped-def]
    process = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    try:
        await tg.wait_for(lambda t: t.waiting_pollers, timeout=120)
        # A warm-up round (imports, connections, caches), not counted.
        await drive(tg, [users[0] + 1_000_000], messages[:3])
        cpu_before = cpu_seconds(process.pid)
        elapsed, latencies = await drive(tg, users, messages)
        cpu_after = cpu_seconds(process.pid)
    finally:
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 60)
    total = len(users) * len(messages)
    ordered = sorted(latencies)
    rate = total / elapsed
    # The bot process's own CPU per update: what it costs, whatever else the machine runs.
    cpu = (f"; CPU {(cpu_after - cpu_before) / total * 1000:.1f} ms/update"
           if cpu_before is not None and cpu_after is not None else "")
    print(f"  {label:<28} {rate:7.0f} updates/s  ({total} updates in {elapsed:.1f} s; latency p50 "
          f"{statistics.median(ordered) * 1000:.0f} ms, p99 {ordered[int(0.99 * (len(ordered) - 1))] * 1000:.0f} ms{cpu})",
          flush=True)
    if b"Traceback" in err:
        print(err.decode()[-3000:])
    return rate


async def main(url: str, tmp: Path, users_count: int, count: int, profile: str | None, rounds: int) -> None:
    from bot.curriculum import load_library
    from bot.group_import import import_groups, parse_groups_csv
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade
    from tests.clocked import environment
    from tests.fakes.telegram_api import FakeTelegram

    messages = texts(len(load_library().first.cards), count)
    (tmp / "echo.py").write_text(ECHO, encoding="utf-8")
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    rows, errors = parse_groups_csv((ROOT / "examples" / "demo-ward.csv").read_bytes())
    assert not errors
    async with session_factory(engine)() as session, session.begin():
        await import_groups(session, rows=rows, actor="benchmark", now=_now())
    await engine.dispose()
    print(f"{users_count} users × {count} messages, one process per bot, {os.cpu_count()} cores; "
          f"database {url.split('+')[0]}")
    ratios: list[float] = []
    # The whole bot's fake lasts every round, as Telegram does: its update ids go on rising (the
    # bot drops an id it has handled before).
    async with FakeTelegram() as bot_api:
        for round_ in range(rounds):
            if rounds > 1:
                print(f" round {round_ + 1} of {rounds}")
            # New residents every round: the ones of a round before have joined already.
            users = [7_000_000 + 1_000 * round_ + n for n in range(users_count)]
            async with FakeTelegram() as tg:
                echo = await measure("bare aiogram echo bot", [sys.executable, str(tmp / "echo.py"), tg.url, tg.token],
                                     dict(os.environ), users, messages, tg, tmp)
            async with FakeTelegram() as tg:  # what answering with a menu costs aiogram alone
                menu = await measure("echo bot, 6-button menu",
                                     [sys.executable, str(tmp / "echo.py"), tg.url, tg.token, "menu"],
                                     dict(os.environ), users, messages, tg, tmp)
            env = environment(DATABASE_URL=url, TELEGRAM_BOT_TOKEN=bot_api.token, TELEGRAM_API_URL=bot_api.url,
                              LOG_LEVEL="WARNING", WEB_HOST="127.0.0.1")
            python = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
            whole = await measure("Học vụ số (hocvuso run)", [*python, "-m", "bot", "run"], env, users, messages,
                                  bot_api, tmp)
            ratios.append(whole / echo)
            print(f"  ratio: {whole / echo:.2f} (goal ≥ 0.5); the menu echo bot alone: {menu / echo:.2f}")
    if rounds > 1:
        print(f"ratio over {rounds} rounds: median {statistics.median(ratios):.2f}, "
              f"lowest {min(ratios):.2f}, highest {max(ratios):.2f} (goal ≥ 0.5)")


def _now():  # type: ignore[no-untyped-def]
    from bot.core.conversation import SystemClock

    return SystemClock().now()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--messages", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the three bots this many times in turn (new residents each round) "
                             "and print the ratio's median: one run's echo bot is over in a second")
    parser.add_argument("--profile", help="write a cProfile of the whole bot's process to this file")
    args = parser.parse_args()
    on_database(args.database,
                lambda url, tmp: main(url, tmp, args.users, args.messages, args.profile, args.rounds))
