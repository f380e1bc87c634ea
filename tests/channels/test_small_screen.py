"""Messages that read well on a small screen (issue 10 §5), over the real adapters and
outbox transports against the fake servers (tests/fakes):

- a message split for a channel's limit carries "(1/3)", "(2/3)"… on its own last line, and no
  piece — marker included — passes the limit: Telegram and Zalo (Bot Platform and OA), answers
  and outbox messages alike, all through ``bot.core.text.split_text``;
- a broadcast starts with who sends it ("📢 UBND phường Mẫu:"), from the chat's composer, the
  scheduler and the command line; one that invites to learn carries "📖 Học tiếp", which works
  pressed (Telegram), by its number or typed as words (Zalo), and the composer's preview shows
  it the way residents get it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import text as sql
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import App
from bot.broadcasting import schedule, sender_line
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram.transport import TelegramTransport
from bot.channels.zalo import ZaloBotClient, ZaloBotTransport, ZaloOATransport
from bot.cli import Deps, cli
from bot.core.messages import Menu, Option, Text
from bot.core.text import split_text
from bot.delivery.sender import Sender
from bot.delivery.transport import OutboundMessage, Pacing, Recipient, Result
from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, tick
from storage.groups import upsert_ward
from storage.models import Broadcast, Identity, Outbox, OutboxStatus
from tests.channels.test_zalo_oa import make_client, oa_webhook
from tests.contract.drivers import ZaloDriver, numbered_options, zalo_server
from tests.contract.journeys import join_group
from tests.delivery.helpers import NO_QUIET, ZONE
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_bot_api import FakeZaloBot
from tests.fakes.zalo_oa_api import FakeZaloOA
from tests.staff import make_admin, rows
from tests.support import NUMBERED, Chat, ManualClock, join

MARK = re.compile(r"\n\((\d+)/(\d+)\)$")
# About 8,700 characters in 30 paragraphs: 3 Telegram messages, 5 Zalo ones.
LONG = "\n\n".join(f"Đoạn {n}: " + " ".join(["chữ"] * 70) for n in range(30))
HEADER = "📢 UBND phường Mẫu:"


def _marked(pieces: list[str], limit: int) -> list[str]:
    """The pieces' bodies, once every piece is checked to fit and to end with its place."""
    count = len(pieces)
    assert count > 1
    bodies = []
    for number, piece in enumerate(pieces, 1):
        assert len(piece) <= limit, (number, len(piece))
        mark = MARK.search(piece)
        assert mark is not None and (int(mark[1]), int(mark[2])) == (number, count), piece[-20:]
        bodies.append(piece[: mark.start()])
    return bodies


def _words(text: str) -> list[str]:
    return text.split()


# -- split_text --------------------------------------------------------------------------

def test_a_text_that_fits_is_one_piece_without_a_mark() -> None:
    assert split_text("Chào bạn", 2000) == ["Chào bạn"]
    assert split_text("x" * 2000, 2000) == ["x" * 2000]
    assert split_text("x" * 1999 + "   ", 2000) == ["x" * 1999]  # only spaces made it longer


@pytest.mark.parametrize("limit", [2000, 4096, 300, 60])
def test_every_piece_carries_its_place_within_the_limit_and_nothing_is_lost(limit: int) -> None:
    pieces = split_text(LONG, limit)
    bodies = _marked(pieces, limit)
    assert _words("\n".join(bodies)) == _words(LONG)
    if limit == 60:
        # Three digits, still within the limit.
        assert len(pieces) > 100 and pieces[0].endswith("\n(1/" + str(len(pieces)) + ")")


def test_paragraphs_stay_whole_where_they_fit() -> None:
    bodies = _marked(split_text(LONG, 2000), 2000)
    assert all(body.startswith("Đoạn ") for body in bodies)  # each piece starts a paragraph
    assert "\n\n".join(bodies) == LONG


def test_a_word_longer_than_a_piece_is_cut() -> None:
    bodies = _marked(split_text("a" * 50, 20), 20)
    assert "".join(bodies) == "a" * 50


