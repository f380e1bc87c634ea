"""The conversation engine's own CPU per update, in-process (no channel, no other process).

Residents go one after another through the throughput benchmark's flow (``throughput.texts``:
join with consent by typed answers, the first lesson's cards, then "xin chào"), each update
handled by ``Conversation.handle`` as the adapters call it; prints the CPU time
(``time.process_time``: this process, the database's own work on PostgreSQL not included) of
each message of the flow, averaged over the residents, and their mean.

    .venv/bin/python benchmarks/engine_cpu.py                          # SQLite, 150 residents
    .venv/bin/python benchmarks/engine_cpu.py --database postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import texts  # noqa: E402
from ward_scale import on_database  # noqa: E402


async def main(url: str, residents: int, count: int) -> None:
    from bot.app import build_app
    from bot.config import Settings
    from bot.core.conversation import SystemClock
    from bot.core.messages import Capabilities, Incoming
    from bot.group_import import import_groups, parse_groups_csv
    from storage.migrate import upgrade

    await asyncio.to_thread(upgrade, url)
    clock = SystemClock()
    app = build_app(Settings(_env_file=None, database_url=url), clock=clock)  # type: ignore[call-arg]
    rows, errors = parse_groups_csv((ROOT / "examples" / "demo-ward.csv").read_bytes())
    assert not errors
    async with app.sessions() as session, session.begin():
        await import_groups(session, rows=rows, actor="benchmark", now=clock.now())
    buttons = Capabilities(buttons=True, edit=True, text_limit=4096)
    messages = texts(len(app.lessons.first.cards), count)
    spent: dict[tuple[int, str], float] = collections.defaultdict(float)
    update = 0
    for resident in range(residents + 1):  # the first one warms up (imports, connections, caches)
        for number, said in enumerate(messages):
            update += 1
            incoming = Incoming(channel="telegram", external_id=str(5_000_000 + resident), display_name="Lan",
                                text=said, update_id=str(update), event_id=str(update))
            before = time.process_time()
            await app.conversation.handle(incoming, buttons)
            if resident:
                spent[(number, said)] += time.process_time() - before
    await app.close()
    print(f"{residents} residents × {count} messages, in-process; database {url.split('+')[0]}")
    for (number, said), seconds in sorted(spent.items()):
        print(f"  {number:2} {said:<22} {seconds / residents * 1e6:7.0f} µs")
    print(f"  mean {sum(spent.values()) / residents / len(messages) * 1e6:.0f} µs of CPU per update")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--residents", type=int, default=150)
    parser.add_argument("--messages", type=int, default=25)
    args = parser.parse_args()
    on_database(args.database, lambda url, _tmp: main(url, args.residents, args.messages))
