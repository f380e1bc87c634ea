"""``bot.channels.telegram.session``: a method without a file is posted as one JSON body (the Bot
API takes ``application/json``), one with a file as aiogram's multipart form — against the fake
Bot API on 127.0.0.1, through a real aiogram ``Bot``."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.telegram.session import JsonBodySession
from tests.fakes.telegram_api import FakeTelegram

USER = 515151


async def test_a_message_goes_as_json_and_a_file_as_a_form() -> None:
    async with FakeTelegram() as tg:
        tg.add_user(USER)
        bot = Bot(tg.token, session=JsonBodySession(api=TelegramAPIServer.from_base(tg.url)),
                  default=DefaultBotProperties(link_preview_is_disabled=True))
        try:
            markup = InlineKeyboardMarkup(inline_keyboard=[
                [InlineKeyboardButton(text="📖 Học tiếp", callback_data="resume")],
                [InlineKeyboardButton(text="❓ Hỏi cán bộ", callback_data="help")],
            ])
            sent = await bot.send_message(USER, "Chào bà Tư, mời bà học bài “Cài đặt VNeID” & làm bài kiểm tra 100%",
                                          reply_markup=markup, disable_notification=False)
            document = await bot.send_document(USER, BufferedInputFile(b"%PDF-1.4 hi", filename="chung-nhan.pdf"),
                                               caption="Giấy chứng nhận")
        finally:
            await bot.session.close()

    [message_call] = tg.calls_to("sendMessage")
    assert message_call.content_type == "application/json"
    assert message_call.params["text"] == "Chào bà Tư, mời bà học bài “Cài đặt VNeID” & làm bài kiểm tra 100%"
    assert message_call.params["disable_notification"] is False  # a false value is sent, as the form sends it
    assert message_call.params["link_preview_options"] == {"is_disabled": True}  # the bot's default
    assert tg.buttons(USER) == [("📖 Học tiếp", "resume"), ("❓ Hỏi cán bộ", "help")]
    assert sent.text.startswith("Chào bà Tư")  # the answer parsed as before
    assert sent.reply_markup is not None and sent.reply_markup.inline_keyboard[1][0].callback_data == "help"
    [document_call] = tg.calls_to("sendDocument")
    assert document_call.content_type == "multipart/form-data"
    assert document_call.params["document"].data == b"%PDF-1.4 hi" and document.caption == "Giấy chứng nhận"
