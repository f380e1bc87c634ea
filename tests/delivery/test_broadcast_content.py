"""A broadcast's content is stored once and its photo uploaded once per bot (issue 12 §3).

Queueing stores what residents read as ``broadcast.message``; the outbox rows carry an empty
payload and the broadcast's id. The real sender reads the message once per broadcast and the
Telegram transport uploads the photo for the first recipient only, then sends its ``file_id``
(the fake Bot API refuses a file id it never gave out). Rows queued before migration 0012
carry their message and are still sent; a downgrade gives pending rows their message back.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import event, inspect, text
from sqlmodel import select

from bot.app import App
from bot.broadcasting import message_for
from bot.channels.zalo import ZaloBotClient, ZaloBotTransport
from bot.core.i18n import Catalog
from bot.core.messages import Capabilities, Option
from bot.delivery.transport import OutboundMessage, Pacing, Recipient, Result
from bot.media import MediaStore
from storage.broadcasts import create_broadcast, queue_broadcast
from storage.db import create_engine, session_factory
from storage.migrate import alembic_config, upgrade
from storage.models import Broadcast, Outbox, OutboxStatus
from storage.outbox import delivery_report, enqueue, outbox_row
from tests.conftest import START
from tests.delivery.helpers import FIRST_USER, drain, seed_residents, telegram_sender
from tests.fakes.telegram_api import FakeTelegram, UploadedFile
from tests.fakes.zalo_bot_api import FakeZaloBot
from tests.support import ManualClock, RunningClock

RESIDENTS = 24


@pytest.fixture
def clock() -> RunningClock:
    return RunningClock(START)


async def _queue(app: App, now: datetime, *, image: Path | None = None) -> int:
    """A broadcast to every resident, inviting to learn (so it carries a button), queued now."""
    async with app.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="test", text="Mời bà con dự Ngày hội học tập số",
                                           audience={"kind": "all", "learn": True}, scheduled_at=now, now=now,
                                           image=str(image) if image else None)
        assert broadcast.id is not None
        assert await queue_broadcast(session, broadcast_id=broadcast.id, now=now,
                                     message=message_for(app.catalog)) == RESIDENTS
    return broadcast.id


async def test_a_broadcast_is_stored_once_and_the_sender_reads_it_once(app: App, clock: RunningClock) -> None:
    now = clock.now()
    await seed_residents(app.sessions, RESIDENTS, now=now)
    broadcast_id = await _queue(app, now)
    async with app.sessions() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
    assert broadcast is not None and broadcast.message == {
        "text": "📢 Chương trình Học vụ số:\nMời bà con dự Ngày hội học tập số", "options": [["📖 Học tiếp", "next"]]}
    queued = await _rows(app)
    assert len(queued) == RESIDENTS and {(r.broadcast_id, str(r.payload)) for r in queued} == {(broadcast_id, "{}")}

    reads: list[str] = []  # statements that read a broadcast's message

    @event.listens_for(app.engine.sync_engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "broadcast.message" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    async with FakeTelegram() as tg:
        for i in range(RESIDENTS):
            tg.add_user(FIRST_USER + i)
        await drain(telegram_sender(app.sessions, tg, clock=clock, concurrency=8), app.sessions)
        chats = [tg.chat(FIRST_USER + i) for i in range(RESIDENTS)]
    assert len(reads) == 1  # once, for every row, outside the claims
    for chat in chats:  # everyone got the message, button included
        [message] = chat
        assert message.text == "📢 Chương trình Học vụ số:\nMời bà con dự Ngày hội học tập số"
        assert message.buttons == [[("📖 Học tiếp", "next")]]
    assert {r.status for r in await _rows(app)} == {OutboxStatus.SENT}


async def test_a_broadcast_photo_is_uploaded_once_per_bot(app: App, clock: RunningClock, tmp_path: Path) -> None:
    photo = tmp_path / "ngay-hoi.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a photo of the digital skills day")
    now = clock.now()
    await seed_residents(app.sessions, RESIDENTS, now=now)
    await _queue(app, now, image=photo)
    async with FakeTelegram() as tg:
        for i in range(RESIDENTS):
            tg.add_user(FIRST_USER + i)
        # Eight sends at once: the first photo's upload and the next seven start together.
        await drain(telegram_sender(app.sessions, tg, clock=clock, concurrency=8), app.sessions)
        photos = tg.calls_to("sendPhoto")
        chats = [tg.chat(FIRST_USER + i) for i in range(RESIDENTS)]

    # The first send uploaded the file; every other one passed the file_id Telegram gave it.
    uploads = [c for c in photos if isinstance(c.params["photo"], UploadedFile)]
    assert len(uploads) == 1 and uploads[0].params["photo"].filename == "ngay-hoi.jpg"
    assert Counter(c.status for c in photos) == {200: RESIDENTS}
    first = next(m for chat in chats for m in chat if isinstance(m.upload, UploadedFile))
    assert {c.params["photo"] for c in photos if c not in uploads} == {first.media[-1]["file_id"]}
    # Every resident got the photo, then the text with its button (the button makes them two).
    for chat in chats:
        assert [m.kind for m in chat] == ["photo", "text"]
        assert chat[1].text == "📢 Chương trình Học vụ số:\nMời bà con dự Ngày hội học tập số"
        assert chat[1].buttons == [[("📖 Học tiếp", "next")]]
    assert {r.status for r in await _rows(app)} == {OutboxStatus.SENT}


async def test_a_changed_photo_file_is_uploaded_again(app: App, clock: RunningClock, tmp_path: Path) -> None:
    """The transport knows a file by its path, size and modification time: the same path with
    other bytes is another photo."""
    photo = tmp_path / "anh.jpg"
    photo.write_bytes(b"\xff\xd8 first")
    now = clock.now()
    identities = await seed_residents(app.sessions, 2, now=now)
    async with FakeTelegram() as tg:
        tg.add_user(FIRST_USER)
        tg.add_user(FIRST_USER + 1)
        sender = telegram_sender(app.sessions, tg, clock=clock)  # one bot, one transport, throughout
        await _queue_photo(app, identities[0], photo, "a", now)
        running = asyncio.create_task(sender.run())
        await tg.wait_for(lambda t: t.sent_count(FIRST_USER) == 1)
        photo.write_bytes(b"\xff\xd8 the second, longer photo")
        await _queue_photo(app, identities[1], photo, "b", now)
        sender.wake()
        await tg.wait_for(lambda t: t.sent_count(FIRST_USER + 1) == 1)
        sender.stop()
        await running
        await sender.transport.bot.session.close()  # type: ignore[attr-defined]
        uploads = [c.params["photo"].size for c in tg.calls_to("sendPhoto")
                   if isinstance(c.params["photo"], UploadedFile)]
    assert uploads == [len(b"\xff\xd8 first"), len(b"\xff\xd8 the second, longer photo")]


async def _queue_photo(app: App, identity: int, photo: Path, key: str, now: datetime) -> None:
    async with app.sessions() as session, session.begin():
        await enqueue(session, [outbox_row(kind="broadcast", identity_id=identity, channel="telegram", due_at=now,
                                           payload={"text": "Ảnh", "image": str(photo)}, dedupe_key=key, now=now)])


async def _rows(app: App) -> list[Outbox]:
    async with app.sessions() as session:
        return list((await session.exec(select(Outbox).order_by(Outbox.id))).all())  # type: ignore[arg-type]


async def test_rows_queued_before_0012_are_still_sent_and_a_downgrade_gives_the_message_back(
    any_db_url: str, clock: RunningClock
) -> None:
    await asyncio.to_thread(upgrade, any_db_url, "0009")
    engine = create_engine(any_db_url)
    sessions = session_factory(engine)
    at = "2026-11-23 03:00:00+00:00"
    old = '{"text": "📢 UBND phường Thử:\\nHọp tổ tối nay", "options": [["📖 Học tiếp", "next"]]}'
    try:
        async with engine.begin() as connection:
            run = connection.execute
            await run(text("INSERT INTO ward (id, code, name) VALUES (1, 'w', 'Phường Thử')"))
            await run(text("INSERT INTO resident_group (id, code, ward_id, name, kind, target_percent) "
                           "VALUES (7, 'to1', 1, 'Tổ 1', 'to-dan-pho', 80)"))
            for n in (1, 2):
                await run(text("INSERT INTO person (id, group_id, display_name, locale, reminder_hour, reminders_on, "
                               f"reminders_unanswered, consent_at, created_at) VALUES ({n}, 7, 'Cư dân {n}', 'vi', 19, "
                               f"true, 0, '{at}', '{at}')"))
                await run(text("INSERT INTO identity (id, person_id, channel, external_id, created_at, last_seen_at) "
                               f"VALUES ({n}, {n}, 'telegram', '{FIRST_USER + n}', '{at}', '{at}')"))
            await run(text("INSERT INTO broadcast (id, author, text, audience, scheduled_at, status, recipients, "
                           f"created_at, queued_at) VALUES (100, 'cli', 'Họp tổ tối nay', '{{\"kind\": \"all\"}}', '{at}', "
                           f"'queued', 2, '{at}', '{at}')"))
            for n, status in ((1, "sent"), (2, "pending")):
                await run(text("INSERT INTO outbox (kind, identity_id, channel, payload, due_at, status, attempts, "
                               f"claim, dedupe_key, broadcast_id, group_id, created_at) VALUES ('broadcast', {n}, "
                               f"'telegram', '{old}', '{at}', '{status}', 0, 0, 'broadcast:100:{n}', 100, 7, '{at}')"))
        await asyncio.to_thread(upgrade, any_db_url)
        async with sessions() as session:
            assert (await session.get(Broadcast, 100)).message is None  # type: ignore[union-attr]
        async with FakeTelegram() as tg:
            tg.add_user(FIRST_USER + 2)
            await drain(telegram_sender(sessions, tg, clock=clock), sessions)
            [message] = tg.chat(FIRST_USER + 2)
        assert message.text == "📢 UBND phường Thử:\nHọp tổ tối nay" and message.buttons == [[("📖 Học tiếp", "next")]]
        async with sessions() as session:
            report = await delivery_report(session, broadcast_id=100)
        assert report.totals == {"sent": 2, "blocked": 0, "failed": 0, "pending": 0}

        # A broadcast queued after 0012, still pending when the database goes back to 0009.
        async with sessions() as session, session.begin():
            new = await create_broadcast(session, author="cli", text="Ngày hội số", audience={"kind": "all"},
                                         scheduled_at=clock.now(), now=clock.now())
            assert new.id is not None
            await queue_broadcast(session, broadcast_id=new.id, now=clock.now(), message=message_for(Catalog.load()))
        await asyncio.to_thread(command.downgrade, alembic_config(any_db_url), "0009")
        async with engine.connect() as connection:
            rows = (await connection.execute(text(
                "SELECT status, payload FROM outbox WHERE broadcast_id = :b ORDER BY id"), {"b": new.id})).all()
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert [status for status, _ in rows] == ["pending", "pending"]
        assert [json.loads(p) if isinstance(p, str) else p for _, p in rows] == [
        {"text": "📢 UBND phường Thử:\nNgày hội số"}] * 2  # the one ward sends it
        assert "broadcast_outcome" not in tables
    finally:
        await engine.dispose()


async def test_zalo_gets_a_local_photo_by_one_url_published_once_and_again_before_it_expires(
    app: App, tmp_path: Path
) -> None:
    """Zalo takes images by URL: the photo is published on the bot's endpoint once per
    transport (not read and hashed for every recipient), and again once half of its serving
    time has passed, so the URL sent is always still served."""
    photo = tmp_path / "ngay-hoi.jpg"
    photo.write_bytes(b"\xff\xd8 poster")
    clock = ManualClock(START)
    media = MediaStore(tmp_path / "media", clock=clock, public_base_url="https://hocvuso.example")
    message = OutboundMessage("📢 UBND phường Mẫu:\nNgày hội", image=str(photo))
    async with FakeZaloBot() as zalo:
        client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
        transport = ZaloBotTransport(client=client, catalog=app.catalog, pacing=Pacing(50), media=media)
        published: list[float] = []
        for user in ("u1", "u2", "u3"):
            assert (await transport.deliver(Recipient(user), message)).result == Result.SENT
            [served] = (tmp_path / "media").glob("*.jpg")
            published.append(served.stat().st_mtime)
            clock.advance(hours=48)  # the third comes 4 days after the first: past half of bot.media's 7
        await client.close()
        urls = {s.photo for s in zalo.sent}
    start = START.timestamp()
    assert published == [start, start, start + 96 * 3600]  # published by the first send, again by the third
    assert len(urls) == 1 and next(iter(urls)).startswith("https://hocvuso.example/media/")
    assert [s.text for s in zalo.sent] == [message.text] * 3  # the caption, one message each


def test_the_sender_paces_every_api_call_of_a_message() -> None:
    """``OutboundMessage.calls``: how many times the sender asks its rate limiter for a row."""
    telegram = Capabilities(buttons=True, edit=True, text_limit=4096)
    zalo = Capabilities(buttons=False, edit=False, text_limit=2000, documents=False)
    button = (Option("📖 Học tiếp", "next"),)
    assert OutboundMessage("Tin").calls(telegram) == 1
    assert OutboundMessage("Tin", image="/p.jpg").calls(telegram) == 1  # the text is the photo's caption
    assert OutboundMessage("Tin", options=button, image="/p.jpg").calls(telegram) == 2  # photo, then text + button
    assert OutboundMessage("x" * 3000, image="/p.jpg").calls(telegram) == 2  # too long for a caption
    assert OutboundMessage("x " * 1500).calls(zalo) == 2  # 3,000 characters: two Zalo messages
    assert OutboundMessage("Báo cáo", documents=("/a.xlsx", "/b.docx")).calls(telegram) == 3
    assert OutboundMessage("Báo cáo", documents=("/a.xlsx",)).calls(zalo) == 1  # Zalo sends the text only
