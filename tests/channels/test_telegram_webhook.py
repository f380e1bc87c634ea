"""Telegram by webhook (issue 12 §2): the fake Bot API posts each update to the bot's web
endpoint with the secret header, as Telegram does, and redelivers whatever is not answered 2xx.
A missing or wrong secret is refused and nothing is handled; a repeat changes nothing; the
``--role web`` process receives by webhook and refuses to start on long polling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from sqlmodel import select

from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.web import create_web_app, start_web
from handlers import COMMANDS
from storage.models import HandledEvent, Identity
from tests.clocked import command, environment
from tests.conftest import START
from tests.fakes.telegram_api import FakeTelegram
from tests.support import free_port

USER = 515151
SECRET = "s3cret-Webhook_token"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@asynccontextmanager
async def webhook_bot(app: App) -> AsyncIterator[tuple[FakeTelegram, TelegramChannel, str]]:
    """The fake Bot API, the real adapter receiving by webhook on the bot's web endpoint
    (127.0.0.1, a free port), and that endpoint's URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeTelegram() as tg:
        channel = TelegramChannel(token=tg.token, api_url=tg.url, conversation=app.conversation,
                                  catalog=app.catalog, commands=COMMANDS, webhook_url=f"{base}/webhooks/telegram",
                                  webhook_secret=SECRET)
        web = await start_web(create_web_app(channels=[channel]), host="127.0.0.1", port=port)
        receiving = asyncio.create_task(channel.run())
        try:
            await tg.wait_for(lambda t: t.calls_to("setWebhook"), timeout=10)
            yield tg, channel, base
        finally:
            await channel.stop()
            await asyncio.wait_for(receiving, timeout=10)
            await channel.close()
            await web.cleanup()


async def _identities(app: App) -> list[Identity]:
    async with app.sessions() as session:
        return list((await session.exec(select(Identity))).all())


async def test_a_resident_is_answered_by_webhook(ward: App) -> None:
    async with webhook_bot(ward) as (tg, channel, _):
        [registered] = tg.calls_to("setWebhook")
        assert registered.params["url"].endswith("/webhooks/telegram")
        assert tg.webhook_secret == SECRET
        tg.push_text(USER, "/start g_DEMO-TDP03", first_name="Lan")
        await tg.wait_for(lambda t: t.last_message(USER) is not None, timeout=10)
        await tg.wait_idle(USER)
        assert "Bạn có đồng ý không?" in tg.last_message(USER).text  # type: ignore[union-attr]
        assert tg.webhook_answers == [200] and channel.received == 1
        assert not tg.calls_to("getUpdates")  # no polling beside the webhook


async def test_a_missing_or_wrong_secret_is_refused_and_nothing_is_handled(ward: App) -> None:
    async with webhook_bot(ward) as (tg, channel, base):
        update = {"update_id": 900_000_001, "message": {
            "message_id": 1, "date": 1_700_000_000, "chat": {"id": USER, "type": "private", "first_name": "Kẻ lạ"},
            "from": {"id": USER, "is_bot": False, "first_name": "Kẻ lạ"}, "text": "/start"}}
        url = f"{base}/webhooks/telegram"
        async with aiohttp.ClientSession() as http:
            statuses = []
            for headers in ({}, {HEADER: "wrong"}, {HEADER: SECRET[:-1]}, {HEADER: SECRET + "x"}):
                async with http.post(url, json=update, headers=headers) as answer:
                    statuses.append(answer.status)
            async with http.post(url, data=b"{not json", headers={HEADER: SECRET}) as answer:
                statuses.append(answer.status)
            async with http.post(url, json={"no": "update"}, headers={HEADER: SECRET}) as answer:
                statuses.append(answer.status)
        assert statuses == [403, 403, 403, 403, 400, 400]
        assert channel.received == 0 and await _identities(ward) == []
        assert not tg.calls_to("sendMessage")


async def test_an_update_of_a_kind_the_bot_does_not_serve_is_answered_and_left_alone(ward: App) -> None:
    """Telegram may post kinds the bot never asked for (an edited message): answered 200 at
    once, so it is not posted again, and nothing is handled or stored."""
    async with webhook_bot(ward) as (tg, channel, base):
        edited = {"update_id": 900_000_002, "edited_message": {
            "message_id": 1, "date": 1_700_000_000, "edit_date": 1_700_000_001,
            "chat": {"id": USER, "type": "private", "first_name": "Lan"},
            "from": {"id": USER, "is_bot": False, "first_name": "Lan"}, "text": "/start"}}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/webhooks/telegram", json=edited, headers={HEADER: SECRET}) as answer:
                status = answer.status
        assert status == 200 and channel.received == 1
        assert await _identities(ward) == [] and not tg.calls_to("sendMessage")


async def test_an_update_posted_twice_is_handled_once(ward: App) -> None:
    async with webhook_bot(ward) as (tg, channel, base):
        tg.push_text(USER, "/start g_DEMO-TDP03", first_name="Lan")
        await tg.wait_for(lambda t: t.last_message(USER) is not None, timeout=10)
        await tg.wait_idle(USER)
        [delivered] = [c for c in tg.calls_to("sendMessage")]
        first = delivered.params["text"]
        # Telegram posts the same update again (our 200 was lost on the way, say).
        update = {"update_id": 100_000_001, "message": {
            "message_id": 1, "date": 1_700_000_000, "chat": {"id": USER, "type": "private", "first_name": "Lan"},
            "from": {"id": USER, "is_bot": False, "first_name": "Lan"}, "text": "/start g_DEMO-TDP03",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/webhooks/telegram", data=json.dumps(update),
                                 headers={HEADER: SECRET, "Content-Type": "application/json"}) as answer:
                assert answer.status == 200
        assert len(tg.calls_to("sendMessage")) == 1 and "Bạn có đồng ý không?" in first
        async with ward.sessions() as session:
            events = (await session.exec(select(HandledEvent))).all()
        assert len(events) == 1 and channel.received == 2


async def test_the_web_role_receives_by_webhook_and_refuses_long_polling(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeTelegram() as tg:
        common = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", "TELEGRAM_BOT_TOKEN": tg.token,
                  "TELEGRAM_API_URL": tg.url, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port)}
        # Without a webhook the web role would poll beside its replicas: it refuses to start.
        refused = await asyncio.create_subprocess_exec(
            *command(START, "run", "--role", "web"), env=environment(**common), cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(refused.communicate(), timeout=60)
        assert refused.returncode != 0 and "TELEGRAM_WEBHOOK_SECRET" in (out + err).decode()
        assert not tg.calls_to("getUpdates")

        web = await asyncio.create_subprocess_exec(
            *command(START, "run", "--role", "web"), cwd=tmp_path,
            env=environment(**common, TELEGRAM_WEBHOOK_SECRET=SECRET, PUBLIC_BASE_URL=base),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            await tg.wait_for(lambda t: t.webhook_secret == SECRET, timeout=60)
            async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as answer:
                assert answer.status == 200
            tg.push_text(USER, "/start g_DEMO-TDP03", first_name="Lan")
            await tg.wait_for(lambda t: t.last_message(USER) is not None, timeout=30)
            assert "Bạn có đồng ý không?" in tg.last_message(USER).text  # type: ignore[union-attr]
            await tg.wait_for(lambda t: t.webhook_answers, timeout=30)  # answered once committed
            assert tg.webhook_answers == [200] and not tg.calls_to("getUpdates")
        finally:
            web.terminate()
            await asyncio.wait_for(web.wait(), timeout=30)
