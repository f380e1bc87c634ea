"""Restarts and replays change nothing (issue 9 §4): an update the process was handling when it
died is handled after the restart — Telegram gets it again because it was never confirmed —
and an event a channel delivers again after a restart (Zalo's retries) is recorded once."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

from sqlmodel import select

from bot.app import App
from storage.models import Identity, Person, QuizAnswer
from tests.clocked import command, environment
from tests.conftest import START
from tests.contract.drivers import zalo_server
from tests.fakes.telegram_api import FakeTelegram
from tests.support import ManualClock

USER = 737373


async def _start_bot(tg: FakeTelegram, tmp: Path) -> asyncio.subprocess.Process:
    """``hocvuso run`` in a process of its own, on a clock starting at START (tests.clocked)."""
    env = environment(DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'bot.db'}", TELEGRAM_BOT_TOKEN=tg.token,
                      TELEGRAM_API_URL=tg.url, LOG_LEVEL="INFO")
    process = await asyncio.create_subprocess_exec(
        *command(START, "run"), env=env, cwd=tmp,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    await tg.wait_for(lambda t: t.waiting_pollers, timeout=60)
    return process


async def test_an_update_in_hand_when_the_process_dies_is_handled_after_the_restart(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        first = await _start_bot(tg, tmp_path)
        try:
            tg.push_text(USER, "/start")
            await tg.wait_for(lambda t: t.last_message(USER) is not None, timeout=30)
            consent = [d for text, d in tg.buttons(USER) if "Đồng ý" in text][0]
            # Another process holds the database's write lock: the press is fetched, and its
            # transaction waits when the process is killed.
            lock = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            pressed = tg.push_callback(USER, consent)
            await tg.wait_for(lambda t: t._delivered_upto >= pressed, timeout=30)
            # Long enough for a poller that confirms at once to have asked for the next batch.
            await asyncio.sleep(1.5)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        lock.execute("ROLLBACK")
        lock.close()
        second = await _start_bot(tg, tmp_path)
        try:
            await tg.wait_for(lambda t: "Mình sẽ gọi bạn là" in t.last_message(USER).text, timeout=30)
        finally:
            second.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode == 0, stderr.decode()[-2000:]
    database = sqlite3.connect(tmp_path / "bot.db")
    [(consent_at,)] = database.execute("SELECT consent_at FROM person").fetchall()
    assert consent_at is not None
    database.close()


async def test_a_zalo_event_delivered_again_after_a_restart_is_handled_once(ward: App, clock: ManualClock) -> None:
    """The same webhook event (Zalo retries for a while) reaches a new process, and again an
    hour later: the database remembers it, so the answer is recorded once."""
    user = "0123456789abcdef0123"
    lesson = ward.lessons.first
    # consent, name, group, the first card; every card; the quiz
    typed = ["/start g_DEMO-TDP03", "1", "1", "1", "/hoc", *["tiep"] * (len(lesson.cards) - 1), "lam bai kiem tra"]
    async with zalo_server(ward) as (zalo, bot):
        for text in typed:
            zalo.push_text(user, text, display_name="Bà Tư")
            await zalo.wait_for(lambda: zalo.pending == 0 and bot.received >= zalo.handed_out
                                and bot.tasks.in_flight == 0, timeout=10)
        assert lesson.quiz.questions[0].text in zalo.chat(user)[-1].text
    answer = {"event_name": "message.text.received", "message": {
        "message_id": "answer-1", "from": {"id": user, "display_name": "Bà Tư"},
        "chat": {"id": user, "chat_type": "PRIVATE"}, "text": "a"}}
    for _ in range(3):  # the same event, three processes, an hour apart
        async with zalo_server(ward) as (zalo, bot):
            bot.accept(json.loads(json.dumps(answer)))
            await bot.tasks.drain()
        clock.advance(hours=1)
    async with ward.sessions() as session:
        answers = (await session.exec(select(QuizAnswer))).all()
        identity = (await session.exec(select(Identity).where(Identity.external_id == user))).one()
        person = await session.get(Person, identity.person_id)
    assert len(answers) == 1 and answers[0].question_id == lesson.quiz.questions[0].id
    assert person is not None and person.display_name == "Bà Tư"
