"""Two web replicas (issue 12 §2): two real ``hocvuso run --role web`` processes on one
PostgreSQL database receive one resident's updates, delivered alternately to each — a button
offered by one replica's answer is pressed through the other — and a burst of the resident's
messages posted to both at once. Nothing lives in a process: the journey goes on as on one, and
each update is handled exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import func, select

from bot.curriculum import load_library
from bot.group_import import import_groups, parse_groups_csv
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import ConversationState, HandledEvent, Identity, LessonProgress
from tests.clocked import command, environment
from tests.conftest import ROOT, START, postgres_database
from tests.fakes.telegram_api import FakeTelegram
from tests.support import free_port

USER = 626262
SECRET = "replicas_secret"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
pytestmark = pytest.mark.postgres


async def test_one_residents_updates_alternate_between_two_web_replicas(tmp_path: Path) -> None:
    lesson = load_library().first
    async with postgres_database() as url, FakeTelegram() as tg:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        rows, errors = parse_groups_csv((ROOT / "examples" / "demo-ward.csv").read_bytes())
        assert not errors
        async with sessions() as session, session.begin():
            await import_groups(session, rows=rows, actor="test", now=START)
        tg.webhook_delivery = False  # this test plays Telegram: it chooses the replica of each update
        tg.add_user(USER, first_name="Lan")
        replicas, processes = [], []
        for name in ("a", "b"):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = environment(DATABASE_URL=url, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.url,
                              TELEGRAM_WEBHOOK_SECRET=SECRET, PUBLIC_BASE_URL=base, WEB_HOST="127.0.0.1",
                              WEB_PORT=str(port), LOG_LEVEL="WARNING")
            (tmp_path / name).mkdir()
            processes.append(await asyncio.create_subprocess_exec(
                *command(START, "run", "--role", "web"), env=env, cwd=tmp_path / name,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE))
            replicas.append(f"{base}/webhooks/telegram")
        try:
            await tg.wait_for(lambda t: len(t.calls_to("setWebhook")) >= 2, timeout=180)
            async with aiohttp.ClientSession() as http:
                turn = 0

                async def deliver(update_id: int, replica: int | None = None) -> int:
                    nonlocal turn
                    target = replicas[turn % 2 if replica is None else replica]
                    turn += 1
                    async with http.post(target, json=tg.take(update_id), headers={HEADER: SECRET}) as answer:
                        status = answer.status
                    await tg.wait_idle(USER, timeout=60)  # answered once committed; the replies follow
                    return status

                async def press(label: str) -> None:
                    [data] = [d for text, d in tg.buttons(USER) if label in text]
                    assert await deliver(tg.push_callback(USER, data)) == 200

                # Each step's answer comes from one replica, the press on it goes to the other.
                assert await deliver(tg.push_text(USER, "/start g_DEMO-TDP03", first_name="Lan")) == 200
                assert "Bạn có đồng ý không?" in tg.last_message(USER).text  # type: ignore[union-attr]
                await press("Đồng ý")
                await press("Đúng rồi")
                assert "Tổ dân phố 3, Phường Mẫu" in tg.last_message(USER).text  # type: ignore[union-attr]
                await press("Đúng rồi")
                await press("Học tiếp")
                for number in range(1, len(lesson.cards)):
                    await press("Tiếp")
                    assert lesson.cards[number].text in tg.last_message(USER).text  # type: ignore[union-attr]
                # A burst: eight messages posted at once, alternately to both replicas.
                sent_before = len(tg.calls_to("sendMessage"))
                burst = [tg.push_text(USER, f"xin chào {n}", first_name="Lan") for n in range(8)]
                statuses = await asyncio.gather(*(deliver(u, n % 2) for n, u in enumerate(burst)))
                assert statuses == [200] * 8
                assert len(tg.calls_to("sendMessage")) - sent_before >= 8  # every message answered
            async with sessions() as session:
                identities = (await session.exec(select(func.count()).select_from(Identity))).one()
                handled = (await session.exec(select(func.count()).select_from(HandledEvent))).one()
                state = (await session.exec(select(ConversationState))).one()
                progress = (await session.exec(select(LessonProgress))).one()
            presses = 4 + len(lesson.cards) - 1
            assert identities == 1 and handled == 1 + presses + 8  # each update once, on one replica or the other
            assert progress.lesson_id == lesson.id and progress.card == len(lesson.cards) - 1
            assert state is not None
            await engine.dispose()
        finally:
            for process in processes:
                process.terminate()
            errors_seen = []
            for process in processes:
                _, stderr = await asyncio.wait_for(process.communicate(), 30)
                errors_seen.append(stderr.decode())
        assert all("Traceback" not in text for text in errors_seen), errors_seen
