"""One limit for a broadcast's text, wherever it is written: the chat composer takes as much as
the dashboard and the CLI (``bot.broadcasting.TEXT_MAX``), never cuts it short, and refuses a
longer text kindly with the catalogue's words, the draft still open."""

from __future__ import annotations

from bot.app import App
from bot.broadcasting import TEXT_MAX
from bot.core.messages import Text
from storage.models import Broadcast
from tests.staff import rows
from tests.test_admin import _admin, _residents


def a_text(length: int) -> str:
    """Vietnamese words up to exactly ``length`` characters, no space at either end."""
    words = "Mời bà con tổ dân phố đến nhà văn hóa học cách dùng VNeID vào sáng thứ Bảy. "
    return (words * (length // len(words) + 1))[: length - 1].rstrip().ljust(length - 1, "x") + "."


async def test_the_chat_composer_takes_the_whole_text_up_to_the_one_limit(ward: App) -> None:
    admin = await _admin(ward)
    await _residents(ward)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    assert f"tối đa {TEXT_MAX} ký tự" in admin.last_text
    longest = a_text(TEXT_MAX)
    assert len(longest) == TEXT_MAX == 4000
    await admin.send(longest)
    assert "Thông báo này có mời bà con học bài không?" in admin.last_text
    await admin.press("Không cần nút")
    await admin.press("Tất cả người dân")
    shown = [r for r in admin.history[-3:] if isinstance(r, Text) and r.text.startswith("📢 UBND phường Mẫu:")]
    assert [r.text for r in shown] == [f"📢 UBND phường Mẫu:\n{longest}"]  # the preview: all of it
    await admin.press("Đồng ý, gửi")
    await admin.press("Gửi ngay")
    [broadcast] = await rows(ward, Broadcast)
    assert broadcast.text == longest


async def test_a_longer_text_is_refused_kindly_and_the_draft_stays_open(ward: App) -> None:
    admin = await _admin(ward)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    t = ward.catalog.translator(None)
    await admin.send(a_text(TEXT_MAX + 1))
    assert admin.last_text == t("composer.too_long", length=TEXT_MAX + 1, limit=TEXT_MAX)
    assert admin.last_text == "Nội dung dài 4001 ký tự, tối đa 4000. Bạn rút gọn rồi gửi lại nhé."
    assert [o.label for o in admin.menu.options] == ["✖ Hủy soạn"]
    await admin.send(a_text(TEXT_MAX))  # shortened: taken
    assert "Thông báo này có mời bà con học bài không?" in admin.last_text
    assert await rows(ward, Broadcast) == []
