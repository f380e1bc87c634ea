"""The Zalo Official Account adapter, token rotation and outbox transport against the fake
OA API (tests/fakes/zalo_oa_api.py) over HTTP on 127.0.0.1, with the real engine and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, select

from bot.app import App
from bot.channels.zalo import ZaloOAChannel, ZaloOAClient, ZaloOATransport
from bot.channels.zalo.oa_client import OATokens
from bot.core.messages import Text
from bot.delivery.transport import OutboundMessage, Pacing, Recipient, Result
from bot.web import start_web, create_web_app
from storage.channel_tokens import read_token
from storage.db import create_engine, session_factory
from storage.models import ChannelToken, Identity
from tests.contract.drivers import numbered_options
from tests.fakes.zalo_oa_api import FakeZaloOA
from tests.support import ManualClock

USER = "2468458835296197922"


@pytest.fixture
async def oa() -> AsyncIterator[FakeZaloOA]:
    async with FakeZaloOA() as server:
        yield server


def make_tokens(app: App, oa: FakeZaloOA, clock: ManualClock, *, sessions=None, seed: str | None = "refresh-0") -> OATokens:  # type: ignore[no-untyped-def]
    return OATokens(sessions=sessions or app.sessions, http=httpx.AsyncClient(timeout=10), oauth_url=oa.url,
                    oa_id=oa.oa_id, app_id=oa.app_id, app_secret=oa.app_secret, seed_refresh_token=seed, clock=clock)


def make_client(app: App, oa: FakeZaloOA, clock: ManualClock, **kwargs: object) -> ZaloOAClient:
    tokens = make_tokens(app, oa, clock, **kwargs)  # type: ignore[arg-type]
    return ZaloOAClient(api_url=oa.url, tokens=tokens, http=tokens._http)


@dataclass
class Hook:
    oa: FakeZaloOA
    channel: ZaloOAChannel
    url: str

    async def post(self, event: dict, **kwargs: object) -> int:
        status = await self.oa.post_event(self.url, event, **kwargs)  # type: ignore[arg-type]
        await self.channel.tasks.drain()
        return status

    async def say(self, text_: str, user: str = USER) -> str:
        assert await self.post(self.oa.text_event(user, text_)) == 200
        return self.oa.texts(user)[-1]

    async def press(self, label: str, user: str = USER) -> str:
        [button] = [b for b in self.oa.buttons(user) if label in b["title"]]
        return await self.say(button["payload"], user)


@asynccontextmanager
async def oa_webhook(app: App, oa: FakeZaloOA, clock: ManualClock) -> AsyncIterator[Hook]:
    channel = ZaloOAChannel(client=make_client(app, oa, clock), conversation=app.conversation, catalog=app.catalog,
                            sessions=app.sessions, oa_id=oa.oa_id, app_id=oa.app_id, secret_key=oa.secret_key,
                            clock=clock)
    runner = await start_web(create_web_app(channels=[channel]), host="127.0.0.1", port=0)
    try:
        yield Hook(oa, channel, f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/zalo-oa")
    finally:
        await runner.cleanup()
        await channel.close()


async def identities(app: App) -> list[Identity]:
    async with app.sessions() as session:
        return list((await session.exec(select(Identity))).all())


async def token_row(app: App, oa: FakeZaloOA) -> ChannelToken | None:
    async with app.sessions() as session:
        return await read_token(session, name=f"zalo_oa:{oa.oa_id}")


async def test_a_resident_presses_query_buttons_or_types_numbers(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    async with oa_webhook(ward, oa, clock) as hook:
        welcome = await hook.say("/start g_DEMO-TDP03")
        assert "Bạn có đồng ý không?" in welcome and numbered_options(welcome) == ["✅ Đồng ý", "Không đồng ý"]
        assert oa.buttons(USER) == [
            {"title": "✅ Đồng ý", "type": "oa.query.hide", "payload": "#consent:yes"},
            {"title": "Không đồng ý", "type": "oa.query.hide", "payload": "#consent:no"},
        ]
        # The first send had no access token: the seed refresh token was exchanged and rotated.
        row = await token_row(ward, oa)
        assert row is not None and row.refresh_token == oa.refresh_token != "refresh-0"
        assert row.expires_at == clock.now() + timedelta(seconds=90000)

        # A pressed button comes back as user_send_text carrying the payload: an action.
        assert "tên" in await hook.press("Đồng ý")  # OA events carry no name: the bot asks
        assert "Tổ dân phố 3" in await hook.say("Lan Nguyễn")
        await hook.press("Đúng rồi")
        # A menu of more than 5 options is numbered text only; typing its number works.
        lessons = await hook.say("/baihoc")
        assert len(numbered_options(lessons)) > 5 and "attachment" not in oa.to(USER)[-1]
        assert ward.lessons.first.cards[0].text in await hook.say("1")
        # Forged or unknown payloads are untrusted like every action.
        assert "Nút này đã cũ" in await hook.say("#ans:b01-binh-dan-hoc-vu-so:9:9:9")
        assert "chọn một mục" in await hook.say("#không phải hành động")  # just text
    [identity] = await identities(ward)
    assert (identity.channel, identity.external_id, identity.last_seen_at) == ("zalo_oa", USER, clock.now())
    assert all(c.error == 0 for c in oa.cs_calls()) and oa.refreshes == 1


@pytest.mark.parametrize("signature", ["wrong", "missing"])
async def test_bad_or_missing_signatures_are_refused_and_nothing_is_processed(
    ward: App, oa: FakeZaloOA, clock: ManualClock, signature: str
) -> None:
    async with oa_webhook(ward, oa, clock) as hook:
        assert await hook.post(oa.text_event(USER, "/start"), signature=signature) == 403
        assert await hook.post(oa.follow_event(USER), signature=signature) == 403
    assert await identities(ward) == [] and oa.calls == []


async def test_signature_variants_repeats_echoes_and_attachments(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    async with oa_webhook(ward, oa, clock) as hook:
        event = oa.text_event(USER, "/start")
        assert await hook.post(event, mac_prefix=False) == 200  # "mac=" is optional
        assert await hook.post(event) == 200  # Zalo's retry of the same msg_id: dropped
        assert len(oa.to(USER)) == 1
        assert await hook.post(oa.text_event("other", "/start"), first=oa.oa_id) == 200  # some sign with oa_id
        assert len(oa.to("other")) == 1
        assert await hook.post(oa.echo_event(USER, "Xin chào")) == 200  # our own message
        assert len(oa.to(USER)) == 1
        assert await hook.post(oa.attachment_event(USER, "sticker")) == 200
        assert "chỉ đọc được tin nhắn chữ" in oa.texts(USER)[-1]


async def test_follow_greets_and_unfollow_marks_the_identity_blocked(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    async with oa_webhook(ward, oa, clock) as hook:
        assert await hook.post(oa.follow_event(USER)) == 200
        assert "Bạn có đồng ý không?" in oa.texts(USER)[-1]
        sent = len(oa.to(USER))
        clock.advance(minutes=1)
        assert await hook.post(oa.follow_event(USER, "unfollow")) == 200
        [identity] = await identities(ward)
        assert identity.blocked_at == clock.now() and len(oa.to(USER)) == sent  # nobody to answer
        clock.advance(minutes=1)
        assert await hook.post(oa.follow_event(USER)) == 200
        [identity] = await identities(ward)
        assert identity.blocked_at is None and len(oa.to(USER)) == sent + 1


async def test_an_expired_token_is_renewed_once_and_the_message_sent_again(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    client = make_client(ward, oa, clock)
    assert await client.send_cs(USER, {"text": "một"})  # first use: exchange the seed
    first = await token_row(ward, oa)
    assert first is not None and first.refresh_token == oa.refresh_token
    oa.expire_tokens()  # Zalo revoked it early (or its lifetime is shorter than announced)
    calls = len(oa.calls)
    assert await client.send_cs(USER, {"text": "hai"})
    assert [(c.path, c.error) for c in oa.calls[calls:]] == [
        ("/v3.0/oa/message/cs", -216), ("/v4/oa/access_token", 0), ("/v3.0/oa/message/cs", 0)]
    second = await token_row(ward, oa)
    assert second is not None and second.refresh_token == oa.refresh_token != first.refresh_token
    assert second.access_token != first.access_token and oa.texts(USER) == ["một", "hai"]
    # A restart reads the pair from the database, not the stale seed from the settings.
    restarted = make_client(ward, oa, clock)
    assert await restarted.send_cs(USER, {"text": "ba"}) and oa.refreshes == 2
    for c in (client, restarted):
        await c.close()


async def test_tokens_are_renewed_early_from_expires_in(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    oa.expires_in = "3600"  # some report 1 h tokens: trust what the answer says
    client = make_client(ward, oa, clock)
    await client.send_cs(USER, {"text": "một"})
    clock.advance(minutes=54)
    await client.send_cs(USER, {"text": "hai"})
    assert oa.refreshes == 1
    clock.advance(minutes=2)  # within 5 minutes of the expiry: renewed before sending
    await client.send_cs(USER, {"text": "ba"})
    assert oa.refreshes == 2 and all(c.error == 0 for c in oa.calls)
    await client.close()


async def test_one_refresher_at_a_time_within_a_process(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    client = make_client(ward, oa, clock)
    transport = ZaloOATransport(client=client, catalog=ward.catalog, pacing=Pacing(per_second=5), clock=clock)
    oa.hold_exchange = asyncio.Event()
    who = [Recipient(f"user{n}", last_seen_at=clock.now()) for n in range(5)]
    sends = [asyncio.create_task(transport.deliver(r, OutboundMessage("Nhắc học"))) for r in who]
    await asyncio.wait_for(oa.exchange_started.wait(), 10)
    oa.hold_exchange.set()
    results = await asyncio.gather(*sends)
    assert [r.result for r in results] == [Result.SENT] * 5 and oa.refreshes == 1
    await client.close()


@pytest.mark.postgres
async def test_one_refresher_at_a_time_across_processes(postgres_url: str, oa: FakeZaloOA, clock: ManualClock) -> None:
    """Two processes (two engines) renew at once: the row lock makes the second wait and
    take the first one's new pair; the single-use refresh token is exchanged once."""
    engines = [create_engine(postgres_url) for _ in range(2)]
    async with engines[0].begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    try:
        async with session_factory(engines[0])() as session, session.begin():
            session.add(ChannelToken(name=f"zalo_oa:{oa.oa_id}", refresh_token="refresh-0", access_token="old",
                                     expires_at=clock.now() + timedelta(hours=1), updated_at=clock.now()))
        processes = [make_tokens(None, oa, clock, sessions=session_factory(e)) for e in engines]  # type: ignore[arg-type]
        oa.hold_exchange = asyncio.Event()
        first = asyncio.create_task(processes[0].refresh(stale="old"))
        await asyncio.wait_for(oa.exchange_started.wait(), 10)
        second = asyncio.create_task(processes[1].refresh(stale="old"))
        async with engines[0].connect() as watcher:  # wait until the second one waits on the lock
            for _ in range(1000):
                waiting = (await watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"))).scalar()
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting == 1
        oa.hold_exchange.set()
        tokens = await asyncio.gather(first, second)
        assert tokens[0] == tokens[1] != "old" and oa.refreshes == 1
        assert [p.refreshes for p in processes] == [1, 0]
    finally:
        for p in processes:
            await p._http.aclose()
        for e in engines:
            await e.dispose()


async def test_the_seven_day_window_is_respected_before_any_call(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    client = make_client(ward, oa, clock)
    transport = ZaloOATransport(client=client, catalog=ward.catalog, pacing=Pacing(per_second=5), clock=clock)
    stale = await transport.deliver(Recipient(USER, last_seen_at=clock.now() - timedelta(days=8)), OutboundMessage("x"))
    never = await transport.deliver(Recipient(USER, last_seen_at=None), OutboundMessage("x"))
    assert stale.result == never.result == Result.NOT_ALLOWED
    assert "7-day window" in stale.reason and "last interaction" in stale.reason and oa.calls == []
    recent = Recipient(USER, last_seen_at=clock.now() - timedelta(days=6))
    assert (await transport.deliver(recent, OutboundMessage("Nhắc học"))).result == Result.SENT
    oa.outside_window.add(USER)  # Zalo disagrees (another interaction rule): -230 says why
    refused = await transport.deliver(recent, OutboundMessage("Nhắc học"))
    assert refused.result == Result.NOT_ALLOWED and "-230" in refused.reason
    await client.close()


async def test_oa_error_codes_map_to_outbox_results(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    client = make_client(ward, oa, clock)
    transport = ZaloOATransport(client=client, catalog=ward.catalog, pacing=Pacing(per_second=5), clock=clock)
    who = Recipient(USER, last_seen_at=clock.now())
    message = OutboundMessage("Nhắc học")
    await transport.deliver(who, message)  # the token is in hand

    async def result(code: int):  # type: ignore[no-untyped-def]
        oa.fail_next(code)
        return await transport.deliver(who, message)

    assert (await result(-227)).result == Result.BLOCKED
    limited = await result(-32)
    assert (limited.result, limited.retry_after) == (Result.RETRY_AFTER, 60.0)
    night = await result(-234)  # clock: 10:00 in Hà Nội → 20 h until 06:00
    assert (night.result, night.retry_after) == (Result.TRANSIENT, 20 * 3600)
    assert (await result(503)).result == Result.TRANSIENT
    invalid = await result(-201)
    assert invalid.result == Result.FAILED and "-201" in invalid.reason
    oa.fail_next(-216, times=2)  # still rejected after one renewal: give up, alert
    assert (await transport.deliver(who, message)).result == Result.FAILED and oa.refreshes == 2
    await client.close()


async def test_a_lost_refresh_token_fails_with_a_clear_reason(ward: App, oa: FakeZaloOA, clock: ManualClock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    oa.refresh_token = "someone-else-rotated-it"
    client = make_client(ward, oa, clock)
    transport = ZaloOATransport(client=client, catalog=ward.catalog, pacing=Pacing(per_second=5), clock=clock)
    failed = await transport.deliver(Recipient(USER, last_seen_at=clock.now()), OutboundMessage("x"))
    assert failed.result == Result.FAILED and "Refresh token is invalid" in failed.reason
    assert "an OA admin must grant access again" in caplog.text
    row = await token_row(ward, oa)  # no new pair stored; at most the seeded row (pysqlite commits savepoints)
    assert row is None or (row.access_token, row.refresh_token) == (None, "refresh-0")
    await client.close()


async def test_long_replies_are_split_for_the_oa(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    async with oa_webhook(ward, oa, clock) as hook:
        paragraphs = [f"Đoạn {n}: " + " ".join(["chữ"] * 70) for n in range(10)]
        await hook.channel.render(USER, [Text("\n\n".join(paragraphs))])
    assert [len(t) <= 2000 for t in oa.texts(USER)] == [True, True]
    assert "\n\n".join(oa.texts(USER)) == "\n\n".join(paragraphs)