# -- Telegram ----------------------------------------------------------------------------

@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


async def test_telegram_answers_and_outbox_messages_are_marked_and_fit(ward: App, tg: FakeTelegram) -> None:
    user = 5001
    tg.add_user(user)
    channel = TelegramChannel(token=tg.token, api_url=tg.url, conversation=ward.conversation,
                              catalog=ward.catalog)
    await channel.render(user, [Menu(LONG, (Option("📖 Học tiếp", "next"),))], pressed=None)
    await channel.close()
    answers = tg.chat(user)
    assert len(answers) == 3
    assert _words("\n".join(_marked([m.text for m in answers], 4096))) == _words(LONG)
    assert [bool(m.buttons) for m in answers] == [False, False, True]  # the button under the last piece

    bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.url)))
    transport = TelegramTransport(bot, pacing=Pacing(50))
    message = OutboundMessage(LONG, options=(Option("📖 Học tiếp", "next"),))
    assert (await transport.deliver(Recipient(str(user)), message)).result == Result.SENT
    await bot.session.close()
    sent = tg.chat(user)[3:]
    assert len(sent) == 3 and _words("\n".join(_marked([m.text for m in sent], 4096))) == _words(LONG)
    assert sent[-1].buttons == [[("📖 Học tiếp", "next")]]


# -- Zalo --------------------------------------------------------------------------------

async def test_zalo_bot_answers_and_outbox_messages_are_marked_and_fit(ward: App) -> None:
    async with FakeZaloBot() as zalo:
        user = "ab" * 10
        client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
        from bot.channels.zalo import ZaloBotChannel

        channel = ZaloBotChannel(client=client, conversation=ward.conversation, catalog=ward.catalog)
        await channel.render(user, [Menu(LONG, (Option("📖 Học tiếp", "next"),))])
        answers = [m.text for m in zalo.chat(user)]
        assert len(answers) == 5
        bodies = _marked(answers, 2000)
        assert bodies[-1].endswith("1. 📖 Học tiếp\n\n(Gõ 1 rồi gửi.)")  # the menu stays whole, last

        transport = ZaloBotTransport(client=client, catalog=ward.catalog, pacing=Pacing(50))
        assert (await transport.deliver(Recipient(user), OutboundMessage(LONG))).result == Result.SENT
        sent = [m.text for m in zalo.chat(user)][5:]
        assert _words("\n".join(_marked(sent, 2000))) == _words(LONG)
        await channel.close()


@pytest.fixture
async def oa() -> AsyncIterator[FakeZaloOA]:
    async with FakeZaloOA() as server:
        yield server


async def test_zalo_oa_answers_and_outbox_messages_are_marked_and_fit(
    ward: App, oa: FakeZaloOA, clock: ManualClock
) -> None:
    user = "2468458835296197922"
    async with oa_webhook(ward, oa, clock) as hook:
        await hook.channel.render(user, [Text(LONG)])
    answers = oa.texts(user)
    assert len(answers) == 5 and _words("\n".join(_marked(answers, 2000))) == _words(LONG)
    client = make_client(ward, oa, clock)
    transport = ZaloOATransport(client=client, catalog=ward.catalog, pacing=Pacing(50), clock=clock)
    delivery = await transport.deliver(Recipient(user, last_seen_at=clock.now()), OutboundMessage(LONG))
    assert delivery.result == Result.SENT
    assert _words("\n".join(_marked(oa.texts(user)[5:], 2000))) == _words(LONG)
    await client.close()


# -- who sends a broadcast -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "line"), [
    ("Phường Mẫu", "📢 UBND phường Mẫu:"),
    ("PHƯỜNG Bến Thạch", "📢 UBND phường Bến Thạch:"),
    ("Xã  Khác", "📢 UBND xã Khác:"),
    ("Đặc khu Phú Quốc", "📢 UBND đặc khu Phú Quốc:"),
    ("Thị trấn Đông Anh", "📢 UBND thị trấn Đông Anh:"),
    ("Phường", "📢 UBND Phường:"),  # a name that is only the kind stays as it is
    ("Bến Thạch", "📢 UBND Bến Thạch:"),
    (None, "📢 Chương trình Học vụ số:"),
])
def test_the_sender_line_names_the_ward(ward: App, name: str | None, line: str) -> None:
    assert sender_line(ward.catalog.translator(None), name) == line


