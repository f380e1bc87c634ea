"""Self-tests for the fake Bot API server, driven by the real aiogram Bot and Dispatcher."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import pytest_asyncio
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter,
                                TelegramServerError)
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (BotCommand, BufferedInputFile, CallbackQuery, FSInputFile, InlineKeyboardButton,
                           InlineKeyboardMarkup, Message)

from tests.fakes.telegram_api import FakeTelegram

pytestmark = pytest.mark.asyncio
USER = 42


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)]
                                                 for t, d in pairs])


class FastCloseSession(AiohttpSession):
    """AiohttpSession.close() sleeps 0.25 s to let TLS connections close; plain HTTP to
    127.0.0.1 has none, and skipping it keeps this file fast."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(tg: FakeTelegram, **kwargs) -> Bot:
    session = FastCloseSession(api=TelegramAPIServer.from_base(tg.url))
    return Bot(tg.token, session=session, **kwargs)


@pytest_asyncio.fixture
async def tg():
    async with FakeTelegram() as server:
        server.add_user(USER)
        yield server


@pytest_asyncio.fixture
async def bot(tg):
    bot = make_bot(tg)
    yield bot
    await bot.session.close()


async def test_send_message_is_in_chat(tg, bot):
    sent = await bot.send_message(USER, "Xin chào", reply_markup=keyboard(("Bắt đầu", "go:1")))
    assert sent.message_id == 1 and sent.chat.id == USER and sent.from_user.is_bot
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "go:1"
    [message] = tg.chat(USER)
    assert (message.text, message.kind, message.edited) == ("Xin chào", "text", 0)
    assert message.buttons == [[("Bắt đầu", "go:1")]]
    assert tg.buttons(USER) == [("Bắt đầu", "go:1")]
    assert tg.sent_count(USER) == 1
    call = tg.calls_to("sendMessage")[0]
    assert call.status == 200 and call.params["chat_id"] == USER   # form string -> int
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Bắt đầu"
    me = await bot.get_me()
    assert me.username == "hocvuso_test_bot" and me.id == 123456


async def test_text_limits(tg, bot):
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "a" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "")
    await bot.send_message(USER, "ă" * 4096)               # characters, not bytes
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(USER, "AgACfileid", caption="c" * 1025)
    assert [c.status for c in tg.calls] == [400, 400, 200, 400]
    assert tg.sent_count(USER) == 1


async def test_a_photo_sent_once_is_sent_again_by_its_file_id(tg, bot, tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "AgACnever-sent")
    sent = await bot.send_photo(USER, FSInputFile(image), caption="Ngày hội")
    again = await bot.send_photo(USER, sent.photo[-1].file_id, caption="Ngày hội")
    first, second = tg.chat(USER)
    assert first.upload.filename == "a.jpg" and second.upload == sent.photo[-1].file_id and again.photo


async def test_callback_data_is_limited_to_64_bytes(tg, bot):
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "Q", reply_markup=keyboard(("x", "đ" * 33)))   # 66 bytes
    with pytest.raises(TelegramBadRequest, match="Text buttons are unallowed"):
        await bot.send_message(USER, "Q", reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="no action")]]))
    await bot.send_message(USER, "Q", reply_markup=keyboard(("x", "đ" * 32)))       # 64 bytes
    assert len(tg.chat(USER)) == 1


async def test_unknown_chat_and_html(tg, bot):
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(777, "hi")
    with pytest.raises(TelegramBadRequest, match='find end tag corresponding to start tag "b"'):
        await bot.send_message(USER, "<b>Chào", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "lan"'):
        await bot.send_message(USER, "Chào <Lan>", parse_mode="HTML")
    sent = await bot.send_message(USER, "<b>Chào</b> bạn &lt;3", parse_mode="HTML")
    assert sent.text == "Chào bạn <3"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 4)]


async def test_edit_message(tg, bot):
    sent = await bot.send_message(USER, "Câu 1?", reply_markup=keyboard(("A", "q1:a")))
    edited = await bot.edit_message_text("Đúng rồi!", chat_id=USER, message_id=sent.message_id,
                                         reply_markup=keyboard(("Tiếp", "next")))
    assert edited.text == "Đúng rồi!" and edited.edit_date
    [message] = tg.chat(USER)
    assert (message.text, message.edited, message.buttons) == ("Đúng rồi!", 1, [[("Tiếp", "next")]])
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Đúng rồi!", chat_id=USER, message_id=sent.message_id,
                                    reply_markup=keyboard(("Tiếp", "next")))
    # Omitting reply_markup removes the keyboard (a real-world gotcha).
    await bot.edit_message_text("Đúng rồi!", chat_id=USER, message_id=sent.message_id)
    assert tg.chat(USER)[0].buttons == [] and tg.chat(USER)[0].edited == 2
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=99)


