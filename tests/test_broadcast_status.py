"""What the admin reads about broadcasts in the chat (issue 11 §4): statuses that end ("✅ Đã
gửi xong" with the outcomes), the recipient count of a scheduled broadcast (counted with the
send's own audience query, so it follows the residents), the real start time (the quiet hours
applied, then the first message actually sent), group names and lesson titles, never codes."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.app import App
from bot.core.i18n import Catalog
from storage.outbox import claim_due, mark_blocked, mark_failed, mark_sent
from tests.staff import make_admin
from tests.support import Chat, ManualClock, join, pass_lesson


async def _ward_with_people(ward: App) -> tuple[Chat, dict[str, Chat]]:
    admin = Chat(ward.conversation, user="9000", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    chats = {}
    for user, name, code in (("1", "Lan", "DEMO-TDP03"), ("2", "Minh", "DEMO-TDP03"), ("3", "Hoa", "DEMO-TDP05"),
                             ("4", "Ba", "DEMO-TDP05")):
        chats[name] = Chat(ward.conversation, user=user, name=name)
        await join(chats[name], group_code=code)
    return admin, chats


async def _outcomes(ward: App, clock: ManualClock, outcomes: list[str]) -> None:
    """The sender's work on the due rows, through the outbox's own functions: one outcome each."""
    async with ward.sessions() as session, session.begin():
        claimed = await claim_due(session, channel="test", now=clock.now(), lease_until=clock.now() + timedelta(minutes=5),
                                  limit=len(outcomes))
        assert len(claimed) == len(outcomes)
        for row, outcome in zip(claimed, outcomes, strict=True):
            if outcome == "sent":
                await mark_sent(session, outbox_id=row.id, claim=row.claim, now=clock.now())
            elif outcome == "failed":
                await mark_failed(session, outbox_id=row.id, claim=row.claim, reason="lỗi mạng")
            else:
                await mark_blocked(session, outbox_id=row.id, claim=row.claim, identity_id=row.identity_id,
                                   now=clock.now(), reason="blocked")


async def _compose(admin: Chat, text: str, *audience: str) -> None:
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send(text)
    await admin.press("Không cần nút")
    for press in audience:
        await admin.press(press)
    await admin.press("Đồng ý, gửi")


async def test_a_broadcast_ends_as_sent_with_its_outcomes_and_names_not_codes(ward: App, clock: ManualClock) -> None:
    admin, _ = await _ward_with_people(ward)
    await _compose(admin, "Họp tổ tối thứ Bảy.", "Chọn một số tổ", "Tổ dân phố 3", "Tổ dân phố 5", "Xong (2 tổ)")
    await admin.press("Gửi ngay")
    assert "Đã xếp hàng thông báo #1 cho 4 người, bắt đầu gửi lúc 10:00 23/11/2026" in admin.last_text
    await admin.press("Kết quả gửi")
    assert admin.last_text.split("\n")[:2] == [
        "📬 Thông báo #1 — gửi Tổ dân phố 3, Tổ dân phố 5",
        "⏳ Chờ gửi: bắt đầu gửi lúc 10:00 23/11/2026, cho 4 người",
    ]
    clock.advance(minutes=5)
    await _outcomes(ward, clock, ["sent"])
    await admin.press("Cập nhật kết quả")
    assert "📤 Đang gửi (bắt đầu lúc 10:05 23/11/2026): xong 1/4 người" in admin.last_text
    assert "✖ Hủy thông báo" in [o.label for o in admin.menu.options]  # something is still pending
    clock.advance(minutes=2)
    await _outcomes(ward, clock, ["sent", "failed", "blocked"])
    await admin.press("Cập nhật kết quả")
    lines = admin.last_text.split("\n")
    assert lines[1] == ("✅ Đã gửi xong: đã gửi 2 · lỗi 1 · bị chặn 1 "
                        "(gửi từ 10:05 23/11/2026 đến 10:07 23/11/2026)")
    assert "Đang gửi" not in admin.last_text and "Chờ gửi" not in admin.last_text
    assert lines[2] == "Tổng: đã gửi 2 · bị chặn 1 · lỗi 1 · đang chờ 0"
    assert "✖ Hủy thông báo" not in [o.label for o in admin.menu.options]  # nothing left to cancel
    # The list says the same, by names.
    await admin.press("Thông báo khác")
    assert ("#1 · Tổ dân phố 3, Tổ dân phố 5\n✅ Đã gửi xong: đã gửi 2 · lỗi 1 · bị chặn 1 "
            "(gửi từ 10:05 23/11/2026 đến 10:07 23/11/2026)\nHọp tổ tối thứ Bảy.") in admin.last_text
    assert "DEMO-TDP" not in admin.last_text


async def test_a_scheduled_broadcast_shows_its_recipients_and_real_start(ward: App, clock: ManualClock) -> None:
    admin, chats = await _ward_with_people(ward)
    lesson = ward.lessons.first
    await _compose(admin, "Mời bà con học bài 1.", "Người chưa hoàn thành một bài", f"1. {lesson.title}")
    await admin.press("Chọn giờ khác")
    await admin.send("10 giờ tối mai")  # in the quiet hours (21:00–07:00): it starts at 07:00 after
    assert "Đã lên lịch thông báo #1 cho 5 người (tính đến bây giờ), sẽ gửi lúc 07:00 25/11/2026" in admin.last_text
    await pass_lesson(chats["Lan"], lesson)  # the count follows the audience until it is sent
    await admin.send("/quantri")
    await admin.press("Thông báo đã gửi")
    assert (f"#1 · người chưa hoàn thành bài \"{lesson.title}\"\n"
            "🕘 Đã lên lịch: bắt đầu gửi lúc 07:00 25/11/2026, cho 4 người (tính đến bây giờ) "
            "(hẹn 22:00 24/11/2026, đang trong giờ nghỉ nên gửi khi hết giờ nghỉ)") in admin.last_text
    await admin.press("Kết quả #1")
    assert admin.last_text.split("\n") == [
        f"📬 Thông báo #1 — gửi người chưa hoàn thành bài \"{lesson.title}\"",
        "🕘 Đã lên lịch: bắt đầu gửi lúc 07:00 25/11/2026, cho 4 người (tính đến bây giờ) "
        "(hẹn 22:00 24/11/2026, đang trong giờ nghỉ nên gửi khi hết giờ nghỉ)",
    ]
    await admin.press("Hủy thông báo")
    await admin.press("Hủy thông báo")
    assert admin.last_text.split("\n")[1] == "✖ Đã hủy"


SHELL_WORDS = re.compile(r"hocvuso|\blệnh\b|\bCLI\b|terminal|dòng lệnh|(?<![\w-])--[a-z]", re.IGNORECASE)


def test_no_text_an_admin_reads_in_the_chat_names_a_shell_command(catalog: Catalog) -> None:
    """The composer, the broadcast views, the time reader and the admin's pages tell an officer
    what to do in the chat, never a command to type on a server (chat commands like /quantri
    are fine: "lệnh /xoadulieu" is not among these texts either)."""
    keys = [k for k in catalog.keys("vi") if k.startswith(("composer.", "broadcast.", "time.", "admin."))]
    assert len(keys) > 60
    assert {k: catalog.text(k) for k in keys if SHELL_WORDS.search(catalog.text(k))} == {}


async def test_the_composer_never_sends_an_officer_to_the_shell(ward: App, clock: ManualClock) -> None:
    """Every reply of a whole composing session, photo refused and time mistyped included."""
    admin, _ = await _ward_with_people(ward)
    start = len(admin.history)  # after joining (whose texts name chat commands such as /xoadulieu)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.attach("photo")  # this channel cannot fetch it
    await admin.send("Tin thử")
    await admin.press("Không cần nút")
    await admin.press("Tất cả người dân")
    await admin.press("Đồng ý, gửi")
    await admin.press("Chọn giờ khác")
    await admin.send("thứ hai")
    await admin.send("10/12 8h")
    await admin.press("Kết quả gửi")
    await admin.press("Thông báo khác")
    said = admin.texts(admin.history[start:])
    assert "Ví dụ: 10/12 8h" in said and "Đã lên lịch thông báo #1" in said
    assert SHELL_WORDS.search(said) is None, SHELL_WORDS.search(said)
