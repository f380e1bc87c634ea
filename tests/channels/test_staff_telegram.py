"""Leaders and admins end to end over Telegram: the real aiogram adapter polls the fake Bot
API (tests/fakes/telegram_api.py), buttons are pressed as callbacks, and proactive messages
go out through the real outbox sender (tests/delivery/helpers.py) on a ManualClock.

- a leader sees exactly their group;
- a nudge reaches only the residents who are behind, and not in the quiet hours;
- an assisted completion appears in the group's view and in the report, marked assisted;
- a broadcast (with a photo the admin sent) to "not completed lesson X" reaches exactly
  those residents.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import openpyxl
from PIL import Image as PILImage

from bot.app import App
from bot.delivery.quiet import QuietHours
from bot.delivery.sender import Sender
from storage.models import Outbox, OutboxStatus
from tests.contract.drivers import Handled, TelegramDriver, telegram_server
from tests.contract.journeys import join_group, learn_lesson
from tests.delivery.helpers import telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.staff import make_admin, make_leader, rows
from tests.support import ManualClock

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = QuietHours(ZONE, time(21), time(7))
HEADER = "📢 UBND phường Mẫu:"  # who sends the ward's broadcasts


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


@asynccontextmanager
async def sending(app: App, tg: FakeTelegram, clock: ManualClock) -> AsyncIterator[Sender]:
    sender = telegram_sender(app.sessions, tg, clock=clock, quiet=QUIET)
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        sender.stop()
        await asyncio.wait_for(task, 10)
        await sender.transport.bot.session.close()


async def _people(ward: App, tg: FakeTelegram, handled: Handled) -> dict[str, TelegramDriver]:
    """Two leaders (Tổ 3, Tổ 5), an admin, and residents: Lan (Tổ 3, finishes lesson 1),
    Minh (Tổ 3), Hoa (Tổ 5), all on Telegram."""
    people = {}
    for user, name, code in ((1001, "Ba Nguyễn", "DEMO-TDP03"), (1002, "Năm Lê", "DEMO-TDP05"),
                             (1003, "Hà Phạm", "DEMO-TDP01"), (1004, "Lan Trần", "DEMO-TDP03"),
                             (1005, "Minh Đỗ", "DEMO-TDP03"), (1006, "Hoa Võ", "DEMO-TDP05")):
        driver = TelegramDriver(tg, handled, user, name)
        await join_group(driver, name=name, group_code=code)
        people[name.split()[0]] = driver
    from tests.support import Chat

    def chat(d: TelegramDriver) -> Chat:
        return Chat(ward.conversation, channel="telegram", user=d.external_id)

    await make_leader(ward, chat(people["Ba"]), "DEMO-TDP03")
    await make_leader(ward, chat(people["Năm"]), "DEMO-TDP05")
    await make_admin(ward, chat(people["Hà"]))
    await learn_lesson(people["Lan"], ward.lessons.first)
    return people


async def test_leaders_see_their_group_and_nudges_respect_quiet_hours(ward: App, clock: ManualClock) -> None:
    async with telegram_server(ward) as (tg, handled):
        people = await _people(ward, tg, handled)
        await people["Ba"].send("/nhom")
        assert people["Ba"].last_text().startswith("👥 Tổ dân phố 3 — Phường Mẫu")
        assert "Tổ dân phố 5" not in people["Ba"].last_text()
        await people["Năm"].send("/nhom")
        assert people["Năm"].last_text().startswith("👥 Tổ dân phố 5 — Phường Mẫu")
        assert "Tổ dân phố 3" not in people["Năm"].last_text()

        clock._now = local(27, 22)  # Friday 22:00: Lan and Minh are behind, it is the quiet hours
        await people["Minh"].send("/tiendo")  # Minh came back just now: not behind
        await people["Ba"].send("/nhom")
        assert "• Lan Trần — 1/13 bài" in people["Ba"].last_text() and "• Minh" not in people["Ba"].last_text()
        await people["Ba"].choose("Nhắc người chưa học (1)")
        assert "Đã xếp lời nhắc tới 1 người" in people["Ba"].last_text()
        assert "07:00 28/11/2026" in people["Ba"].last_text()
        lan, minh, hoa = (int(people[n].external_id) for n in ("Lan", "Minh", "Hoa"))
        before = {user: len(tg.chat(user)) for user in (lan, minh, hoa)}

        async with sending(ward, tg, clock) as sender:
            while sender.rounds < 2:  # it looked (and went back to sleep: nothing may go out at night)
                sender.wake()
                await asyncio.sleep(0.01)
            [row] = [r for r in await rows(ward, Outbox) if r.kind == "nudge"]
            assert row.status == OutboxStatus.PENDING and row.due_at == local(27, 22)
            assert {user: len(tg.chat(user)) for user in (lan, minh, hoa)} == before
            clock._now = local(28, 7)
            sender.wake()
            await tg.wait_for(lambda t: len(t.chat(lan)) > before[lan], timeout=10)
        nudge = tg.last_message(lan)
        assert nudge is not None
        assert "Tổ trưởng Ba Nguyễn (Tổ dân phố 3) nhắc: Lan Trần đã học 1/13 bài" in nudge.text
        assert [text for text, _ in nudge.buttons[0]] == ["📖 Học tiếp"]
        assert {user: len(tg.chat(user)) for user in (minh, hoa)} == {minh: before[minh], hoa: before[hoa]}
        assert [r.status for r in await rows(ward, Outbox) if r.kind == "nudge"] == [OutboxStatus.SENT]
        # The nudge's button continues Lan's learning.
        await handled.wait(tg.push_callback(lan, "next"))
        assert ward.lessons.get("b02-cai-vneid-an-toan").cards[0].text in tg.last_message(lan).text


async def test_an_assisted_completion_appears_in_the_group_view_and_the_report(ward: App, clock: ManualClock) -> None:
    async with telegram_server(ward) as (tg, handled):
        tg.keep_bytes = 10 * 1024 * 1024  # keep the uploaded workbook to read it
        people = await _people(ward, tg, handled)
        ba = people["Ba"]
        await ba.send("/nhom")
        await ba.choose("Ghi nhận học trực tiếp")
        await ba.choose("Thêm người theo tên")
        await ba.send("Cụ Sáu")
        await ba.choose(f"1. {ward.lessons.first.title}")
        assert "Đã ghi nhận: Cụ Sáu hoàn thành bài" in ba.last_text()
        await ba.choose("Về trang của tổ")
        assert f"1. {ward.lessons.first.title}: ▓▓░░░ 2/4 (🤝 1)" in ba.last_text()  # Lan herself, Cụ Sáu assisted

        ha = people["Hà"]
        await ha.send("/quantri")
        await ha.choose("Báo cáo")
        await ha.choose("Tháng này")
        report, document, annex, *charts = [m for m in tg.chat(int(ha.external_id))
                                            if m.kind in ("document", "photo")][-6:]
        assert [m.kind for m in (report, document, annex, *charts)] == ["document"] * 3 + ["photo"] * 3
        assert "1 lượt có tổ trưởng hỗ trợ" in report.text and report.upload.filename.endswith(".docx")
        assert document.upload.filename.endswith(".xlsx") and document.upload.data is not None
        book = openpyxl.load_workbook(io.BytesIO(document.upload.data))
        sheet = book[ward.catalog.text("report.sheet_assisted")]
        values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
        assert any("Cụ Sáu" in row and "Ba Nguyễn" in row and ward.lessons.first.title in row for row in values)
        assert not any("Lan Trần" in row for row in values)  # her own completion is not assisted


async def test_a_broadcast_with_a_photo_reaches_exactly_who_has_not_completed_the_lesson(
    ward: App, clock: ManualClock, tmp_path
) -> None:
    async with telegram_server(ward) as (tg, handled):
        people = await _people(ward, tg, handled)
        ha = people["Hà"]
        await ha.send("/quantri")
        await ha.choose("Soạn thông báo")
        picture = io.BytesIO()
        PILImage.new("RGB", (64, 48), "blue").save(picture, format="JPEG")
        await handled.wait(tg.push_photo(int(ha.external_id), caption="Mời học bài 1 tuần này", data=picture.getvalue()))
        assert tg.downloads, "the adapter fetched the photo"
        await ha.choose("Có, thêm nút")  # it invites to learn
        await ha.choose("Người chưa hoàn thành một bài")
        await ha.choose(f"1. {ward.lessons.first.title}")
        # The preview, as residents get it: the photo, then who sends it and the text, with the button.
        *_, photo, text, count = tg.chat(int(ha.external_id))
        assert photo.kind == "photo" and photo.text == ""
        assert text.text == f"{HEADER}\nMời học bài 1 tuần này" and text.buttons == [[("📖 Học tiếp", "next")]]
        assert "sẽ gửi tới 5 người" in count.text  # everyone but Lan
        await ha.choose("Đồng ý, gửi")
        await ha.choose("Gửi ngay")
        assert "Đã xếp hàng thông báo #1 cho 5 người" in ha.last_text()
        counts = {name: len(tg.chat(int(d.external_id))) for name, d in people.items()}
        async with sending(ward, tg, clock):
            await tg.wait_for(lambda _: all(len(_.chat(int(people[n].external_id))) > counts[n]
                                            for n in ("Ba", "Năm", "Hà", "Minh", "Hoa")), timeout=10)
        got = {name for name, d in people.items() if len(tg.chat(int(d.external_id))) > counts[name]}
        assert got == {"Ba", "Năm", "Hà", "Minh", "Hoa"}
        *_, photo, received = tg.chat(int(people["Hoa"].external_id))
        # The photo went up once, to the first recipient; the others got it by its file_id.
        photos = [tg.chat(int(people[n].external_id))[-2] for n in ("Ba", "Năm", "Hà", "Minh", "Hoa")]
        [uploaded] = [p for p in photos if not isinstance(p.upload, str)]
        assert uploaded.upload.data == picture.getvalue()
        assert {p.upload for p in photos if p is not uploaded} == {uploaded.media[-1]["file_id"]}
        assert photo.kind == "photo"
        assert received.text == f"{HEADER}\nMời học bài 1 tuần này"
        assert received.buttons == [[("📖 Học tiếp", "next")]]
        assert all(r.status == OutboxStatus.SENT for r in await rows(ward, Outbox))
        # Pressed, the button opens her lesson.
        await people["Hoa"].choose("Học tiếp")
        assert ward.lessons.first.cards[0].text in people["Hoa"].last_text()
