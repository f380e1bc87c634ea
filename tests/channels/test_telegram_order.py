"""Per-chat order over the real aiogram adapter: a resident's replies leave in the order of
her updates, whatever the Bot API's latency; the answer to a pressed button is never
overtaken by her next message; and a repeat of an update already handled changes nothing
(issue 9 §2, §4, §5)."""

from __future__ import annotations

from aiogram.types import Update
from sqlmodel import select

from bot.app import App
from bot.channels.telegram import TelegramChannel
from handlers import COMMANDS
from storage.models import HandledEvent
from tests.contract.drivers import telegram_server, zalo_server
from tests.fakes.telegram_api import Call, FakeTelegram

USERS = [616100 + n for n in range(6)]


async def _join(tg: FakeTelegram, handled, user: int) -> None:  # type: ignore[no-untyped-def]
    async def step(update_id: int) -> None:
        await handled.wait(update_id)

    await step(tg.push_text(user, "/start g_DEMO-TDP03", first_name=f"Cư dân {user}"))
    for _ in range(2):  # consent, then the name
        await step(tg.push_callback(user, [d for t, d in tg.buttons(user) if "Đồng ý" in t or "Đúng rồi" in t][0]))
    await step(tg.push_callback(user, [d for t, d in tg.buttons(user) if "Đúng rồi" in t][0]))


def _chat_calls(tg: FakeTelegram, user: int, methods: set[str]) -> list[Call]:
    """Requests about one chat, in the order they reached the server."""
    queries = {qid for qid, owner in tg._queries.items() if owner == user}
    mine = [c for c in tg.calls if c.method in methods and (
        c.params.get("chat_id") == user or c.params.get("callback_query_id") in queries)]
    return sorted(mine, key=lambda c: c.at)


async def test_replies_leave_in_the_order_of_the_updates_despite_latency(ward: App) -> None:
    async with telegram_server(ward) as (tg, handled):
        for user in USERS:
            await _join(tg, handled, user)
        tg.latency(0.05, 0.6, seed=3)  # every send takes its own time
        sent: dict[int, list[int]] = {}
        for user in USERS:  # three messages each, in a burst
            sent[user] = [tg.push_text(user, text) for text in ("/tiendo", "/baihoc", "/trogiup")]
        for ids in sent.values():
            for update_id in ids:
                await handled.wait(update_id, timeout=30)
        for user in USERS:
            last_three = [m.text for m in tg.chat(user)[-3:]]
            assert "📊 Tiến độ" in last_three[0], last_three
            assert "📚 Các bài học" in last_three[1], last_three
            assert "/hoc" in last_three[2] and "📊" not in last_three[2], last_three


async def test_a_press_is_answered_before_the_next_message_of_the_same_resident(ward: App) -> None:
    async with telegram_server(ward) as (tg, handled):
        user = USERS[0]
        await _join(tg, handled, user)
        await handled.wait(tg.push_text(user, "/hoc"))
        lesson = ward.lessons.first
        for _ in range(len(lesson.cards) - 1):
            await handled.wait(tg.push_callback(user, [d for t, d in tg.buttons(user) if "Tiếp" in t][0]))
        await handled.wait(tg.push_callback(user, [d for t, d in tg.buttons(user) if "Làm bài" in t][0]))
        question = lesson.quiz.questions[0]
        answer = [d for t, d in tg.buttons(user) if t == question.options[question.answer_index]][0]
        tg.latency(0.3, 0.6, seed=1)
        press = tg.push_callback(user, answer)
        typed = tg.push_text(user, "/tiendo")  # right after the press
        await handled.wait(press, timeout=30)
        await handled.wait(typed, timeout=30)
        calls = _chat_calls(tg, user, {"answerCallbackQuery", "editMessageText", "sendMessage"})
        progress_reply = next(i for i, c in enumerate(calls) if "📊 Tiến độ" in str(c.params.get("text")))
        before = calls[:progress_reply]
        # The button's answer, the press's feedback and the next question all went first.
        assert {"answerCallbackQuery", "editMessageText"} <= {c.method for c in before}
        assert any(lesson.quiz.questions[1].text in str(c.params.get("text")) for c in before)


async def test_an_update_delivered_again_changes_nothing(ward: App) -> None:
    """A redelivery of a committed update (its confirmation to Telegram was lost with the
    process) is dropped by the handled-event table: no second answer, no second reply."""
    async with FakeTelegram() as tg:
        channel = TelegramChannel(token=tg.token, api_url=tg.url, conversation=ward.conversation,
                                  catalog=ward.catalog, commands=COMMANDS)
        try:
            raw = {"update_id": 900001, "message": {
                "message_id": 1, "date": 0, "chat": {"id": USERS[1], "type": "private", "first_name": "Lan"},
                "from": {"id": USERS[1], "is_bot": False, "first_name": "Lan"}, "text": "/start"}}
            for _ in range(2):
                await channel.feed(Update.model_validate(raw, context={"bot": channel.bot}))
                await channel.queues.drain()
            assert len(tg.calls_to("sendMessage")) == 1
            async with ward.sessions() as session:
                events = (await session.exec(select(HandledEvent))).all()
            assert [(e.source, e.event_id) for e in events] == [("telegram", "900001")]
        finally:
            await channel.close()


async def test_a_reply_refused_with_429_is_sent_after_the_wait(ward: App) -> None:
    """The state has moved on when the reply is refused: it must still arrive."""
    async with telegram_server(ward) as (tg, handled):
        user = USERS[3]
        tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, times=2)
        await handled.wait(tg.push_text(user, "/start"), timeout=30)
        assert "Bạn có đồng ý không?" in tg.last_message(user).text  # type: ignore[union-attr]
        assert [c.status for c in tg.calls_to("sendMessage")] == [429, 429, 200]


async def test_a_zalo_reply_refused_twice_with_429_still_arrives(ward: App) -> None:
    async with zalo_server(ward) as (zalo, bot):
        zalo.fail_next("sendMessage", 429, "quota exceeded", retry_after=1, times=2)
        zalo.push_text("00aa", "/start", display_name="Ba")
        await zalo.wait_for(lambda: zalo.pending == 0 and bot.received >= zalo.handed_out
                            and bot.tasks.in_flight == 0, timeout=30)
        assert "Bạn có đồng ý không?" in zalo.chat("00aa")[-1].text


async def test_a_resident_waiting_out_a_429_holds_up_nobody_else(ward: App) -> None:
    """Lan's reply must wait 3 s (429) and her next message waits behind it, in her queue;
    Bảo, writing meanwhile, is answered at once — and nothing is confirmed to Telegram before
    it is committed."""
    lan, bao = USERS[4], USERS[5]
    async with telegram_server(ward) as (tg, handled):
        tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)
        first = tg.push_text(lan, "/start")
        await tg.wait_for(lambda t: any(c.status == 429 for c in t.calls_to("sendMessage")), timeout=10)
        second = tg.push_text(lan, "/trogiup")  # queued behind her first reply
        await tg.wait_for(lambda t: t._delivered_upto >= second, timeout=10)
        other = tg.push_text(bao, "/start")
        await handled.wait(other, timeout=10)
        assert not tg.chat(lan), "Lan's first reply is still waiting out the 429"
        assert "Bạn có đồng ý không?" in tg.last_message(bao).text  # type: ignore[union-attr]
        await handled.wait(first, timeout=30)
        await handled.wait(second, timeout=30)
        texts = [m.text for m in tg.chat(lan)]
        assert "Bạn có đồng ý không?" in texts[0] and len(texts) == 2
