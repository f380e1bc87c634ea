"""Options of a proactive message as words to type (``OutboundMessage.numbered=False``):
the Zalo Bot Platform shows no numbers; a Zalo OA keeps its query buttons (a press is an
action) under a text that names words, not numbers; the words pick the options when typed."""

from __future__ import annotations

import httpx

from bot.app import App
from bot.channels.zalo import ZaloBotClient, ZaloBotTransport, ZaloOAClient, ZaloOATransport
from bot.channels.zalo.oa_client import OATokens
from bot.core.messages import Menu, Option
from bot.core.render import keyword, keyword_menu
from bot.core.text import fold
from bot.delivery.transport import OutboundMessage, Pacing, Recipient, Result
from tests.contract.drivers import numbered_options
from tests.fakes.zalo_bot_api import FakeZaloBot
from tests.fakes.zalo_oa_api import FakeZaloOA
from tests.support import ManualClock

USER = "2468458835296197922"
OPTIONS = (Option("📖 Học tiếp", "next"), Option("🔕 Tắt nhắc nhở", "reminders:off"))
REMINDER = OutboundMessage("Đến giờ học rồi!", options=OPTIONS)


def test_the_word_for_an_option_is_its_label_without_symbols(app: App) -> None:
    for label, word in (("📖 Học tiếp", "Học tiếp"), ("✍️ Trả lời", "Trả lời"), ("🙋 Hỏi thêm", "Hỏi thêm"),
                        ("👥 Xem Tổ dân phố 3", "Xem Tổ dân phố 3"), ("Đúng rồi", "Đúng rồi")):
        assert keyword(label) == word and fold(word) == fold(label)  # typed, it picks the option
    t = app.catalog.translator(None)
    assert keyword_menu(Menu("Có tin mới", OPTIONS[:1]), t) == "Có tin mới\n\n(Gõ «Học tiếp» rồi gửi.)"


async def test_zalo_bot_numbers_or_words(app: App) -> None:
    async with FakeZaloBot() as zalo:
        client = ZaloBotClient(token=zalo.token, api_url=zalo.url)
        transport = ZaloBotTransport(client=client, catalog=app.catalog, pacing=Pacing(per_second=5))
        assert (await transport.deliver(Recipient(USER), REMINDER)).result == Result.SENT
        assert numbered_options(zalo.last_text(USER)) == ["📖 Học tiếp", "🔕 Tắt nhắc nhở"]
        words = OutboundMessage(REMINDER.text, options=OPTIONS, numbered=False)
        assert (await transport.deliver(Recipient(USER), words)).result == Result.SENT
        assert zalo.last_text(USER) == "Đến giờ học rồi!\n\n(Gõ «Học tiếp» hoặc «Tắt nhắc nhở» rồi gửi.)"
        await client.close()


async def test_zalo_oa_keeps_its_buttons_under_words(app: App, clock: ManualClock) -> None:
    async with FakeZaloOA() as oa:
        tokens = OATokens(sessions=app.sessions, http=httpx.AsyncClient(timeout=10), oauth_url=oa.url, oa_id=oa.oa_id,
                          app_id=oa.app_id, app_secret=oa.app_secret, seed_refresh_token="refresh-0", clock=clock)
        client = ZaloOAClient(api_url=oa.url, tokens=tokens, http=tokens._http)
        transport = ZaloOATransport(client=client, catalog=app.catalog, pacing=Pacing(per_second=5), clock=clock)
        who = Recipient(USER, last_seen_at=clock.now())
        words = OutboundMessage(REMINDER.text, options=OPTIONS, numbered=False)
        assert (await transport.deliver(who, words)).result == Result.SENT
        [text] = oa.texts(USER)
        assert text == "Đến giờ học rồi!\n\n(Gõ «Học tiếp» hoặc «Tắt nhắc nhở» rồi gửi.)"
        assert [(b["title"], b["payload"]) for b in oa.buttons(USER)] == [
            ("📖 Học tiếp", "#next"), ("🔕 Tắt nhắc nhở", "#reminders:off")]
        await client.close()