async def _producers(app: App, clock: ManualClock) -> Producers:
    return Producers(sessions=app.sessions, clock=clock, lessons=app.lessons, catalog=app.catalog,
                     policy=ReminderPolicy(zone=ZONE))


async def test_a_scheduled_broadcast_is_queued_by_the_tick_with_its_sender_and_button(
    ward: App, clock: ManualClock
) -> None:
    lan = Chat(ward.conversation, user="77", name="Lan")
    await join(lan)
    async with ward.sessions() as session, session.begin():
        await schedule(session, author="cli", text="Tối nay học bài 2 nhé.", audience_text="all",
                       lesson_ids={l.id for l in ward.lessons}, now=clock.now(), quiet=NO_QUIET,
                       at=clock.now() + timedelta(hours=1), ward="DEMO", learn=True, catalog=ward.catalog)
    assert await rows(ward, Outbox) == []
    clock.advance(hours=1)
    assert (await tick(await _producers(ward, clock)))["broadcast_rows"] == 1
    [row] = await rows(ward, Outbox)
    [broadcast] = await rows(ward, Broadcast)
    assert (row.broadcast_id, row.payload) == (broadcast.id, {})  # the message is stored once, with the broadcast
    assert broadcast.message == {"text": f"{HEADER}\nTối nay học bài 2 nhé.", "options": [["📖 Học tiếp", "next"]]}


async def _stamp_schema(app: App) -> None:
    """The tests build tables with create_all; tell Alembic they are current."""
    from storage.migrate import head_revision

    async with app.engine.begin() as conn:
        await conn.execute(sql("CREATE TABLE IF NOT EXISTS alembic_version "
                               "(version_num VARCHAR(32) PRIMARY KEY)"))
        await conn.execute(sql("DELETE FROM alembic_version"))
        await conn.execute(sql("INSERT INTO alembic_version VALUES (:v)"), {"v": head_revision()})


async def _cli(app: App, *args: str):  # type: ignore[no-untyped-def]
    env = {"DATABASE_URL": app.settings.database_url, "QUIET_HOURS": "21:00-07:00"}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, obj=Deps(clock=app.clock))


async def test_command_line_broadcasts_say_who_sends_them(ward: App) -> None:
    lan = Chat(ward.conversation, user="77", name="Lan")
    await join(lan)
    await _stamp_schema(ward)
    # One ward in the database: it is the sender.
    done = await _cli(ward, "broadcast", "send", "--text", "Mời bà con học bài 1.", "--to", "all", "--learn")
    assert done.exit_code == 0, done.output
    assert f"Người dân sẽ nhận:\n{HEADER}\nMời bà con học bài 1.\n[📖 Học tiếp]" in done.output
    [broadcast] = await rows(ward, Broadcast)
    assert broadcast.message == {"text": f"{HEADER}\nMời bà con học bài 1.", "options": [["📖 Học tiếp", "next"]]}

    # Several wards: the programme sends to all of them, a ward only with --ward (and to its own).
    async with ward.sessions() as session, session.begin():
        await upsert_ward(session, code="KHAC", name="Xã Khác")
    everyone = await _cli(ward, "broadcast", "send", "--text", "Ngày hội số.", "--to", "all")
    assert everyone.exit_code == 0 and "📢 Chương trình Học vụ số:\nNgày hội số." in everyone.output
    assert "[📖" not in everyone.output  # no --learn: no button
    mine = await _cli(ward, "broadcast", "send", "--text", "Họp tổ.", "--to", "all", "--ward", "DEMO")
    assert mine.exit_code == 0 and f"{HEADER}\nHọp tổ." in mine.output
    wrong = await _cli(ward, "broadcast", "send", "--text", "Họp tổ.", "--to", "all", "--ward", "NOWHERE")
    assert wrong.exit_code != 0 and "không có phường NOWHERE" in wrong.output
    texts = [b.message["text"] for b in await rows(ward, Broadcast)]
    assert texts == [f"{HEADER}\nMời bà con học bài 1.", "📢 Chương trình Học vụ số:\nNgày hội số.",
                     f"{HEADER}\nHọp tổ."]
    [*_, last] = await rows(ward, Broadcast)
    assert last.audience == {"kind": "all", "ward": "DEMO"}


