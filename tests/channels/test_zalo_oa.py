"""The Zalo Official Account adapter, token rotation and outbox transport against the fake
OA API (tests/fakes/zalo_oa_api.py) over HTTP on 127.0.0.1, with the real engine and database."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel, select

from bot.app import App
from bot.channels.zalo import ZaloOAChannel, ZaloOAClient, ZaloOATransport, oa_client
from bot.channels.zalo.oa_client import OATokens, Patience, ZaloOAError
from bot.core.messages import Text
from bot.delivery.transport import OutboundMessage, Pacing, Recipient, Result
from bot.web import start_web, create_web_app
from storage.channel_tokens import read_token, store_pair, take_lease
from storage.db import SessionFactory, create_engine, session_factory
from storage.models import ChannelToken, Identity
from tests.contract.drivers import numbered_options
from tests.fakes.zalo_oa_api import FakeZaloOA
from tests.support import ManualClock

USER = "2468458835296197922"


@pytest.fixture
async def oa() -> AsyncIterator[FakeZaloOA]:
    async with FakeZaloOA() as server:
        yield server


QUICK = Patience(poll=0.01, retry_first=0.01, retry_cap=0.02)  # same limits, shorter pauses


def make_tokens(app: App | None, oa: FakeZaloOA, clock: ManualClock, *, sessions: SessionFactory | None = None,
                seed: str | None = "refresh-0", patience: Patience = QUICK) -> OATokens:
    factory = sessions or (app.sessions if app is not None else None)
    assert factory is not None
    return OATokens(sessions=factory, http=httpx.AsyncClient(timeout=10), oauth_url=oa.url, oa_id=oa.oa_id,
                    app_id=oa.app_id, app_secret=oa.app_secret, seed_refresh_token=seed, clock=clock,
                    patience=patience)


def make_client(app: App, oa: FakeZaloOA, clock: ManualClock, **kwargs: Any) -> ZaloOAClient:
    tokens = make_tokens(app, oa, clock, **kwargs)
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
async def oa_webhook(app: App, oa: FakeZaloOA, clock: ManualClock, **options: Any) -> AsyncIterator[Hook]:
    channel = ZaloOAChannel(client=make_client(app, oa, clock), conversation=app.conversation, catalog=app.catalog,
                            sessions=app.sessions, oa_id=oa.oa_id, app_id=oa.app_id, secret_key=oa.secret_key,
                            clock=clock, **options)
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
        assert "chưa hiểu" in await hook.say("#không phải hành động")  # just text
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


async def wait_for(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds (it is about something another task does), at most ~10 s."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_one_refresher_at_a_time_across_processes(any_db_url: str, oa: FakeZaloOA, clock: ManualClock) -> None:
    """Two processes (two engines) renew at once: the second finds the first one's lease,
    waits for its new pair and uses it; the single-use refresh token is exchanged once."""
    engines = [create_engine(any_db_url) for _ in range(2)]
    async with engines[0].begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    processes = [make_tokens(None, oa, clock, sessions=session_factory(e)) for e in engines]
    try:
        async with session_factory(engines[0])() as session, session.begin():
            session.add(ChannelToken(name=f"zalo_oa:{oa.oa_id}", refresh_token="refresh-0", access_token="old",
                                     expires_at=clock.now() + timedelta(hours=1), updated_at=clock.now()))
        oa.hold_exchange = asyncio.Event()
        first = asyncio.create_task(processes[0].refresh(stale="old"))
        await asyncio.wait_for(oa.exchange_started.wait(), 10)
        second = asyncio.create_task(processes[1].refresh(stale="old"))
        await wait_for(lambda: processes[1].waits > 0)  # it found the lease and waits
        oa.hold_exchange.set()
        tokens = await asyncio.gather(first, second)
        assert tokens[0] == tokens[1] != "old" and oa.refreshes == 1
        assert [p.refreshes for p in processes] == [1, 0]
        async with session_factory(engines[1])() as session:
            row = await read_token(session, name=f"zalo_oa:{oa.oa_id}")
        assert row is not None and (row.access_token, row.refresh_token) == (tokens[0], oa.refresh_token)
        assert (row.refresh_owner, row.refreshing_until) == (None, None)
    finally:
        for p in processes:
            await p._http.aclose()
        for e in engines:
            await e.dispose()


async def write_transactions_open(app: App) -> int:
    """How many transactions hold a write lock (SQLite: could another connection not take the
    write lock at once?) or are open at all (PostgreSQL: other client backends)."""
    if app.engine.dialect.name == "sqlite":
        probe = sqlite3.connect(make_url(str(app.engine.url)).database or "", timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return 0
        except sqlite3.OperationalError:
            return 1
        finally:
            probe.close()
    async with app.engine.connect() as conn:
        return int((await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND xact_start IS NOT NULL"))).scalar() or 0)


async def test_no_transaction_is_open_during_the_exchange(any_app: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    tokens = make_tokens(any_app, oa, clock)
    open_during: list[int] = []
    for _ in range(2):  # the first use creates the row; the second finds it
        oa.hold_exchange, oa.exchange_started = asyncio.Event(), asyncio.Event()
        renewal = asyncio.create_task(tokens.current())
        await asyncio.wait_for(oa.exchange_started.wait(), 10)
        open_during.append(await write_transactions_open(any_app))
        oa.hold_exchange.set()
        assert await renewal in oa.valid_tokens
        clock.advance(hours=25)  # the pair is expiring: the second round renews it
    assert open_during == [0, 0] and oa.refreshes == 2
    assert [error for _, error in oa.exchanges()] == [0, 0]
    await tokens._http.aclose()


@asynccontextmanager
async def impatient_sessions(app: App) -> AsyncIterator[SessionFactory]:
    """Sessions on the app's SQLite file that give up after 20 ms when the database is locked
    (instead of 5 s), so a test can hold the lock across several attempts."""
    engine = create_engine(str(app.engine.url))

    def short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:  # after the app's pragmas
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=20")
        cursor.close()

    event.listen(engine.sync_engine, "connect", short_busy_timeout)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


class WriteLock:
    """SQLite's write lock, held by another connection (another process, a long writer)."""

    def __init__(self, app: App) -> None:
        self._conn = sqlite3.connect(make_url(str(app.engine.url)).database or "", isolation_level=None)

    def take(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self.release()
        self._conn.close()


async def exchange_under_lock(oa: FakeZaloOA, lock: WriteLock, send: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run ``send`` and take the write lock while its token exchange is on the wire: the
    lease is taken by then, and the new pair cannot be stored."""
    oa.hold_exchange, oa.exchange_started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(send)
    await asyncio.wait_for(oa.exchange_started.wait(), 10)
    lock.take()
    oa.hold_exchange.set()
    return await task


async def test_the_new_pair_is_stored_once_the_database_is_writable_again(
    app: App, oa: FakeZaloOA, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = WriteLock(app)
    attempts: list[str] = []

    async def spied_store(session: Any, **kwargs: Any) -> bool:
        attempts.append("try")
        if len(attempts) == 3:
            lock.release()  # two attempts met the lock; the third finds the database free
        try:
            return await store_pair(session, **kwargs)
        except OperationalError:
            attempts[-1] = "locked"
            raise

    monkeypatch.setattr(oa_client, "store_pair", spied_store)
    async with impatient_sessions(app) as sessions:
        client = make_client(app, oa, clock, sessions=sessions)
        assert await exchange_under_lock(oa, lock, client.send_cs(USER, {"text": "một"}))
        assert attempts == ["locked", "locked", "try"] and not client.tokens.unsaved
        row = await token_row(app, oa)
        assert row is not None and row.refresh_token == oa.refresh_token != "refresh-0"
        assert (row.refresh_owner, row.refreshing_until) == (None, None)
        # The next renewal (by a restarted process) presents the stored token, not the old one.
        oa.expire_tokens()
        restarted = make_client(app, oa, clock, sessions=sessions)
        assert await restarted.send_cs(USER, {"text": "hai"})
        assert oa.exchanges() == [("refresh-0", 0), (row.refresh_token, 0)] and oa.texts(USER) == ["một", "hai"]
        for c in (client, restarted):
            await c.close()
    lock.close()


async def test_a_pair_that_cannot_be_stored_is_used_reported_and_stored_later(
    app: App, oa: FakeZaloOA, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    lock = WriteLock(app)
    async with impatient_sessions(app) as sessions:
        client = make_client(app, oa, clock, sessions=sessions, patience=Patience(retry_first=0.01, retry_cap=0.02,
                                                                                    store=0.05))
        assert await exchange_under_lock(oa, lock, client.send_cs(USER, {"text": "một"}))
        [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert "could not be saved to the database" in error.getMessage()
        assert "an OA admin must grant access again" in error.getMessage()
        assert client.tokens.unsaved
        first = oa.refresh_token
        row = await token_row(app, oa)
        assert row is not None and row.refresh_token == "refresh-0"  # not stored...
        # ...but this process keeps working, and renews from the pair only it knows.
        oa.expire_tokens()
        assert await client.send_cs(USER, {"text": "hai"})
        assert oa.exchanges() == [("refresh-0", 0), (first, 0)]
        lock.release()
        assert await client.tokens.flush() and not client.tokens.unsaved
        row = await token_row(app, oa)
        assert row is not None and row.refresh_token == oa.refresh_token != first
        assert (row.refresh_owner, row.refreshing_until) == (None, None) and oa.texts(USER) == ["một", "hai"]
        await client.close()
    secrets = [first, oa.refresh_token, *oa.valid_tokens, *(c.headers.get("access_token") for c in oa.cs_calls())]
    assert not [s for s in secrets if s and s in caplog.text]
    lock.close()


async def test_a_lease_left_by_a_dead_process_is_taken_over_once_it_runs_out(
    any_app: App, oa: FakeZaloOA, clock: ManualClock
) -> None:
    async with any_app.sessions() as session, session.begin():
        session.add(ChannelToken(name=f"zalo_oa:{oa.oa_id}", refresh_token="refresh-0", access_token="old",
                                 expires_at=clock.now() - timedelta(hours=1), updated_at=clock.now(),
                                 refreshing_until=clock.now() + timedelta(minutes=2), refresh_owner="dead-process"))
    # While the lease runs, nobody exchanges: a refresher waits (bounded), then gives up for now.
    impatient = make_tokens(any_app, oa, clock, patience=Patience(poll=0.01, wait=0.05))
    with pytest.raises(ZaloOAError) as refused:
        await impatient.current()
    assert refused.value.transient and oa.exchanges() == []
    tokens = make_tokens(any_app, oa, clock)
    waiting = asyncio.create_task(tokens.current())
    await wait_for(lambda: tokens.waits > 0)
    assert oa.exchanges() == [] and not waiting.done()
    clock.advance(minutes=2, seconds=1)  # the dead process's lease runs out
    assert await waiting in oa.valid_tokens
    assert oa.exchanges() == [("refresh-0", 0)]
    row = await token_row(any_app, oa)
    assert row is not None and row.refresh_token == oa.refresh_token and row.refresh_owner is None
    for t in (impatient, tokens):
        await t._http.aclose()


async def test_a_token_consumed_by_a_late_store_is_not_an_alarm(
    any_app: App, oa: FakeZaloOA, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A refresher whose lease ran out while the database was locked consumed the stored
    token; the next refresher takes the lease, is refused, and finds the late pair stored."""
    name, now = f"zalo_oa:{oa.oa_id}", clock.now()
    async with any_app.sessions() as session, session.begin():
        session.add(ChannelToken(name=name, refresh_token="refresh-0", access_token="old", updated_at=now,
                                 expires_at=now - timedelta(hours=1), refreshing_until=now - timedelta(seconds=1),
                                 refresh_owner="late"))
    oa.refresh_token = "refresh-late"  # "late" exchanged refresh-0 already
    tokens = make_tokens(any_app, oa, clock, seed=None)
    oa.hold_exchange = asyncio.Event()
    renewal = asyncio.create_task(tokens.current())
    await asyncio.wait_for(oa.exchange_started.wait(), 10)
    late = oa.issue_token()
    async with any_app.sessions() as session, session.begin():  # "late" stores its pair at last
        assert await store_pair(session, name=name, owner="late", previous_refresh_token="refresh-0",
                                access_token=late, refresh_token="refresh-late",
                                expires_at=now + timedelta(days=1), now=now)
    oa.hold_exchange.set()
    assert await renewal == late and oa.exchanges() == [("refresh-0", -14014)]
    assert "grant access again" not in caplog.text
    row = await token_row(any_app, oa)
    assert row is not None and (row.refresh_token, row.refresh_owner) == ("refresh-late", None)
    await tokens._http.aclose()


async def test_storing_a_pair_needs_the_lease_or_the_token_it_replaced(any_app: App, clock: ManualClock) -> None:
    """The guard of ``store_pair``: an owner whose lease ran out and was taken over may still
    store while the row holds the refresh token it consumed, and leaves the other's lease."""
    name, now = "zalo_oa:test", clock.now()
    async with any_app.sessions() as session, session.begin():
        session.add(ChannelToken(name=name, refresh_token="r0", updated_at=now))
    pair = {"access_token": "a1", "expires_at": now + timedelta(days=1), "now": now}
    async with any_app.sessions() as session, session.begin():
        assert await take_lease(session, name=name, owner="A", now=now, until=now + timedelta(minutes=2))
        assert not await take_lease(session, name=name, owner="B", now=now, until=now + timedelta(minutes=2))
    later = now + timedelta(minutes=3)
    async with any_app.sessions() as session, session.begin():
        assert await take_lease(session, name=name, owner="B", now=later, until=later + timedelta(minutes=2))
        assert not await store_pair(session, name=name, owner="A", previous_refresh_token="other",
                                    refresh_token="r1", **pair)
        assert await store_pair(session, name=name, owner="A", previous_refresh_token="r0", refresh_token="r1", **pair)
    row = await token_row_named(any_app, name)
    assert (row.refresh_token, row.refresh_owner) == ("r1", "B")
    async with any_app.sessions() as session, session.begin():
        assert not await store_pair(session, name=name, owner="A", previous_refresh_token="r0", refresh_token="r2",
                                    **pair)
        assert await store_pair(session, name=name, owner="B", previous_refresh_token="r0", refresh_token="r2", **pair)
    row = await token_row_named(any_app, name)
    assert (row.refresh_token, row.refresh_owner, row.refreshing_until) == ("r2", None, None)


async def token_row_named(app: App, name: str) -> ChannelToken:
    async with app.sessions() as session:
        row = await read_token(session, name=name)
    assert row is not None
    return row


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
    row = await token_row(ward, oa)  # no new pair stored, only the seeded row, its lease released
    assert row is not None and (row.access_token, row.refresh_token, row.refresh_owner) == (None, "refresh-0", None)
    await client.close()


async def test_long_replies_are_split_for_the_oa(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    async with oa_webhook(ward, oa, clock) as hook:
        paragraphs = [f"Đoạn {n}: " + " ".join(["chữ"] * 70) for n in range(10)]
        await hook.channel.render(USER, [Text("\n\n".join(paragraphs))])
    assert [len(t) <= 2000 for t in oa.texts(USER)] == [True, True]
    bodies, marks = zip(*(t.rsplit("\n", 1) for t in oa.texts(USER)), strict=True)
    assert marks == ("(1/2)", "(2/2)") and "\n\n".join(bodies) == "\n\n".join(paragraphs)


async def test_a_reply_refused_for_the_rate_limit_is_sent_again(ward: App, oa: FakeZaloOA, clock: ManualClock) -> None:
    """The resident's step has moved on when the reply is refused (-32, then a 5xx): it must
    still arrive."""
    async with oa_webhook(ward, oa, clock, rate_wait=0.01, retry_delay=0.01) as hook:
        oa.fail_next(-32)
        oa.fail_next(502)
        assert "Bạn có đồng ý không?" in await hook.say("/start")
