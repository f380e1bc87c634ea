"""Self-tests for the fake Zalo OA server, with raw HTTP requests (httpx)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from tests.fakes.zalo_oa_api import FakeZaloOA

USER = "2468458835296197922"


@pytest.fixture
async def oa() -> AsyncIterator[FakeZaloOA]:
    async with FakeZaloOA() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def cs(http: httpx.AsyncClient, oa: FakeZaloOA, token: str | None, message: dict) -> dict:
    headers = {"access_token": token} if token else {}
    answer = await http.post(f"{oa.url}/v3.0/oa/message/cs", headers=headers,
                             json={"recipient": {"user_id": USER}, "message": message})
    assert answer.status_code == 200  # OA errors travel in the body
    return answer.json()


async def refresh(http: httpx.AsyncClient, oa: FakeZaloOA, token: str, *, secret: str | None = "default") -> httpx.Response:
    headers = {} if secret is None else {"secret_key": oa.app_secret if secret == "default" else secret}
    return await http.post(f"{oa.url}/v4/oa/access_token", headers=headers,
                           data={"refresh_token": token, "app_id": oa.app_id, "grant_type": "refresh_token"})


async def test_consultation_messages_need_a_valid_token_and_respect_limits(oa: FakeZaloOA, http: httpx.AsyncClient) -> None:
    assert (await cs(http, oa, None, {"text": "x"}))["error"] == -216
    assert (await cs(http, oa, "made-up", {"text": "x"}))["error"] == -216
    token = oa.issue_token()
    ok = await cs(http, oa, token, {"text": "Xin chào!"})
    assert ok["error"] == 0 and ok["message"] == "Success" and ok["data"]["user_id"] == USER
    assert (await cs(http, oa, token, {"text": "a" * 2001}))["error"] == -201
    six = [{"title": str(i), "type": "oa.query.hide", "payload": f"#{i}"} for i in range(6)]
    assert (await cs(http, oa, token, {"text": "x", "attachment": {"payload": {"buttons": six}}}))["error"] == -201
    five = {"text": "Chọn", "attachment": {"type": "template", "payload": {"buttons": six[:5]}}}
    assert (await cs(http, oa, token, five))["error"] == 0
    assert oa.texts(USER) == ["Xin chào!", "Chọn"] and len(oa.buttons(USER)) == 5
    oa.outside_window.add(USER)
    assert (await cs(http, oa, token, {"text": "x"}))["error"] == -230
    oa.expire_tokens()
    assert (await cs(http, oa, token, {"text": "x"}))["error"] == -216


async def test_refresh_rotates_the_refresh_token_and_needs_the_secret_key(oa: FakeZaloOA, http: httpx.AsyncClient) -> None:
    assert (await refresh(http, oa, "refresh-0", secret=None)).status_code == 404
    assert (await refresh(http, oa, "refresh-0", secret="wrong")).json()["error"] == -14002
    answer = (await refresh(http, oa, "refresh-0")).json()
    assert answer["expires_in"] == "90000" and answer["refresh_token"] != "refresh-0"
    assert (await cs(http, oa, answer["access_token"], {"text": "ok"}))["error"] == 0
    reused = (await refresh(http, oa, "refresh-0")).json()
    assert reused["error"] == -14014 and "access_token" not in reused
    assert (await refresh(http, oa, answer["refresh_token"])).json()["access_token"]
    assert oa.refreshes == 2


async def test_injected_failures(oa: FakeZaloOA, http: httpx.AsyncClient) -> None:
    token = oa.issue_token()
    oa.fail_next(-32)
    assert (await cs(http, oa, token, {"text": "x"}))["error"] == -32
    oa.fail_next(503)
    answer = await http.post(f"{oa.url}/v3.0/oa/message/cs", headers={"access_token": token},
                             json={"recipient": {"user_id": USER}, "message": {"text": "x"}})
    assert answer.status_code == 503


async def test_signed_events_follow_the_sdk_formula(oa: FakeZaloOA) -> None:
    seen: list[tuple[str | None, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((request.headers.get("X-ZEvent-Signature"), await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/oa", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        target = f"http://127.0.0.1:{runner.addresses[0][1]}/oa"
        event = oa.text_event(USER, "Xin chào", timestamp="154390853474")
        for kwargs in ({}, {"mac_prefix": False}, {"signature": "wrong"}, {"signature": "missing"}):
            assert await oa.post_event(target, event, **kwargs) == 200
    finally:
        await runner.cleanup()
    raw = seen[0][1]
    assert json.loads(raw) == event and isinstance(json.loads(raw)["timestamp"], str)
    expected = hashlib.sha256((oa.app_id + raw.decode() + "154390853474" + oa.secret_key).encode()).hexdigest()
    assert seen[0][0] == f"mac={expected}" and seen[1][0] == expected
    assert seen[2][0] not in (f"mac={expected}", None) and seen[3][0] is None
