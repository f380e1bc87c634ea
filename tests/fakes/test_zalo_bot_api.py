"""Self-tests for the fake Zalo Bot Platform server, with raw HTTP requests (httpx)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from tests.fakes.zalo_bot_api import BOT_ID, FakeZaloBot, post_webhook

USER = "6ede9afa66b88fe6d6a9"


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZaloBot]:
    async with FakeZaloBot() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def url(zalo: FakeZaloBot, method: str, token: str | None = None) -> str:
    return f"{zalo.url}/bot{token or zalo.token}/{method}"


async def test_get_me_and_an_unknown_token(zalo: FakeZaloBot, http: httpx.AsyncClient) -> None:
    answer = await http.post(url(zalo, "getMe"), json={})
    assert answer.status_code == 200 and answer.json()["result"]["id"] == BOT_ID
    answer = await http.post(url(zalo, "getMe", "999:wrong"), json={})
    assert answer.status_code == 401
    assert answer.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert (await http.post(url(zalo, "getme"), json={})).status_code == 404  # names are case-sensitive


async def test_get_updates_hands_out_one_update_then_408_after_the_timeout(zalo: FakeZaloBot, http: httpx.AsyncClient) -> None:
    zalo.push_text(USER, "một")
    zalo.push_text(USER, "hai")
    first = (await http.post(url(zalo, "getUpdates"), json={"timeout": 0})).json()
    assert first["ok"] and first["result"]["event_name"] == "message.text.received"
    assert first["result"]["message"]["text"] == "một" and zalo.pending == 1
    second = (await http.post(url(zalo, "getUpdates"), data={"timeout": "0"})).json()  # a form body
    assert second["result"]["message"]["text"] == "hai"
    empty = await http.post(url(zalo, "getUpdates"), json={"timeout": "0"})
    assert empty.status_code == 408 and empty.json()["error_code"] == 408
    assert zalo.handed_out == 2
    assert [c.content_type for c in zalo.calls_to("getUpdates")] == [
        "application/json", "application/x-www-form-urlencoded", "application/json"]


async def test_a_waiting_long_poll_answers_as_soon_as_an_update_is_pushed(zalo: FakeZaloBot, http: httpx.AsyncClient) -> None:
    poll = asyncio.create_task(http.post(url(zalo, "getUpdates"), json={"timeout": 10}))
    await zalo.wait_for(lambda: zalo.waiting_polls == 1, timeout=5)
    zalo.push_text(USER, "xin chào")
    answer = await asyncio.wait_for(poll, 5)
    assert answer.json()["result"]["message"]["text"] == "xin chào"


async def test_send_message_checks_the_text_length_and_records_the_message(zalo: FakeZaloBot, http: httpx.AsyncClient) -> None:
    answer = (await http.post(url(zalo, "sendMessage"), json={"chat_id": USER, "text": "ă" * 2000})).json()
    assert answer["ok"] and len(answer["result"]["message_id"]) == 20 and answer["result"]["date"] > 10**12
    for text in ("", "a" * 2001):
        bad = await http.post(url(zalo, "sendMessage"), json={"chat_id": USER, "text": text})
        assert bad.status_code == 400 and not bad.json()["ok"]
    assert (await http.post(url(zalo, "sendMessage"), json={"text": "x"})).status_code == 400  # no chat_id
    photo = await http.post(url(zalo, "sendPhoto"), json={"chat_id": USER, "photo": "https://x.example/a.png",
                                                           "caption": "Ảnh"})
    assert photo.json()["ok"]
    action = (await http.post(url(zalo, "sendChatAction"), json={"chat_id": USER, "action": "typing"})).json()
    assert action == {"ok": True}
    assert [(s.text, s.photo) for s in zalo.chat(USER)] == [("ă" * 2000, None), ("Ảnh", "https://x.example/a.png")]


async def test_webhook_settings_and_get_updates_conflict(zalo: FakeZaloBot, http: httpx.AsyncClient) -> None:
    bad = await http.post(url(zalo, "setWebhook"), json={"url": "http://insecure.example", "secret_token": "12345678"})
    assert bad.status_code == 400
    short = await http.post(url(zalo, "setWebhook"), json={"url": "https://bot.example/h", "secret_token": "short"})
    assert short.status_code == 400
    ok = (await http.post(url(zalo, "setWebhook"), json={"url": "https://bot.example/h", "secret_token": "s" * 8})).json()
    assert ok["result"]["url"] == "https://bot.example/h"
    info = (await http.post(url(zalo, "getWebhookInfo"), json={})).json()["result"]
    assert info["url"] == "https://bot.example/h" and "secret_token" not in info
    conflict = await http.post(url(zalo, "getUpdates"), json={"timeout": 0})
    assert conflict.status_code == 409 and conflict.json()["ok"] is False
    assert (await http.post(url(zalo, "deleteWebhook"), json={})).json()["result"]["url"] == ""
    assert (await http.post(url(zalo, "getUpdates"), json={"timeout": 0})).status_code == 408


async def test_injected_errors_in_the_status_or_only_in_the_body(zalo: FakeZaloBot, http: httpx.AsyncClient) -> None:
    zalo.fail_next("sendMessage", 429, "Quota exceeded", retry_after=3)
    limited = await http.post(url(zalo, "sendMessage"), json={"chat_id": USER, "text": "x"})
    assert limited.status_code == 429 and limited.json()["parameters"] == {"retry_after": 3}
    zalo.errors_in_status = False
    zalo.fail_next("sendMessage", 502, "Bad gateway")
    failed = await http.post(url(zalo, "sendMessage"), json={"chat_id": USER, "text": "x"})
    assert failed.status_code == 200 and failed.json()["error_code"] == 502
    zalo.rate_limit(1)
    assert (await http.post(url(zalo, "sendMessage"), json={"chat_id": USER, "text": "a"})).json()["ok"]
    assert (await http.post(url(zalo, "sendMessage"), json={"chat_id": USER, "text": "b"})).json()["error_code"] == 429
    assert [s.text for s in zalo.chat(USER)] == ["a"]


async def test_post_webhook_sends_wrapped_or_flat_bodies_with_or_without_the_secret(zalo: FakeZaloBot) -> None:
    received: list[tuple[str | None, dict]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Bot-Api-Secret-Token"), await request.json()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        target = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        event = zalo.text_event(USER, "chào")
        assert await post_webhook(target, event, secret="s3cret-value") == 200
        assert await post_webhook(target, event, secret=None, wrapped=False) == 200
    finally:
        await runner.cleanup()
    assert received[0] == ("s3cret-value", {"ok": True, "result": event})
    assert received[1] == (None, event)
    assert event["message"]["from"] == {"id": USER, "is_bot": False, "display_name": "Lan Nguyễn"}
