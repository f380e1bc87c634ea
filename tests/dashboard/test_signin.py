"""Sign-in to the web dashboard over HTTP (aiohttp's client as the browser): the ``/web`` link
from the chat, its confirmation page, sessions, CSRF, roles read on every request, the rate
limit and the audit log; those that depend on the database (``any_world``) on SQLite and
PostgreSQL. The browser tests (``test_browser.py``) drive the same in Chromium."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from dataclasses import replace
from datetime import timedelta
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bot.app import App, client_secret, dashboard, web_url
from bot.config import Settings
from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, prune
from storage.models import AuditLog, Role, WebLink, WebSession, WebSignInAttempt
from storage.web_access import MAX_REFUSED, digest
from tests.dashboard.conftest import World, link_from_chat
from tests.staff import group, person_of, rows
from tests.support import Chat, ManualClock

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1

    async def get(self, url: str) -> tuple[int, str]:
        async with self.http.get(url, allow_redirects=False) as response:
            return response.status, await response.text()

    async def post(self, url: str, data: dict[str, str]) -> aiohttp.ClientResponse:
        async with self.http.post(url, data=data, allow_redirects=False) as response:
            await response.read()
            return response

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def browser() -> Browser:
    b = Browser()
    yield b  # type: ignore[misc]
    await b.close()


async def confirm(browser: Browser, link: str) -> aiohttp.ClientResponse:
    """Open the link and press "Đăng nhập"."""
    status, page = await browser.get(link)
    assert status == 200, page
    token = link.rsplit("/", 1)[1]
    return await browser.post(link.rsplit("/", 1)[0], {"token": token, "csrf": CSRF.search(page).group(1)})  # type: ignore[union-attr]


async def signed_in(world: World, chat: Chat, browser: Browser) -> str:
    """Sign in through a fresh link; returns the session's CSRF token."""
    response = await confirm(browser, await link_from_chat(chat))
    assert response.status == 303 and response.headers["Location"] == "/web/"
    status, page = await browser.get(world.base + "/web/")
    assert status == 200
    return CSRF.search(page).group(1)  # type: ignore[union-attr]


async def test_a_resident_gets_a_kind_refusal_and_no_link(world: World) -> None:
    replies = await world.resident.send("/web")
    text = world.resident.texts(replies)
    assert "chỉ dành cho tổ trưởng và cán bộ phường" in text and "/web/vao/" not in text
    assert await rows(world.app, WebLink) == []
    refused = [a for a in await rows(world.app, AuditLog) if a.action == "refused"]
    assert [a.target for a in refused] == ["/web"]