# -- the "📖 Học tiếp" button ---------------------------------------------------------------

async def test_on_a_numbered_channel_the_preview_shows_the_button_as_words_to_type(ward: App) -> None:
    admin = Chat(ward.conversation, user="9001", name="Cán bộ Hà", capabilities=NUMBERED)
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send("Mời bà con học bài 1.")
    await admin.send("có")  # the yes of "Thêm nút «📖 Học tiếp»?", typed
    await admin.send("1")  # everyone
    preview = [r.text for r in admin.history[-3:]]
    # Words to type, not a number that would collide with the composer's menu below it.
    assert preview[1] == f"{HEADER}\nMời bà con học bài 1.\n\n(Gõ «Học tiếp» rồi gửi.)"
    assert "sẽ gửi tới 1 người" in preview[2]


async def _deliver_on_zalo(app: App, zalo: FakeZaloBot, clock: ManualClock) -> None:
    """The real sender and Zalo Bot transport until every Zalo row is sent."""
    client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
    transport = ZaloBotTransport(client=client, catalog=app.catalog, pacing=Pacing(50, per_chat_interval=0))
    sender = Sender(sessions=app.sessions, transport=transport, clock=clock, quiet=NO_QUIET,
                    idle_seconds=0.05)
    task = asyncio.create_task(sender.run())
    try:
        async def sent() -> None:
            while True:
                async with app.sessions() as session:
                    query = select(Outbox.status).where(Outbox.channel == "zalo")
                    statuses = (await session.exec(query)).all()
                if statuses and all(s == OutboxStatus.SENT for s in statuses):
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(sent(), 10)
    finally:
        sender.stop()
        await task
        await client.close()


async def _broadcast(app: App, clock: ManualClock, text: str) -> None:
    async with app.sessions() as session, session.begin():
        done = await schedule(session, author="cli", text=text, audience_text="all",
                              lesson_ids={l.id for l in app.lessons}, now=clock.now(), quiet=NO_QUIET,
                              ward="DEMO", learn=True, catalog=app.catalog)
    assert done.recipients == 1


async def test_on_zalo_the_button_is_picked_by_its_number_or_by_typing_hoc_tiep(
    ward: App, clock: ManualClock
) -> None:
    lesson = ward.lessons.first
    async with zalo_server(ward) as (zalo, bot):
        lan = ZaloDriver(zalo, bot, "cd" * 10, "Lan Nguyễn")
        await join_group(lan)
        clock.advance(minutes=11)  # resting at the menu: the button comes numbered
        await _broadcast(ward, clock, "Tuần này mời bà con học bài 1.")
        await _deliver_on_zalo(ward, zalo, clock)
        received = lan.last_text()
        assert received.startswith(f"{HEADER}\nTuần này mời bà con học bài 1.")
        assert numbered_options(received) == ["📖 Học tiếp"]
        await lan.send("1")
        assert lesson.cards[0].text in lan.last_text()

        # In the middle of the lesson the next one comes as words to type; typed, they work.
        await lan.choose("Tiếp")
        await _broadcast(ward, clock, "Nhắc lại: học bài 1 nhé.")
        await _deliver_on_zalo(ward, zalo, clock)
        received = lan.last_text()
        assert received == f"{HEADER}\nNhắc lại: học bài 1 nhé.\n\n(Gõ «Học tiếp» rồi gửi.)"
        await lan.send("hoc tiep")
        assert lan.last_text() != received and any(card.text in lan.last_text() for card in lesson.cards)
    async with ward.sessions() as session:
        [identity] = (await session.exec(select(Identity))).all()
    assert identity.channel == "zalo"