async def test_rate_limit_gives_retry_after(tg, bot):
    tg.rate_limit(2, retry_after=3)
    await bot.send_message(USER, "1")
    await bot.send_message(USER, "2")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "3")
    assert caught.value.retry_after == 3
    assert tg.calls[-1].status == 429 and tg.sent_count(USER) == 2


async def test_blocked_user_and_other_faults(tg, bot):
    tg.blocked_users.add(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")
    tg.blocked_users.clear()
    tg.fail_next("sendmessage", 502, "Bad Gateway")
    with pytest.raises(TelegramServerError):
        await bot.send_message(USER, "hi")
    await bot.send_message(USER, "hi")
    tg.on_request = lambda method, params: (
        {"ok": False, "error_code": 400, "description": "Bad Request: hooked"}
        if method == "sendMessage" and params.get("text") == "boom" else None)
    with pytest.raises(TelegramBadRequest, match="hooked"):
        await bot.send_message(USER, "boom")
    assert tg.sent_count(USER) == 1
    tg.latency(0.05, 0.05)
    started = asyncio.get_running_loop().time()
    await bot.send_chat_action(USER, "typing")
    assert asyncio.get_running_loop().time() - started >= 0.05


async def test_error_ratio_is_reproducible(tg, bot):
    outcomes = []
    for _ in range(2):
        tg.error_ratio(0.5, status=503, seed=7)
        run = []
        for i in range(10):
            try:
                await bot.send_message(USER, str(i))
                run.append(True)
            except TelegramServerError:
                run.append(False)
        outcomes.append(run)
    assert outcomes[0] == outcomes[1] and True in outcomes[0] and False in outcomes[0]


async def test_wire_format_errors_and_uploads(tg, bot):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.url}/bot1:WRONG/getMe") as r:
            assert r.status == 401
            assert await r.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.get(f"{tg.url}/bot{tg.token}/noSuchMethod") as r:
            assert (r.status, (await r.json())["description"]) == (404, "Not Found")
        async with http.get(f"{tg.url}/bot{tg.token}/GETME") as r:
            assert (await r.json())["result"]["is_bot"] is True
        markup = json.dumps({"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]})
        async with http.post(f"{tg.url}/bot{tg.token}/sendMessage",
                             json={"chat_id": str(USER), "text": "json", "reply_markup": markup}) as r:
            assert r.status == 200
    assert tg.buttons(USER) == [("A", "a")]
    sent = await bot.send_document(USER, BufferedInputFile(b"%PDF-1.4 hi", filename="bai1.pdf"),
                                   caption="Tài liệu")
    assert sent.document.file_name == "bai1.pdf" and sent.caption == "Tài liệu"
    upload = tg.calls_to("sendDocument")[0].params["document"]
    assert (upload.filename, upload.size, upload.data) == ("bai1.pdf", 11, b"%PDF-1.4 hi")
    assert tg.calls_to("sendDocument")[0].content_type == "multipart/form-data"
    assert tg.last_message(USER).kind == "document"
    # aiogram posts urlencoded forms unless there is a file to upload
    assert tg.calls_to("sendMessage")[0].content_type == "application/json"   # the raw call above
    await bot.send_message(USER, "form")
    assert tg.calls[-1].content_type == "application/x-www-form-urlencoded"


async def test_long_poll_returns_when_an_update_is_pushed(tg, bot):
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await tg.wait_for(lambda t: t.waiting_pollers == 1)
    update_id = tg.push_text(USER, "/start g_TDP01")
    updates = await asyncio.wait_for(poll, 2)
    assert [u.update_id for u in updates] == [update_id]
    assert updates[0].message.entities[0].type == "bot_command"
    assert updates[0].message.entities[0].length == 6
    assert tg.pending_updates() == 0
    assert await bot.get_updates(offset=update_id + 1, timeout=0) == []
    await bot.set_my_commands([BotCommand(command="start", description="Bắt đầu")])
    assert tg.commands[("default", "")] == [{"command": "start", "description": "Bắt đầu"}]


async def test_pushed_updates_parse_and_allowed_updates_filter(tg, bot):
    tg.push_sticker(USER)
    tg.push_photo(USER, caption="ảnh")
    tg.push_voice(USER)
    tg.push_raw({"message": {"message_id": 99, "date": 0, "text": "raw",
                             "chat": {"id": USER, "type": "private", "first_name": "Lan"}}})
    blocked_id = tg.push_my_chat_member(USER, "kicked")
    assert USER in tg.blocked_users
    updates = await bot.get_updates(timeout=0)
    assert updates[0].message.sticker.is_animated is False
    assert updates[1].message.photo[-1].width == 800 and updates[1].message.caption == "ảnh"
    assert updates[2].message.voice.duration == 3 and updates[3].message.text == "raw"
    assert updates[4].my_chat_member.new_chat_member.status == "kicked"
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(USER, "still there?")
    tg.push_my_chat_member(USER, "member")
    tg.push_text(USER, "hello again")
    # aiogram asks only for the update types it has handlers for; others are dropped.
    updates = await bot.get_updates(offset=blocked_id + 1, timeout=0, allowed_updates=["message"])
    assert [u.message.text for u in updates] == ["hello again"]
    assert tg.pending_updates() == 0 and USER not in tg.blocked_users


async def test_callback_query_can_be_answered_once(tg, bot):
    await bot.send_message(USER, "Q", reply_markup=keyboard(("A", "q:a")))
    tg.push_callback(USER, "q:a")
    [update] = await bot.get_updates(timeout=0)
    query = update.callback_query
    assert query.message.text == "Q" and query.data == "q:a" and query.from_user.id == USER
    assert await bot.answer_callback_query(query.id, text="Đã ghi nhận")
    assert tg.answered_callbacks == {query.id}
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("123")
    await bot.edit_message_reply_markup(chat_id=USER, message_id=query.message.message_id)
    assert tg.buttons(USER) == [] and tg.last_message(USER).edited == 1


async def test_wait_for_timeout_dumps_calls(tg, bot):
    await bot.send_message(USER, "only this")
    with pytest.raises(TimeoutError, match="only this"):
        await tg.wait_for(lambda t: len(t.chat(USER)) == 2, timeout=0.1)


async def test_forged_callback_requires_opt_in(tg, bot):
    await bot.send_message(USER, "Q", reply_markup=keyboard(("A", "q:a")))
    with pytest.raises(AssertionError):
        tg.push_callback(USER, "q:z")
    assert tg.push_callback(USER, "q:z", forged=True)


async def test_dispatcher_polling_end_to_end(tg):
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        await message.answer(f"Chào <b>{message.from_user.first_name}</b>! Nhóm: {command.args}",
                             reply_markup=keyboard(("Bài 1", "lesson:1"), ("Bài 2", "lesson:2")))

    @router.callback_query(F.data.startswith("lesson:"))
    async def lesson(query: CallbackQuery) -> None:
        await query.message.edit_text(f"Bắt đầu {query.data}")
        await query.answer("OK")

    @router.message()
    async def other(message: Message) -> None:
        await message.answer("Mình chưa hiểu.")

    dp = Dispatcher()
    dp.include_router(router)
    bot = make_bot(tg, default=DefaultBotProperties(parse_mode="HTML"))
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
    try:
        tg.push_text(USER, "/start g_TDP01", first_name="Lan")
        await tg.wait_for(lambda t: t.buttons(USER))
        assert tg.last_message(USER).text == "Chào Lan! Nhóm: g_TDP01"
        assert tg.last_message(USER).message_id == 2            # the user's /start was 1
        tg.push_callback(USER, "lesson:2")
        tg.push_sticker(USER)
        await tg.wait_idle(USER)
        first, reply = tg.chat(USER)
        assert (first.text, first.edited, first.buttons) == ("Bắt đầu lesson:2", 1, [])
        assert reply.text == "Mình chưa hiểu."
        assert len(tg.answered_callbacks) == 1
        assert list(tg.callback_answers.values())[0]["text"] == "OK"
        assert tg.calls[0].method == "getMe"                    # polling starts with getMe
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)
    assert bot.session._session is None or bot.session._session.closed