async def test_the_link_works_once_and_a_preview_does_not_use_it(any_world: World, browser: Browser,
                                                                clock: ManualClock) -> None:
    world = any_world
    link = await link_from_chat(world.leader)
    assert "chỉ dùng được một lần, trong 10 phút" in world.leader.last_text
    token = link.rsplit("/", 1)[1]
    [stored] = await rows(world.app, WebLink)
    assert stored.token_hash == digest(token) and token not in stored.token_hash  # only the hash is kept
    assert stored.expires_at == clock.now() + timedelta(minutes=10)
    # A chat app's link preview GETs it: the link stays usable.
    async with aiohttp.ClientSession() as preview, preview.get(link) as page:
        assert page.status == 200 and "Đăng nhập" in await page.text()
    response = await confirm(browser, link)
    assert response.status == 303 and response.headers["Location"] == "/web/"
    cookie = response.cookies["hvs_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/web"
    assert not cookie["secure"]  # http on 127.0.0.1; https → Secure (test_cookies_are_secure_over_https)
    [session] = await rows(world.app, WebSession)
    assert session.token_hash == digest(cookie.value) and session.last_seen_at == clock.now()
    status, page = await browser.get(world.base + "/web/")
    assert status == 200 and "Tổ dân phố 3" in page and "Đang đăng nhập: <strong>Ba</strong>" in page
    # Used: refused however it is tried again.
    again = Browser()
    try:
        assert (await again.get(link))[0] == 410
        assert (await confirm_without_page(again, link)).status in (403, 410)
    finally:
        await again.close()
    actions = [a.action for a in await rows(world.app, AuditLog)]
    assert actions.count("web.link") == 1 and actions.count("web.signin") == 1
    assert all(token not in str(a.details) + a.target for a in await rows(world.app, AuditLog))


async def confirm_without_page(browser: Browser, link: str) -> aiohttp.ClientResponse:
    return await browser.post(link.rsplit("/", 1)[0], {"token": link.rsplit("/", 1)[1], "csrf": "x"})


async def test_a_used_link_is_refused_even_from_a_page_opened_before(any_world: World, browser: Browser) -> None:
    """The link opened on two devices: the first "Đăng nhập" signs in, the second is refused."""
    world = any_world
    link = await link_from_chat(world.leader)
    other = Browser()
    try:
        forms = []
        for b in (browser, other):
            status, page = await b.get(link)
            assert status == 200
            forms.append({"token": link.rsplit("/", 1)[1], "csrf": CSRF.search(page).group(1)})  # type: ignore[union-attr]
        first = await browser.post(world.base + "/web/vao", forms[0])
        second = await other.post(world.base + "/web/vao", forms[1])
        assert (first.status, second.status) == (303, 410)
        assert "hvs_session" not in second.cookies
        assert (await other.get(world.base + "/web/"))[0] == 401
    finally:
        await other.close()
    assert len(await rows(world.app, WebSession)) == 1


async def test_two_browsers_racing_with_one_link_open_one_session(any_app: App) -> None:
    """The guarded UPDATE: on SQLite and PostgreSQL, of two sign-ins at once one wins."""
    from storage.web_access import create_link, use_link
    from tests.conftest import seed_demo_groups
    from tests.support import join

    await seed_demo_groups(any_app)
    chat = Chat(any_app.conversation, user="7", name="Ba")
    await join(chat)
    person = await person_of(any_app, chat)
    now = any_app.clock.now()
    async with any_app.sessions() as session, session.begin():
        token = await create_link(session, person_id=person.id, now=now)  # type: ignore[arg-type]

    async def use() -> bool:
        async with any_app.conversation.sessions() as session, session.begin():
            return await use_link(session, token=token, now=now) is not None

    assert sorted(await asyncio.gather(use(), use())) == [False, True]


async def test_an_expired_link_is_refused(any_world: World, browser: Browser, clock: ManualClock) -> None:
    world = any_world
    link = await link_from_chat(world.admin)
    status, page = await browser.get(link)
    assert status == 200
    clock.advance(minutes=10)
    form = {"token": link.rsplit("/", 1)[1], "csrf": CSRF.search(page).group(1)}  # type: ignore[union-attr]
    response = await browser.post(world.base + "/web/vao", form)
    assert response.status == 410 and "hvs_session" not in response.cookies
    status, page = await browser.get(link)
    assert status == 410 and "gửi /web" in page
    assert await rows(world.app, WebSession) == []


async def test_a_new_link_ends_the_unused_one(world: World, browser: Browser) -> None:
    old = await link_from_chat(world.admin)
    new = await link_from_chat(world.admin)
    assert (await browser.get(old))[0] == 410
    assert (await confirm(browser, new)).status == 303


async def test_forms_without_their_csrf_token_are_refused(any_world: World, browser: Browser) -> None:
    world = any_world
    link = await link_from_chat(world.admin)
    await browser.get(link)
    response = await browser.post(world.base + "/web/vao", {"token": link.rsplit("/", 1)[1]})
    assert response.status == 403
    # The link was not used by the refused form.
    assert (await confirm(browser, link)).status == 303
    csrf = (await browser.get(world.base + "/web/"))[1]
    token = CSRF.search(csrf).group(1)  # type: ignore[union-attr]
    for data in ({}, {"csrf": ""}, {"csrf": token[:-1] + ("0" if token[-1] != "0" else "1")}):
        response = await browser.post(world.base + "/web/thoat", data)
        assert response.status == 403
        assert len(await rows(world.app, WebSession)) == 1  # still signed in
    response = await browser.post(world.base + "/web/thoat", {"csrf": token})
    assert response.status == 303 and response.headers["Location"] == "/web/da-thoat"
    assert await rows(world.app, WebSession) == []
    assert (await browser.get(world.base + "/web/"))[0] == 401
    assert [a.action for a in await rows(world.app, AuditLog) if a.action.startswith("web.")][-1] == "web.signout"


async def test_roles_are_read_on_every_request(any_world: World, browser: Browser) -> None:
    world = any_world
    await signed_in(world, world.leader, browser)
    tdp03 = await group(world.app, "DEMO-TDP03")
    assert (await browser.get(f"{world.base}/web/to/{tdp03.id}"))[0] == 200
    leader = await person_of(world.app, world.leader)
    async with world.app.sessions() as session, session.begin():
        role = (await session.exec(select(Role).where(Role.person_id == leader.id))).one()
        await session.delete(role)
    status, page = await browser.get(f"{world.base}/web/to/{tdp03.id}")
    assert status == 403 and "không còn quyền" in page
    assert (await browser.get(world.base + "/web/"))[0] == 403


async def test_a_leader_sees_only_their_groups(world: World, browser: Browser) -> None:
    await signed_in(world, world.leader, browser)
    status, page = await browser.get(world.base + "/web/")
    assert "Tổ dân phố 3" in page and "Tổ dân phố 1" not in page
    other = await group(world.app, "DEMO-TDP01")
    status, page = await browser.get(f"{world.base}/web/to/{other.id}")
    assert status == 403 and "Lan" not in page and "An" not in page.split("<main")[1]
    ward_id = other.ward_id
    assert (await browser.get(f"{world.base}/web/phuong/{ward_id}"))[0] == 403
    assert (await browser.get(f"{world.base}/web/to/999999"))[0] == 403


async def test_a_page_view_writes_the_session_once_a_minute_and_a_new_sign_in_replaces_it(
        world: World, browser: Browser, clock: ManualClock) -> None:
    await signed_in(world, world.admin, browser)
    [first] = await rows(world.app, WebSession)
    clock.advance(seconds=59)
    assert (await browser.get(world.base + "/web/"))[0] == 200
    assert (await rows(world.app, WebSession))[0].last_seen_at == first.last_seen_at  # a read, no write
    clock.advance(seconds=1)
    assert (await browser.get(world.base + "/web/"))[0] == 200
    assert (await rows(world.app, WebSession))[0].last_seen_at == clock.now()
    await signed_in(world, world.admin, browser)  # the same browser signs in again
    [second] = await rows(world.app, WebSession)
    assert second.token_hash != first.token_hash  # one session: the old one ended


async def test_an_idle_session_ends_after_eight_hours(any_world: World, browser: Browser, clock: ManualClock) -> None:
    world = any_world
    await signed_in(world, world.admin, browser)
    clock.advance(hours=7, minutes=59)
    assert (await browser.get(world.base + "/web/"))[0] == 200  # seen: the eight hours start again
    clock.advance(hours=8)
    status, page = await browser.get(world.base + "/web/")
    assert status == 401 and "gửi /web" in page
    assert await rows(world.app, WebSession) == []


async def test_refused_sign_ins_are_limited_per_address_and_audited(any_world: World, browser: Browser,
                                                                   clock: ManualClock) -> None:
    world = any_world
    for n in range(MAX_REFUSED):
        assert (await browser.get(f"{world.base}/web/vao/{'x' * 43}"))[0] == 410, n
    status, page = await browser.get(f"{world.base}/web/vao/{'y' * 43}")
    assert status == 429 and "15 phút" in page
    assert len(await rows(world.app, WebSignInAttempt)) == MAX_REFUSED  # past the limit nothing more is stored
    refused = [a for a in await rows(world.app, AuditLog) if a.action == "web.signin_refused"]
    assert len(refused) == MAX_REFUSED and refused[0].details == {"reason": "link"}
    clock.advance(minutes=15)  # the window has passed
    assert (await browser.get(f"{world.base}/web/vao/{'y' * 43}"))[0] == 410


async def test_bad_links_lock_nobody_out(any_world: World, browser: Browser) -> None:
    """Behind the city's proxy every browser has one address: someone sending bad links must not
    stop staff signing in. A usable link is looked up first and always signs in."""
    world = any_world
    for n in range(MAX_REFUSED):
        assert (await browser.get(f"{world.base}/web/vao/{'x' * 43}"))[0] == 410, n
    other = Browser()  # another client, the same address
    try:
        assert (await confirm(other, await link_from_chat(world.admin))).status == 303
        assert (await other.get(world.base + "/web/"))[0] == 200
    finally:
        await other.close()
    assert (await confirm(browser, await link_from_chat(world.leader))).status == 303  # even the guesser's browser
    status, page = await browser.get(f"{world.base}/web/vao/{'x' * 43}")  # the 11th bad link
    assert status == 429 and "15 phút" in page
    assert len(await rows(world.app, WebSignInAttempt)) == MAX_REFUSED


def test_the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() -> None:
    from aiohttp.test_utils import make_mocked_request

    from bot.config import parse_proxies
    from bot.dashboard.access import client_address

    def request(peer: str, forwarded: str | None) -> web.Request:
        headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
        transport = mock.Mock()
        transport.get_extra_info.return_value = (peer, 40000)
        return make_mocked_request("GET", "/web/vao/x", headers=headers, transport=transport)

    proxy = parse_proxies("10.0.0.2, 10.1.0.0/16")
    assert client_address(request("203.0.113.9", "198.51.100.1"), proxy) == "203.0.113.9"  # not from the proxy
    assert client_address(request("10.0.0.2", "198.51.100.1"), ()) == "10.0.0.2"  # no proxy trusted
    assert client_address(request("10.0.0.2", "198.51.100.1"), proxy) == "198.51.100.1"
    # The client may write its own X-Forwarded-For: only what the trusted proxies appended counts.
    assert client_address(request("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.1.4.4"), proxy) == "198.51.100.1"
    assert client_address(request("10.0.0.2", "not-an-address"), proxy) == "10.0.0.2"
    assert client_address(request("10.0.0.2", None), proxy) == "10.0.0.2"
    with pytest.raises(ValueError):
        Settings(_env_file=None, web_trusted_proxies="10.0.0.2, proxy")  # type: ignore[call-arg]


async def test_pages_are_not_cached_framed_or_referred(world: World) -> None:
    async with aiohttp.ClientSession() as http, http.get(world.base + "/web/") as response:
        assert response.status == 401
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    async with aiohttp.ClientSession() as http, http.get(world.base + "/web/static/dashboard.css") as response:
        assert response.status == 200 and "--brand" in await response.text()
    async with aiohttp.ClientSession() as http, http.get(world.base + "/web/static/vendor/axe.min.js") as response:
        assert response.status == 404


async def test_an_erased_leader_is_signed_out(any_world: World, browser: Browser) -> None:
    world = any_world
    await signed_in(world, world.leader, browser)
    await world.leader.send("/xoadulieu")
    await world.leader.press("Xóa dữ liệu")
    assert await rows(world.app, WebSession) == [] and await rows(world.app, WebLink) == []
    assert (await browser.get(world.base + "/web/"))[0] == 401


def test_the_link_address_comes_from_the_settings() -> None:
    assert web_url(Settings(_env_file=None)) == "http://127.0.0.1:8080"  # type: ignore[call-arg]
    assert web_url(Settings(_env_file=None, web_port=9000)) == "http://127.0.0.1:9000"  # type: ignore[call-arg]
    assert web_url(Settings(_env_file=None, public_base_url="https://bot.phuong.example/")) == \
        "https://bot.phuong.example"  # type: ignore[call-arg]


async def test_cookies_are_secure_over_https(world: World) -> None:
    """PUBLIC_BASE_URL https://…: the session cookie is marked Secure (served here over http,
    as behind a TLS-terminating proxy)."""
    from bot.web import create_web_app, start_web

    secure = replace(dashboard(world.app), secure=True)
    runner = await start_web(create_web_app(dashboard=secure), host="127.0.0.1", port=0)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    browser = Browser()
    try:
        link = (await link_from_chat(world.admin)).replace(world.base, base)
        async with browser.http.get(link) as page:
            assert page.cookies["hvs_signin"]["secure"]
            form = {"token": link.rsplit("/", 1)[1], "csrf": CSRF.search(await page.text()).group(1)}  # type: ignore[union-attr]
        # A browser would send the Secure cookie back over HTTPS: do it by hand here.
        async with browser.http.post(base + "/web/vao", data=form, allow_redirects=False,
                                     cookies={"hvs_signin": page.cookies["hvs_signin"].value}) as response:
            assert response.status == 303
            assert response.cookies["hvs_session"]["secure"] and response.cookies["hvs_session"]["httponly"]
    finally:
        await browser.close()
        await runner.cleanup()


async def test_a_failing_request_logs_its_route_never_the_token(world: World, browser: Browser,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    import bot.dashboard.pages as pages

    link = await link_from_chat(world.admin)
    token = link.rsplit("/", 1)[1]

    async def locked(session: object, *, token: str, now: object) -> bool:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(pages, "link_is_usable", locked)
    caplog.set_level(logging.DEBUG)
    assert (await browser.get(link))[0] == 500
    assert "web request GET /web/vao/{token} failed" in caplog.text
    assert token not in caplog.text


async def test_a_person_whose_role_was_removed_can_still_sign_out(any_world: World, browser: Browser) -> None:
    world = any_world
    await signed_in(world, world.leader, browser)
    leader = await person_of(world.app, world.leader)
    async with world.app.sessions() as session, session.begin():
        role = (await session.exec(select(Role).where(Role.person_id == leader.id))).one()
        await session.delete(role)
    status, page = await browser.get(world.base + "/web/")
    assert status == 403 and "không còn quyền" in page
    assert 'action="/web/thoat"' in page  # the no-role page offers to sign out
    response = await browser.post(world.base + "/web/thoat", {"csrf": CSRF.search(page).group(1)})  # type: ignore[union-attr]
    assert response.status == 303 and response.headers["Location"] == "/web/da-thoat"
    assert await rows(world.app, WebSession) == []
    signouts = [a.actor for a in await rows(world.app, AuditLog) if a.action == "web.signout"]
    assert signouts == [f"person:{leader.id}"]
    assert (await browser.get(world.base + "/web/"))[0] == 401


async def test_a_refused_clients_address_is_stored_as_a_keyed_hash(world: World, browser: Browser) -> None:
    """IPv4 has 2³² addresses: a plain SHA-256 of one is reversed by trying them all. The
    attempt keeps an HMAC under the server's secret."""
    assert (await browser.get(f"{world.base}/web/vao/{'x' * 43}"))[0] == 410
    [attempt] = await rows(world.app, WebSignInAttempt)
    assert attempt.client != hashlib.sha256(b"127.0.0.1").hexdigest() and len(attempt.client) == 64
    from aiohttp.test_utils import make_mocked_request

    from bot.dashboard.access import client_key

    transport = mock.Mock()
    transport.get_extra_info.return_value = ("127.0.0.1", 40000)
    keyed = replace(dashboard(world.app), client_secret=b"k" * 32)
    assert client_key(keyed, make_mocked_request("GET", "/web/vao/x", transport=transport)) == \
        hmac.new(b"k" * 32, b"127.0.0.1", hashlib.sha256).hexdigest()


def test_the_client_secret_is_shared_by_replicas_and_kept_from_the_settings() -> None:
    one = Settings(_env_file=None, telegram_bot_token="1:abc", telegram_webhook_secret="s3cret")  # type: ignore[call-arg]
    same = Settings(_env_file=None, telegram_bot_token="1:abc", telegram_webhook_secret="s3cret")  # type: ignore[call-arg]
    other = Settings(_env_file=None, telegram_bot_token="1:abd", telegram_webhook_secret="s3cret")  # type: ignore[call-arg]
    assert client_secret(one) == client_secret(same) != client_secret(other)
    assert b"abc" not in client_secret(one) and len(client_secret(one)) == 32
    bare = Settings(_env_file=None)  # type: ignore[call-arg]
    assert client_secret(bare) != client_secret(bare)  # no secret to derive from: random per process


async def test_the_retention_job_forgets_attempts_idle_sessions_and_old_links(any_world: World, browser: Browser,
                                                                             clock: ManualClock) -> None:
    world = any_world
    await signed_in(world, world.admin, browser)  # a session and a used link
    await link_from_chat(world.leader)  # an unused link
    assert (await browser.get(f"{world.base}/web/vao/{'x' * 43}"))[0] == 410  # a refused attempt
    producers = Producers(sessions=world.app.sessions, clock=clock, lessons=world.app.lessons,
                          catalog=world.app.catalog, policy=ReminderPolicy(zone=world.app.settings.zone))
    assert (await prune(producers))["web_rows"] == 0  # nothing is old yet
    clock.advance(minutes=15)
    assert (await prune(producers))["web_rows"] == 1  # the attempt's window has passed
    assert await rows(world.app, WebSignInAttempt) == []
    clock.advance(hours=8)
    assert (await prune(producers))["web_rows"] == 1  # the session, idle for eight hours
    assert await rows(world.app, WebSession) == []
    clock.advance(days=1)
    assert (await prune(producers))["web_rows"] == 2  # both links, expired for a day
    assert await rows(world.app, WebLink) == []
    assert (await prune(producers))["web_rows"] == 0
