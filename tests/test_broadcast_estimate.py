"""How long a broadcast takes, said before it is confirmed (issue 12 §3).

The composer's preview names the recipients, how long sending takes at the account's rate
(``TELEGRAM_RATE`` / ``ZALO_RATE``; with several channels the slowest bounds it) and when it is
done in the ward's time; when the quiet hours would delay or interrupt it, it says when the
bot stops, resumes and finishes. Time is an input: every test sets the clock it needs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.app import App
from bot.broadcasting import estimate
from bot.core.messages import Option
from bot.delivery.quiet import QuietHours, Run
from bot.delivery.transport import OutboundMessage
from tests.staff import make_admin
from tests.support import Chat, ManualClock, join

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = QuietHours(ZONE, time(21), time(7))
RESIDENTS = 4  # and the admin: five recipients
# Five messages in 57 min 30 s: "khoảng 58 phút" (the tests' chats are on the channel "test").
SLOW = {"test": 5 / (57.5 * 60)}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE)


@pytest.mark.parametrize(("start", "duration", "run"), [
    # From 19:15, 58 minutes: done at 20:13.
    (at(23, 19, 15), timedelta(minutes=58), Run(at(23, 19, 15), at(23, 20, 13))),
    # From 20:30: stopped at 21:00, resumed at 07:00, done at 07:28.
    (at(23, 20, 30), timedelta(minutes=58), Run(at(23, 20, 30), at(24, 7, 28), at(23, 21), at(24, 7))),
    # From 22:30, inside the quiet hours: begins at 07:00.
    (at(23, 22, 30), timedelta(minutes=58), Run(at(24, 7), at(24, 7, 58))),
    # Thirty hours from 20:00: one hour that evening, two full days of 14 hours, one more hour.
    (at(23, 20), timedelta(hours=30), Run(at(23, 20), at(26, 8), at(23, 21), at(24, 7))),
])
def test_sending_skips_the_quiet_hours(start: datetime, duration: timedelta, run: Run) -> None:
    assert QUIET.run(start, duration) == run
    assert QuietHours(ZONE, time(0), time(0)).run(start, duration) == Run(start, start + duration)  # none


def test_the_slowest_account_bounds_a_broadcast_over_several_channels() -> None:
    start = at(23, 8)
    text = OutboundMessage("Tin")
    rates = {"telegram": 28.0, "zalo": 5.0}
    # 28,000 on Telegram take 1,000 s; 3,000 on Zalo 600 s: the Telegram sender bounds it.
    both = estimate(text, recipients={"telegram": 28_000, "zalo": 3_000}, rates=rates, start=start, quiet=QUIET)
    assert both is not None and (both.recipients, both.sending) == (31_000, timedelta(seconds=1000))
    # 6,000 on Zalo take 1,200 s, longer than Telegram's share.
    assert estimate(text, recipients={"telegram": 28_000, "zalo": 6_000}, rates=rates, start=start,
                    quiet=QUIET).sending == timedelta(seconds=1200)  # type: ignore[union-attr]
    # A photo followed by its text and button is two messages for each recipient.
    photo = OutboundMessage("Tin", options=(Option("📖 Học tiếp", "next"),), image="/p.jpg")
    assert estimate(photo, recipients={"telegram": 28_000}, rates=rates, start=start,
                    quiet=QUIET).sending == timedelta(seconds=2000)  # type: ignore[union-attr]
    # Recipients on a channel of unknown pace: no estimate rather than a wrong one.
    assert estimate(text, recipients={"telegram": 1, "zalo_oa": 1}, rates=rates, start=start, quiet=QUIET) is None


async def _composer(ward: App, clock: ManualClock, start: datetime, rates: dict[str, float] | None = None) -> Chat:
    """An admin and four residents who joined at ``start``; the admin at the preview of a
    broadcast to everyone; sending paced at ``rates`` (``SLOW`` unless said)."""
    clock.advance(seconds=(start - clock.now()).total_seconds())
    ward.conversation.services = replace(ward.conversation.services, send_rates=SLOW if rates is None else rates)
    admin = Chat(ward.conversation, user="9000", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    for n in range(RESIDENTS):
        await join(Chat(ward.conversation, user=str(n + 1), name=f"Cư dân {n + 1}"))
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send("Họp tổ tối nay.")
    await admin.press("Không cần nút")
    await admin.press("Tất cả người dân")
    return admin


async def test_the_preview_says_how_long_sending_takes_and_when_it_is_done(ward: App, clock: ManualClock) -> None:
    admin = await _composer(ward, clock, at(23, 19, 15))
    assert admin.last_text.split("\n") == [
        "Thông báo sẽ gửi tới 5 người (tất cả người dân của phường).",
        "⏱ Nếu gửi ngay, gửi hết mất khoảng 58 phút, xong lúc 20:13.",
        "Gửi thông báo này?",
    ]
    await admin.press("Đồng ý, gửi")
    await admin.press("Gửi ngay")
    assert admin.last_text.split("\n")[1:] == ["⏱ Dự kiến gửi hết mất khoảng 58 phút, xong lúc 20:13."]


async def test_the_preview_warns_that_sending_would_run_into_the_quiet_hours(ward: App, clock: ManualClock) -> None:
    admin = await _composer(ward, clock, at(23, 20, 30))
    assert "⚠️ Nếu gửi ngay, gửi hết mất khoảng 58 phút nên sẽ chạm giờ nghỉ (21:00–07:00): bot tạm dừng lúc " \
           "21:00, gửi tiếp từ 07:00 24/11 và xong lúc 07:28 24/11." in admin.last_text.split("\n")
    # Scheduled for 20:30 tomorrow instead: the same warning, for that evening.
    await admin.press("Đồng ý, gửi")
    await admin.press("Chọn giờ khác")
    await admin.send("8 giờ rưỡi tối 24/11")
    lines = admin.last_text.split("\n")
    assert "sẽ gửi lúc 20:30 24/11/2026" in lines[0]
    assert lines[1:] == ["⚠️ Dự kiến gửi hết mất khoảng 58 phút nên sẽ chạm giờ nghỉ (21:00–07:00): bot tạm dừng "
                         "lúc 21:00 24/11, gửi tiếp từ 07:00 25/11 và xong lúc 07:28 25/11."]


async def test_in_the_quiet_hours_the_preview_says_when_sending_begins(ward: App, clock: ManualClock) -> None:
    admin = await _composer(ward, clock, at(23, 22, 30))
    assert admin.last_text.split("\n")[1:3] == [
        "🌙 Bot không gửi tin trong giờ nghỉ (21:00–07:00), nên sẽ bắt đầu gửi lúc 07:00 24/11.",
        "⏱ Nếu gửi ngay, gửi hết mất khoảng 58 phút, xong lúc 07:58 24/11.",
    ]
    await admin.press("Đồng ý, gửi")
    await admin.press("Gửi ngay")
    assert admin.last_text.split("\n") == [
        "✅ Đã xếp hàng thông báo #1 cho 5 người, bắt đầu gửi lúc 07:00 24/11/2026.",
        "⏱ Dự kiến gửi hết mất khoảng 58 phút, xong lúc 07:58 24/11.",
    ]


async def test_the_shipped_rates_give_a_handful_of_residents_under_a_minute(ward: App, clock: ManualClock) -> None:
    """With the composition root's rates (``TELEGRAM_RATE`` 28/s, ``ZALO_RATE`` 5/s) five
    recipients take under a minute; a channel without a rate gets no estimate, not a wrong one."""
    shipped = ward.conversation.services.send_rates
    assert shipped == {"telegram": 28.0, "zalo": 5.0, "zalo_oa": 5.0}
    admin = await _composer(ward, clock, at(23, 10), rates={**shipped, "test": 28.0})
    assert admin.last_text.split("\n")[1] == "⏱ Nếu gửi ngay, gửi hết mất dưới 1 phút, xong lúc 10:01."
    await admin.press("Đổi người nhận")
    ward.conversation.services = replace(ward.conversation.services, send_rates=shipped)
    await admin.press("Tất cả người dân")
    assert admin.last_text.split("\n") == ["Thông báo sẽ gửi tới 5 người (tất cả người dân của phường).",
                                           "Gửi thông báo này?"]
