"""The real outbox sender against the fake Bot API: 429 storms, 5xx, blocked users. The sender
runs on a RunningClock from START, so that rows put back for a later retry come due."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from bot.app import App
from storage.models import ConversationState, Identity, Outbox, OutboxStatus
from tests.conftest import START
from tests.delivery.helpers import FIRST_USER, drain, queue_messages, seed_residents, telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.support import RunningClock


@pytest.fixture
def clock() -> RunningClock:
    return RunningClock(START)


async def _rows(sessions) -> list[Outbox]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return list((await session.exec(select(Outbox))).all())


async def test_storm_of_429_502_and_blocked_users_every_reachable_recipient_gets_exactly_one(
    app: App, clock: RunningClock
) -> None:
    count = 300
    identities = await seed_residents(app.sessions, count, now=clock.now())
    await queue_messages(app.sessions, identities, now=clock.now())
    async with FakeTelegram() as tg:
        for i in range(count):
            tg.add_user(FIRST_USER + i)
        blocked = {FIRST_USER + i for i in range(0, count, 50)}  # 2 %
        tg.blocked_users |= blocked
        tg.rate_limit(30, retry_after=1)  # the fake answers 429 above 30 messages/s
        tg.error_ratio(0.10, status=502, seed=7)  # and 502 to a tenth of the sends
        sender = telegram_sender(app.sessions, tg, clock=clock, per_second=200)  # faster than allowed, on purpose
        await drain(sender, app.sessions)
        statuses = Counter(c.status for c in tg.calls_to("sendMessage"))
        per_chat = {FIRST_USER + i: tg.sent_count(FIRST_USER + i) for i in range(count)}

    assert statuses[429] > 0 and statuses[502] > 0 and statuses[403] == len(blocked)  # the storm happened
    assert {chat: n for chat, n in per_chat.items() if chat not in blocked and n != 1} == {}
    assert all(per_chat[chat] == 0 for chat in blocked)
    rows = await _rows(app.sessions)
    by_status = Counter(r.status for r in rows)
    assert by_status == {OutboxStatus.SENT: count - len(blocked), OutboxStatus.BLOCKED: len(blocked)}
    # A 429 never counts as an attempt; a 502 does.
    assert sum(r.attempts for r in rows) == statuses[502]
    async with app.sessions() as session:
        flagged = {int(i.external_id) for i in (await session.exec(select(Identity))).all() if i.blocked_at}
    assert flagged == blocked
    print(f"\nsends: {dict(statuses)}; delivered {count - len(blocked)}/{count}, blocked {len(blocked)}")


async def test_permanent_and_exhausted_failures_keep_their_reason(app: App, clock: RunningClock) -> None:
    identities = await seed_residents(app.sessions, 3, now=clock.now())
    await queue_messages(app.sessions, identities, now=clock.now())
    async with FakeTelegram() as tg:
        tg.add_user(FIRST_USER)  # the second and third never wrote to the bot: "chat not found"
        tg.add_user(FIRST_USER + 2)
        tg.on_request = lambda method, params: (  # the first resident's sends always fail with 502
            {"error_code": 502, "description": "Bad Gateway"} if params.get("chat_id") == FIRST_USER else None
        )
        sender = telegram_sender(app.sessions, tg, clock=clock, max_attempts=3)
        await drain(sender, app.sessions)
    rows = {r.identity_id: r for r in await _rows(app.sessions)}
    first, second, third = (rows[i] for i in identities)
    assert first.status == OutboxStatus.FAILED and first.attempts == 2 and "hết lượt thử" in (first.last_error or "")
    assert second.status == OutboxStatus.FAILED and "chat not found" in (second.last_error or "")
    assert third.status == OutboxStatus.SENT


async def test_a_message_with_options_arrives_with_buttons_and_joins_the_menu_as_extra(
    app: App, clock: RunningClock
) -> None:
    [identity] = await seed_residents(app.sessions, 1, now=clock.now())
    async with app.sessions() as session, session.begin():
        session.add(ConversationState(identity_id=identity, step="menu", data={}, updated_at=clock.now()))
    await queue_messages(app.sessions, [identity], now=clock.now(), text="Nhắc học",
                         options=[["📖 Học tiếp", "next"]])
    async with FakeTelegram() as tg:
        tg.add_user(FIRST_USER)
        await drain(telegram_sender(app.sessions, tg, clock=clock), app.sessions)
        assert tg.buttons(FIRST_USER) == [("📖 Học tiếp", "next")]
    async with app.sessions() as session:
        state = (await session.exec(select(ConversationState))).one()
    assert state.menu == {"extra": [["📖 Học tiếp", "next", []]]}  # buttons: a press is the choice


async def test_a_broadcast_image_goes_as_a_photo_with_its_caption(app: App, clock: RunningClock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import struct
    import zlib

    def png() -> bytes:  # a valid 1×1 PNG, written by hand to need no imaging library here
        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))

    image = tmp_path / "ngay-hoi.png"
    image.write_bytes(png())
    now = clock.now()
    [identity] = await seed_residents(app.sessions, 1, now=now)
    from storage.outbox import enqueue, outbox_row

    async with app.sessions() as session, session.begin():
        await enqueue(session, [outbox_row(kind="broadcast", identity_id=identity, channel="telegram",
                                           payload={"text": "Mời bà con dự Ngày hội", "image": str(image)},
                                           due_at=now, dedupe_key="img", now=now)])
    async with FakeTelegram() as tg:
        tg.add_user(FIRST_USER)
        await drain(telegram_sender(app.sessions, tg, clock=clock), app.sessions)
        [message] = tg.chat(FIRST_USER)
    assert message.kind == "photo" and message.text == "Mời bà con dự Ngày hội"
    assert message.upload is not None and message.upload.filename == "ngay-hoi.png"


async def test_outcomes_are_stored_together_and_one_that_fails_takes_no_other_with_it(
    app: App, clock: RunningClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Outcomes are written by group commit; when a hook fails for one row (an error that will
    not pass: with its group, then on its own), the others of its group are stored on their
    own, and that row, still "sending", is claimed again when its lease runs out and sent again:
    a row in doubt, as after a crash."""
    count = 12
    identities = await seed_residents(app.sessions, count, now=clock.now())
    await queue_messages(app.sessions, identities, now=clock.now(), kind="hooked")
    unlucky, failed = identities[5], []

    async def hook(session, row, now):  # type: ignore[no-untyped-def]
        if row.identity_id == unlucky and len(failed) < 2:
            failed.append(row.id)
            raise ValueError("the hook failed")

    async with FakeTelegram() as tg:
        for i in range(count):
            tg.add_user(FIRST_USER + i)
        tg.latency(0.05, 0.05)  # every answer after 50 ms: the sends end together
        sender = telegram_sender(app.sessions, tg, clock=clock, concurrency=count, lease_seconds=1,
                                 after_sent={"hooked": hook})
        await drain(sender, app.sessions)
        per_chat = [tg.sent_count(FIRST_USER + i) for i in range(count)]
    assert len(failed) == 2 and {r.status for r in await _rows(app.sessions)} == {OutboxStatus.SENT}
    assert per_chat == [2 if i == 5 else 1 for i in range(count)]  # only the unlucky row twice
    assert "the hook failed" in caplog.text
