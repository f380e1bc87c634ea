"""The Zalo Bot Platform adapter, client and outbox transport against the fake Bot API
(tests/fakes/zalo_bot_api.py) over HTTP on 127.0.0.1, with the real engine and database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from bot.app import App
from bot.channels.zalo import ZaloBotChannel, ZaloBotClient, ZaloBotError, ZaloBotTransport
from bot.core.messages import Document, Image, Option, Text
from bot.delivery.transport import OutboundMessage, Pacing, Recipient, Result
from bot.media import MediaStore
from bot.web import create_web_app, start_web
from storage.models import Identity, LessonProgress, Person, ProgressStatus
from tests.contract.drivers import numbered_options, settle
from tests.fakes.zalo_bot_api import BOT_ID, FakeZaloBot, post_webhook

USER = "6ede9afa66b88fe6d6a9"
SECRET = "webhook-secret-0123456789"


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZaloBot]:
    async with FakeZaloBot() as server:
        yield server


def make_channel(app: App, zalo: FakeZaloBot, **kwargs: object) -> ZaloBotChannel:
    client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
    return ZaloBotChannel(client=client, conversation=app.conversation, catalog=app.catalog,
                          retry_delay=0.01, backoff=(0.01, 0.05), **kwargs)  # type: ignore[arg-type]


@asynccontextmanager
async def polling(channel: ZaloBotChannel) -> AsyncIterator[ZaloBotChannel]:
    task = asyncio.create_task(channel.run_polling(poll_timeout=1))
    try:
        yield channel
    finally:
        await channel.stop()
        await asyncio.wait_for(task, 10)
        await channel.close()


@asynccontextmanager
async def web(channel: ZaloBotChannel | None, media: MediaStore | None = None) -> AsyncIterator[str]:
    runner = await start_web(create_web_app(channels=[channel] if channel else [], media=media), host="127.0.0.1", port=0)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def say(zalo: FakeZaloBot, bot: ZaloBotChannel, text: str, user: str = USER, **kwargs: object) -> str:
    zalo.push_text(user, text, **kwargs)
    await settle(zalo, bot)
    return zalo.last_text(user)


async def choose(zalo: FakeZaloBot, bot: ZaloBotChannel, typed: str) -> str:
    return await say(zalo, bot, typed)


async def test_a_resident_learns_over_zalo_by_typing_numbers_and_words_without_diacritics(
    ward: App, zalo: FakeZaloBot
) -> None:
    lesson = ward.lessons.first
    async with polling(make_channel(ward, zalo)) as bot:
        # Long polling: getMe, deleteWebhook, then getUpdates answered 408 when nothing comes.
        await zalo.wait_for(lambda: any(c.status == 408 for c in zalo.calls_to("getUpdates")))
        assert [c.method for c in zalo.calls[:2]] == ["getMe", "deleteWebhook"]
        assert bot.bot_id == BOT_ID

        text = await say(zalo, bot, "/start g_DEMO-TDP03")
        assert "Bạn có đồng ý không?" in text and text.endswith("(Gõ 1 hoặc 2 rồi gửi.)")
        assert numbered_options(text) == ["✅ Đồng ý", "Không đồng ý"]
        assert "Lan Nguyễn" in await choose(zalo, bot, "1")
        assert "Tổ dân phố 3" in await choose(zalo, bot, "dung roi")  # the label, typed without diacritics
        await choose(zalo, bot, "Đúng rồi")
        assert lesson.cards[0].text in await choose(zalo, bot, "hoc tiep")
        for _ in range(len(lesson.cards) - 1):
            await choose(zalo, bot, "tiep")  # Tiếp ▶ (cards that hold a numbered list letter their options)
        assert lesson.quiz.questions[0].text in await choose(zalo, bot, "lam bai kiem tra")
        for question in lesson.quiz.questions:
            await choose(zalo, bot, "abc"[question.answer_index])  # answers are lettered
        assert "hoàn thành" in zalo.last_text(USER)
        assert f"1/{len(ward.lessons)}" in await say(zalo, bot, "/tiendo")

    # Nothing was edited or refused; every message fits Zalo's limit.
    assert all(c.status in (200, 408) for c in zalo.calls), [c for c in zalo.calls if c.status not in (200, 408)]
    assert all(1 <= len(m.text) <= 2000 for m in zalo.sent)
    async with ward.sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.channel == "zalo"))).one()
        person = await session.get(Person, identity.person_id)
        [progress] = (await session.exec(select(LessonProgress))).all()
    assert identity.external_id == USER and person is not None and person.display_name == "Lan Nguyễn"
    assert (progress.status, progress.score, progress.attempts) == (ProgressStatus.COMPLETED, 3, 1)


async def test_stickers_photos_and_withheld_content_get_a_text_only_answer(ward: App, zalo: FakeZaloBot) -> None:
    async with polling(make_channel(ward, zalo)) as bot:
        await say(zalo, bot, "/start", name_field="first_name")  # one copy of the docs says first_name
        assert "Lan Nguyễn" in await choose(zalo, bot, "1")
        for push in (zalo.push_sticker, zalo.push_image, zalo.push_unsupported):
            push(USER)
            await settle(zalo, bot)
            assert "chỉ đọc được tin nhắn chữ" in zalo.last_text(USER)


async def test_repeats_echoes_and_group_chats_are_ignored(ward: App, zalo: FakeZaloBot) -> None:
    async with polling(make_channel(ward, zalo)) as bot:
        event = zalo.push_text(USER, "/start")
        zalo.push(event)  # the same event delivered twice
        zalo.push(zalo.text_event("echo-user", "Xin chào", is_bot=True))
        zalo.push(zalo.text_event(BOT_ID, "Xin chào"))  # our own message, from our own id
        zalo.push(zalo.text_event("group-user", "/start", chat_type="GROUP"))
        await settle(zalo, bot)
    assert len(zalo.chat(USER)) == 1 and bot.received == 5
    assert {m.chat_id for m in zalo.sent} == {USER}
    async with ward.sessions() as session:
        assert [i.external_id for i in (await session.exec(select(Identity))).all()] == [USER]


async def test_webhook_bodies_wrapped_or_flat_and_refused_without_the_right_secret(ward: App, zalo: FakeZaloBot) -> None:
    channel = make_channel(ward, zalo, webhook_secret=SECRET, webhook_url="https://bot.example/webhooks/zalo-bot")
    running = asyncio.create_task(channel.run())
    try:
        await zalo.wait_for(lambda: zalo.webhook["url"])
        assert zalo.webhook["url"] == "https://bot.example/webhooks/zalo-bot" and zalo.webhook["secret_token"] == SECRET
        async with web(channel) as base:
            hook = base + "/webhooks/zalo-bot"
            wrapped = zalo.text_event(USER, "/start")
            assert await post_webhook(hook, wrapped, secret=SECRET) == 200
            await channel.tasks.drain()
            assert "Bạn có đồng ý không?" in zalo.last_text(USER)
            assert await post_webhook(hook, zalo.text_event(USER, "1"), secret=SECRET, wrapped=False) == 200
            await channel.tasks.drain()
            assert "Lan Nguyễn" in zalo.last_text(USER)
            assert await post_webhook(hook, wrapped, secret=SECRET) == 200  # Zalo retries: dropped
            # Missing or wrong secret: refused before anything is read.
            assert await post_webhook(hook, zalo.text_event("intruder", "/start"), secret=None) == 403
            assert await post_webhook(hook, zalo.text_event("intruder", "/start"), secret=SECRET[:-1] + "x") == 403
            assert await post_webhook(hook, zalo.text_event("intruder", "/start"), secret="") == 403
            async with aiohttp.ClientSession() as http:
                async with http.post(hook, data=b"{not json", headers={"X-Bot-Api-Secret-Token": SECRET}) as r:
                    assert r.status == 400
            await channel.tasks.drain()
    finally:
        await channel.stop()
        await asyncio.wait_for(running, 10)
        await channel.close()
    assert len(zalo.chat(USER)) == 2 and zalo.chat("intruder") == []
    async with ward.sessions() as session:
        assert [i.external_id for i in (await session.exec(select(Identity))).all()] == [USER]


async def test_long_text_is_split_on_paragraph_boundaries(ward: App, zalo: FakeZaloBot) -> None:
    paragraphs = [f"Đoạn {n}: " + " ".join(["chữ"] * 70) for n in range(10)]  # ~290 characters each
    channel = make_channel(ward, zalo)
    await channel.render(USER, [Text("\n\n".join(paragraphs))])
    await channel.close()
    pieces = [m.text for m in zalo.chat(USER)]
    bodies, marks = zip(*(p.rsplit("\n", 1) for p in pieces), strict=True)
    assert marks == ("(1/2)", "(2/2)")  # each piece says where it stands
    assert [len(b.split("\n\n")) for b in bodies] == [6, 4]  # 6 whole paragraphs fit in 2,000
    assert all(len(p) <= 2000 for p in pieces) and "\n\n".join(bodies) == "\n\n".join(paragraphs)


async def test_images_go_by_url_from_our_own_endpoint_else_as_a_text(ward: App, zalo: FakeZaloBot, tmp_path: Path) -> None:
    picture = tmp_path / "chung-nhan.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    media = MediaStore(tmp_path / "media", clock=ward.clock)
    async with web(None, media) as base:
        media.public_base_url = base  # PUBLIC_BASE_URL, known once the server listens
        channel = make_channel(ward, zalo, media=media)
        assert channel.capabilities.images
        await channel.render(USER, [Image(picture, "Giấy chứng nhận"), Document(picture, "Báo cáo")])
        photo, document = zalo.chat(USER)
        assert photo.photo is not None and photo.photo.startswith(f"{base}/media/") and photo.text == "Giấy chứng nhận"
        assert document.text.startswith("Báo cáo\n\n📄") and f"{base}/media/" in document.text
        async with aiohttp.ClientSession() as http, http.get(photo.photo) as response:
            assert response.status == 200 and await response.read() == picture.read_bytes()
            assert response.headers["Content-Type"] == "image/png"
        await channel.close()

    without = make_channel(ward, zalo, media=MediaStore(tmp_path / "media", clock=ward.clock))  # no PUBLIC_BASE_URL
    assert not without.capabilities.images
    await without.render("other", [Image(picture, "Giấy chứng nhận"), Document(picture, "Báo cáo")])
    await without.close()
    image_text, document_text = (m.text for m in zalo.chat("other"))
    assert image_text.startswith("Giấy chứng nhận\n\n🖼") and "Zalo chưa hiển thị được" in image_text
    assert "chưa gửi được tệp" in document_text and all(m.photo is None for m in zalo.chat("other"))


@pytest.mark.parametrize("in_status", [True, False], ids=["error-in-http-status", "error-only-in-body"])
async def test_a_rate_limited_or_failed_reply_is_sent_once_more(ward: App, zalo: FakeZaloBot, in_status: bool) -> None:
    zalo.errors_in_status = in_status  # whether Zalo repeats the code as HTTP status is unconfirmed
    async with polling(make_channel(ward, zalo)) as bot:
        zalo.fail_next("sendMessage", 429, "Quota exceeded", retry_after=0)
        assert "Bạn có đồng ý không?" in await say(zalo, bot, "/start")
        zalo.fail_next("sendMessage", 502, "Bad gateway")
        assert "Lan Nguyễn" in await say(zalo, bot, "1")
        zalo.fail_next("sendMessage", 502, "Bad gateway", times=2)  # twice: this reply is given up
        await say(zalo, bot, "Đúng rồi")
        assert "Tổ dân phố" in await say(zalo, bot, "/doito")  # and the next one gets through
    errors = [c.params.get("text") is not None and not c.ok for c in zalo.calls_to("sendMessage")]
    assert errors.count(True) == 4


async def test_polling_survives_errors_and_deletes_a_webhook_first(ward: App, zalo: FakeZaloBot, caplog: pytest.LogCaptureFixture) -> None:
    zalo.webhook["url"] = "https://old.example/hook"  # left over: getUpdates would answer 409
    zalo.fail_next("getMe", 502, "Bad gateway")
    zalo.fail_next("getUpdates", 500, "Internal error", times=2)
    async with polling(make_channel(ward, zalo)) as bot:
        assert "Bạn có đồng ý không?" in await say(zalo, bot, "/start")
        zalo.webhook["url"] = "https://someone-else.example/hook"  # set meanwhile: the next poll gets 409
        await zalo.wait_for(lambda: any(c.status == 409 for c in zalo.calls_to("getUpdates")))
        assert "Lan Nguyễn" in await say(zalo, bot, "1")
    assert [c.status for c in zalo.calls_to("deleteWebhook")] == [200, 200]
    assert zalo.webhook["url"] == "" and [c.status for c in zalo.calls_to("getMe")] == [502, 200, 200]
    assert sum(1 for c in zalo.calls_to("getUpdates") if c.status == 500) == 2
    assert "Zalo getUpdates failed" in caplog.text and zalo.token not in caplog.text


async def test_the_token_never_reaches_the_logs_or_error_messages(ward: App, zalo: FakeZaloBot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
    assert (await client.get_me())["id"] == BOT_ID
    wrong = ZaloBotClient(token="99999:another-secret-token", api_url=zalo.url)
    with pytest.raises(ZaloBotError) as rejected:
        await wrong.get_me()
    assert rejected.value.code == 401 and "another-secret-token" not in str(rejected.value)
    closed_port = ZaloBotClient(token=zalo.token, api_url="http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ZaloBotError) as unreachable:
        await closed_port.send_message(USER, "x")
    assert unreachable.value.code == 0 and unreachable.value.__cause__ is None
    assert unreachable.value.__suppress_context__
    zalo.fail_next("sendMessage", 500, "Internal error", times=4)
    async with polling(make_channel(ward, zalo)) as bot:
        await say(zalo, bot, "/start")  # the reply fails twice and is dropped with a warning
    for c in (client, wrong, closed_port):
        await c.close()
    assert "HTTP Request: POST" in caplog.text  # httpx did log its request lines, redacted
    assert "reply to a Zalo chat dropped" in caplog.text
    assert zalo.token not in caplog.text and "another-secret-token" not in caplog.text
    assert zalo.token.split(":")[1] not in caplog.text


async def test_outbox_transport_maps_zalo_answers_to_deliveries(ward: App, zalo: FakeZaloBot) -> None:
    client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
    transport = ZaloBotTransport(client=client, catalog=ward.catalog, pacing=Pacing(per_second=5))
    who = Recipient(USER)
    menu = OutboundMessage("Đến giờ học rồi!", options=(Option("📖 Học tiếp", "next"), Option("🔕 Tắt", "x:off")))
    assert (await transport.deliver(who, menu)).result == Result.SENT
    assert numbered_options(zalo.last_text(USER)) == ["📖 Học tiếp", "🔕 Tắt"]
    photo = OutboundMessage("Tin của phường", image="https://ward.example/poster.jpg")
    assert (await transport.deliver(who, photo)).result == Result.SENT
    assert (zalo.chat(USER)[-1].photo, zalo.chat(USER)[-1].text) == ("https://ward.example/poster.jpg", "Tin của phường")
    local = OutboundMessage("Tin của phường", image="/nowhere/poster.jpg")  # no PUBLIC_BASE_URL: said in text
    assert (await transport.deliver(who, local)).result == Result.SENT
    assert "Zalo chưa hiển thị được" in zalo.last_text(USER)

    zalo.fail_next("sendMessage", 429, "Quota exceeded", retry_after=7)
    limited = await transport.deliver(who, OutboundMessage("x"))
    assert (limited.result, limited.retry_after) == (Result.RETRY_AFTER, 7)
    zalo.fail_next("sendMessage", 429, "Quota exceeded")
    assert (await transport.deliver(who, OutboundMessage("x"))).retry_after == 5.0  # no hint: the default
    zalo.fail_next("sendMessage", 502, "Bad gateway")
    assert (await transport.deliver(who, OutboundMessage("x"))).result == Result.TRANSIENT
    zalo.fail_next("sendMessage", 400, "Bad request: chat not found")
    failed = await transport.deliver(who, OutboundMessage("x"))
    assert failed.result == Result.FAILED and "chat not found" in failed.reason
    await client.close()
    revoked = ZaloBotTransport(client=ZaloBotClient(token="1:revoked", api_url=zalo.url), catalog=ward.catalog,
                               pacing=Pacing(per_second=5))
    assert (await revoked.deliver(who, OutboundMessage("x"))).result == Result.FAILED
    await revoked.client.close()
    down = ZaloBotTransport(client=ZaloBotClient(token="1:x", api_url="http://127.0.0.1:9"), catalog=ward.catalog,
                            pacing=Pacing(per_second=5))
    assert (await down.deliver(who, OutboundMessage("x"))).result == Result.TRANSIENT
    await down.client.close()


async def test_the_client_speaks_every_method_the_adapter_needs(zalo: FakeZaloBot) -> None:
    client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
    assert (await client.set_webhook("https://bot.example/webhooks/zalo-bot", SECRET))["url"].startswith("https://")
    assert (await client.get_webhook_info())["url"] == "https://bot.example/webhooks/zalo-bot"
    with pytest.raises(ZaloBotError) as conflict:
        await client.get_updates(timeout=0)
    assert conflict.value.code == 409
    assert (await client.delete_webhook())["url"] == ""
    assert await client.get_updates(timeout=0) is None  # 408: no update, not an error
    zalo.push_text(USER, "chào")
    assert (await client.get_updates(timeout=0))["message"]["text"] == "chào"  # type: ignore[index]
    await client.send_chat_action(USER)
    sent = await client.send_message(USER, "Xin chào")
    assert len(sent["message_id"]) == 20
    zalo.errors_in_status = False  # an error only in the body (HTTP 200) is still an error
    with pytest.raises(ZaloBotError) as too_long:
        await client.send_message(USER, "a" * 2001)
    assert too_long.value.code == 400 and not too_long.value.transient
    await client.close()
    assert [c.content_type for c in zalo.calls] == ["application/json"] * len(zalo.calls)


async def test_a_number_typed_as_a_unicode_digit_picks_the_option(ward: App, zalo: FakeZaloBot) -> None:
    """"①" (a phone keyboard's circled digit) once crashed the update (int("①")); any Unicode
    way of writing a number picks that option."""
    async with polling(make_channel(ward, zalo)) as bot:
        await say(zalo, bot, "/start g_DEMO-TDP03")
        assert "Lan Nguyễn" in await choose(zalo, bot, "①")  # consent: 1
        assert "Tổ dân phố 3" in await choose(zalo, bot, "１")  # full-width 1: the name is right
        assert "Tổ dân phố 3" in await choose(zalo, bot, "¹")  # superscript 1: the group is right
    async with ward.sessions() as session:
        person = (await session.exec(select(Person))).one()
    assert person.display_name == "Lan Nguyễn" and person.group_id is not None
