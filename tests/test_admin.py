"""The ward admin in the chat: overview and thi đua ranking, the broadcast composer
(audiences, preview, time, report, cancel), reports as a Document and an Image, join links
with their QR code, leader invitations and removal, and ``hocvuso admin add``."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import zxingcpp
from PIL import Image as PILImage
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import App
from bot.cli import Deps, cli
from bot.core.messages import Document, Image, Menu, Option, Text
from bot.reports.qr import join_qr_png
from storage.models import (
    AuditLog,
    Broadcast,
    BroadcastStatus,
    Identity,
    Outbox,
    OutboxStatus,
    Person,
    Role,
    RoleKind,
)
from tests.staff import make_admin, make_leader, person_of, rows
from tests.support import NUMBERED, Chat, ManualClock, join, pass_lesson

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


async def _admin(ward: App) -> Chat:
    admin = Chat(ward.conversation, user="9000", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    return admin


async def _residents(ward: App) -> dict[str, Chat]:
    """Lan (Tổ 3) completed lesson 1; Minh (Tổ 3) and Hoa (Tổ 5) did not; Ba leads Tổ 5."""
    chats = {}
    for user, name, code in (("1", "Lan", "DEMO-TDP03"), ("2", "Minh", "DEMO-TDP03"), ("3", "Hoa", "DEMO-TDP05"),
                             ("4", "Ba", "DEMO-TDP05")):
        chats[name] = Chat(ward.conversation, user=user, name=name)
        await join(chats[name], group_code=code)
    await pass_lesson(chats["Lan"], ward.lessons.first)
    await make_leader(ward, chats["Ba"], "DEMO-TDP05")
    return chats


async def _names(ward: App, broadcast_id: int) -> list[str]:
    async with ward.sessions() as session:
        result = []
        for row in (await session.exec(select(Outbox).where(Outbox.broadcast_id == broadcast_id))).all():
            identity = await session.get(Identity, row.identity_id)
            person = await session.get(Person, identity.person_id)
            result.append(person.display_name)
    return sorted(result)


async def test_overview_and_ranking_use_the_same_numbers(ward: App) -> None:
    admin = await _admin(ward)
    await _residents(ward)
    await admin.send("/quantri")
    assert admin.last_text.startswith("🏛 Quản trị — Phường Mẫu")
    await admin.press("Tổng quan")
    text = admin.last_text
    assert "10 tổ · 5 người dân tham gia · 1 người đã bắt đầu học" in text
    assert "Lượt hoàn thành bài: 1 tự học · 0 học trực tiếp" in text
    assert "Tổ trưởng dùng bot: 1 người, ở 1/10 tổ" in text
    await admin.press("Thi đua")
    lines = admin.last_text.split("\n")
    assert lines[0] == "🏆 Thi đua giữa các tổ — Phường Mẫu"
    ranked = [line for line in lines if "% (" in line]
    assert len(ranked) == 10
    # storage.stats.ranking: groups with members first, then rate, then how near the target (nobody has
    # finished: lower targets first); a group without members never ranks above one with members
    assert ranked[0] == "1. Tổ dân phố 5: 0% (0/2) · chỉ tiêu 75% · không đổi trong tuần"
    assert all("(0/0)" in line for line in ranked[3:]) and "4. Tổ dân phố Bắc Sơn: 0% (0/0)" in ranked[3]
    assert "Tổ dân phố 3: 0% (0/2) · chỉ tiêu 80% · không đổi trong tuần" in admin.last_text


async def test_compose_a_broadcast_to_residents_who_have_not_completed_a_lesson(ward: App, clock: ManualClock) -> None:
    admin = await _admin(ward)
    await _residents(ward)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send("Mời bà con học bài 1 trước thứ Sáu.")
    assert "Thông báo này có mời bà con học bài không?" in admin.last_text
    await admin.press("Có, thêm nút")
    await admin.press("Người chưa hoàn thành một bài")
    await admin.press(f"1. {ward.lessons.first.title}")
    preview = admin.history[-3:]
    assert isinstance(preview[0], Text) and "Xem trước" in preview[0].text
    # Exactly what residents get: who sends it, the text, the button.
    assert preview[1] == Menu("📢 UBND phường Mẫu:\nMời bà con học bài 1 trước thứ Sáu.",
                              (Option("📖 Học tiếp", "next"),))
    assert isinstance(preview[2], Menu) and "sẽ gửi tới 4 người" in preview[2].text  # Minh, Hoa, Ba, the admin
    await admin.press("Đồng ý, gửi")
    assert [o.label for o in admin.menu.options][:3] == ["Gửi ngay", "19:00 hôm nay", "08:00 sáng mai"]
    await admin.press("Gửi ngay")
    assert "Đã xếp hàng thông báo #1 cho 4 người" in admin.last_text
    assert await _names(ward, 1) == ["Ba", "Cán bộ Hà", "Hoa", "Minh"]
    [broadcast] = await rows(ward, Broadcast)
    assert broadcast.audience == {"kind": "not_completed", "lesson": ward.lessons.first.id, "ward": "DEMO",
                                  "learn": True}
    # Stored once, with the broadcast; its rows name it and carry nothing.
    assert broadcast.message == {"text": "📢 UBND phường Mẫu:\nMời bà con học bài 1 trước thứ Sáu.",
                                 "options": [["📖 Học tiếp", "next"]]}
    assert {(r.broadcast_id, str(r.payload)) for r in await rows(ward, Outbox)} == {(1, "{}")}
    assert broadcast.author == f"person:{(await person_of(ward, admin)).id}"
    await admin.press("Kết quả gửi")
    assert f"📬 Thông báo #1 — gửi người chưa hoàn thành bài \"{ward.lessons.first.title}\"" in admin.last_text
    assert "⏳ Chờ gửi: bắt đầu gửi lúc 10:00 23/11/2026, cho 4 người" in admin.last_text
    assert "đang chờ 4" in admin.last_text
    await admin.press("Hủy thông báo")
    await admin.press("Hủy thông báo")  # the confirmation
    assert "✖ Đã hủy" in admin.last_text
    assert {r.status for r in await rows(ward, Outbox)} == {OutboxStatus.CANCELLED}
    actions = [a.action for a in await rows(ward, AuditLog)]
    assert "broadcast.create" in actions and "broadcast.cancel" in actions


async def test_chosen_groups_leaders_a_typed_time_and_a_photo(ward: App, clock: ManualClock) -> None:
    admin = await _admin(ward)
    await _residents(ward)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send("Họp tổ tối thứ Bảy.")
    await admin.press("Không cần nút")
    await admin.press("Chọn một số tổ")
    await admin.press("Tổ dân phố 3")
    await admin.press("Tổ dân phố 5")
    await admin.press("Tổ dân phố 5")  # toggled off again
    assert "✅ Tổ dân phố 3" in [o.label for o in admin.menu.options]
    await admin.press("Xong (1 tổ)")
    assert "sẽ gửi tới 2 người (Tổ dân phố 3)" in admin.last_text  # names, not codes
    await admin.press("Đổi người nhận")
    await admin.press("Chỉ các tổ trưởng")
    assert "sẽ gửi tới 1 người (các tổ trưởng)" in admin.last_text
    await admin.press("Đồng ý, gửi")
    await admin.press("Chọn giờ khác")
    await admin.send("ngày mai")
    assert "chưa đọc được thời gian «ngày mai»: «ngày mai» còn thiếu giờ gửi" in admin.last_text
    assert "Ví dụ: 10/12 8h · 8 giờ sáng mai" in admin.last_text
    await admin.send("31/11 8h")
    assert "Ngày «31/11» không có trong lịch" in admin.last_text
    await admin.send("8h hôm nay")  # 10:00 now
    assert "08:00 23/11/2026 đã qua rồi (bây giờ là 10:00 23/11/2026)" in admin.last_text
    await admin.send("8 rưỡi tối 25/11")
    assert "Mình chưa hiểu «8»" in admin.last_text
    await admin.send("8 giờ rưỡi tối 25/11")
    assert "Đã lên lịch thông báo #1" in admin.last_text and "sẽ gửi lúc 20:30 25/11/2026" in admin.last_text
    [broadcast] = await rows(ward, Broadcast)
    assert broadcast.status == BroadcastStatus.SCHEDULED and broadcast.audience == {"kind": "leaders", "ward": "DEMO"}
    assert broadcast.scheduled_at == datetime(2026, 11, 25, 20, 30, tzinfo=ZONE).astimezone(UTC)

    # A photo: on a channel that could not fetch it, the admin is told what to do instead.
    await admin.press("Về menu quản trị")
    await admin.press("Soạn thông báo")
    replies = await admin.attach("photo")
    assert "chưa nhận được ảnh" in admin.texts(replies) and "mở bot trên Telegram hoặc Zalo" in admin.texts(replies)
    assert "--image" not in admin.texts(replies) and "hocvuso" not in admin.texts(replies)  # no shell commands
    # Where the adapter can fetch it (Incoming.fetch_media), it is kept with its caption as the text.
    photo = ward.conversation.services.files_dir / "in" / "tg-test.jpg"

    async def download() -> Path:
        photo.parent.mkdir(parents=True, exist_ok=True)
        PILImage.new("RGB", (40, 30), "red").save(photo, format="JPEG")
        return photo

    await admin._handle(attachment="photo", fetch_media=download, text="Ngày hội chuyển đổi số")
    await admin.press("Không cần nút")
    await admin.press("Tất cả người dân")
    shown = [r for r in admin.history[-3:] if isinstance(r, Image)]
    # One message, as residents get it.
    assert shown == [Image(photo, "📢 UBND phường Mẫu:\nNgày hội chuyển đổi số")]
    assert "sẽ gửi tới 5 người" in admin.last_text
    await admin.press("Đồng ý, gửi")
    await admin.press("Gửi ngay")
    broadcast = (await rows(ward, Broadcast))[-1]
    assert broadcast.image == str(photo.resolve()) and photo.exists()
    rows_ = [r for r in await rows(ward, Outbox) if r.broadcast_id == broadcast.id]
    assert len(rows_) == 5 and all(r.payload == {} for r in rows_)
    assert broadcast.message == {"text": "📢 UBND phường Mẫu:\nNgày hội chuyển đổi số", "image": str(photo.resolve())}


async def test_a_photo_nobody_asked_for_is_not_kept(ward: App, tmp_path: Path) -> None:
    resident = Chat(ward.conversation, user="77", name="Lan")
    await join(resident)
    photo = tmp_path / "anh.jpg"

    async def download() -> Path:  # what an adapter would do if asked: it must not be asked
        photo.write_bytes(b"\xff\xd8\xff")
        return photo

    replies = await resident._handle(attachment="photo", fetch_media=download)
    assert "chỉ đọc được tin nhắn chữ" in resident.texts(replies) and not photo.exists()


async def test_reports_arrive_as_documents_a_workbook_and_charts(ward: App, clock: ManualClock) -> None:
    admin = await _admin(ward)
    await _residents(ward)
    await admin.send("/quantri")
    await admin.press("Báo cáo")
    await admin.press("6 tháng")
    report, book, annex, *charts = [r for r in admin.history if isinstance(r, Document | Image)]
    assert isinstance(report, Document) and report.path.suffix == ".docx"
    assert report.caption.startswith("📑 Báo cáo Phường Mẫu — 6 tháng cuối năm 2026: ")
    assert "1 lượt hoàn thành bài tự học" in report.caption
    assert isinstance(book, Document) and book.path.suffix == ".xlsx"
    workbook = openpyxl.load_workbook(io.BytesIO(book.path.read_bytes()))
    assert "Thi đua" in workbook.sheetnames
    assert isinstance(annex, Document) and annex.path.suffix == ".docx"
    assert len(charts) == 3 and all(isinstance(c, Image) and c.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
                                    for c in charts)
    assert report.path.parent == ward.conversation.services.files_dir / "out"
    [entry] = [a for a in await rows(ward, AuditLog) if a.action == "admin.report"]
    assert entry.details == {"period": "6m"}


async def test_join_link_and_qr_code_and_leader_invitations(ward: App, clock: ManualClock) -> None:
    from dataclasses import replace

    ward.conversation.services = replace(ward.conversation.services, telegram_username="hocvuso_bot")
    admin = await _admin(ward)
    chats = await _residents(ward)
    await admin.send("/quantri")
    await admin.press("Link tham gia")
    await admin.press("Tổ dân phố 3")
    assert "https://t.me/hocvuso_bot?start=g_DEMO-TDP03" in admin.texts()
    assert 'nhắn cho bot "/start g_DEMO-TDP03"' in admin.texts()
    [qr] = [r for r in admin.history if isinstance(r, Image)]
    [decoded] = zxingcpp.read_barcodes(PILImage.open(qr.path))
    assert decoded.text == "https://t.me/hocvuso_bot?start=g_DEMO-TDP03"
    # The poster for the notice board: the short code Zalo users type, in large type under the code.
    assert "hoặc chỉ gõ mã g_DEMO-TDP03" in admin.texts()
    assert qr.path.read_bytes() == join_qr_png(decoded.text, caption="Tổ dân phố 3", code="g_DEMO-TDP03")

    await admin.press("Về menu quản trị")
    await admin.press("Mời tổ trưởng")
    await admin.press("Tổ dân phố 5")
    assert "Tổ trưởng của Tổ dân phố 5: Ba" in admin.last_text
    await admin.press("Tạo link mời")
    assert "https://t.me/hocvuso_bot?start=ld_" in admin.last_text
    assert "dùng được một lần, đến 10:00 30/11/2026" in admin.last_text
    await admin.press("Tổ trưởng của tổ này")
    await admin.press("Bỏ quyền của Ba")
    assert "Bỏ quyền tổ trưởng Tổ dân phố 5 của Ba?" in admin.last_text
    await admin.press("Bỏ quyền")
    assert "Đã bỏ quyền" in admin.last_text and "Tổ trưởng của Tổ dân phố 5: chưa có" in admin.last_text
    assert [r.kind for r in await rows(ward, Role)] == [RoleKind.ADMIN]
    await chats["Ba"].send("/nhom")
    assert "chỉ dành cho tổ trưởng" in chats["Ba"].last_text


async def test_admin_add_needs_a_started_and_consenting_account(ward: App, clock: ManualClock) -> None:
    from tests.delivery.test_broadcasts import _stamp_schema

    await _stamp_schema(ward)
    env = {"DATABASE_URL": ward.settings.database_url}

    async def run(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, cli, ["admin", "add", *args], env=env,
                                       obj=Deps(clock=clock))

    missing = await run("telegram:555")
    assert missing.exit_code == 1 and "gửi /start và đồng ý" in missing.output
    bad = await run("555")
    assert bad.exit_code == 1 and "telegram:123456789" in bad.output
    chat = Chat(ward.conversation, channel="telegram", user="555", name="Cán bộ Hà")
    await join(chat)
    wrong = await run("telegram:555", "--ward", "KHONGCO")
    assert wrong.exit_code == 1 and "KHONGCO" in wrong.output
    done = await run("telegram:555")
    assert done.exit_code == 0, done.output
    assert "Đã cấp quyền cán bộ quản trị Phường Mẫu cho Cán bộ Hà" in done.output
    again = await run("telegram:555", "--ward", "DEMO")
    assert again.exit_code == 0 and "đã là cán bộ quản trị" in again.output
    [role] = await rows(ward, Role)
    assert (role.kind, role.granted_by, role.granted_at) == (RoleKind.ADMIN, "cli", clock.now())
    [entry] = [a for a in await rows(ward, AuditLog) if a.action == "role.grant"]
    assert entry.actor == "cli" and entry.details == {"kind": "admin", "ward": role.ward_id} and entry.at == clock.now()
    await chat.send("/quantri")
    assert chat.last_text.startswith("🏛 Quản trị — Phường Mẫu")


async def test_numbered_channels_compose_by_typing_numbers(ward: App) -> None:
    admin = Chat(ward.conversation, user="9001", name="Cán bộ Hà", capabilities=NUMBERED)
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    await admin.send("/quantri")
    await admin.send("3")  # Soạn thông báo
    await admin.send("Tin ngắn")
    await admin.send("2")  # no "Học tiếp" button
    await admin.send("1")  # everyone
    assert "sẽ gửi tới 1 người" in admin.last_text
    await admin.send("1")  # confirm
    await admin.send("1")  # now
    assert "Đã xếp hàng thông báo #1 cho 1 người" in admin.last_text


async def test_composer_buttons_out_of_order_or_for_another_ward_change_nothing(ward: App) -> None:
    from storage.groups import upsert_group, upsert_ward
    from storage.models import GroupKind
    from tests.staff import snapshot

    admin = await _admin(ward)
    async with ward.sessions() as session, session.begin():
        other, _ = await upsert_ward(session, code="KHAC", name="Xã Khác")
        foreign, _ = await upsert_group(session, ward_id=other.id, code="KHAC-T1", name="Thôn 1",
                                        kind=GroupKind.THON, target_percent=70)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send("Tin thử")
    before = await snapshot(ward)
    assert "Nút này đã cũ" in admin.texts(await admin.action("bc:at:now"))  # no preview yet
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send("Tin thử")
    assert "Nút này đã cũ" in admin.texts(await admin.action("bc:a:all"))  # the button question comes first
    await admin.press("Không cần nút")
    await admin.action("bc:a:all")
    assert "sẽ gửi tới 1 người" in admin.last_text
    assert "Nút này đã cũ" in admin.texts(await admin.action("bc:at:now"))  # not confirmed under the preview
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    await admin.send("Tin thử")
    await admin.press("Không cần nút")
    await admin.press("Chọn một số tổ")
    # Another ward's group was never offered: an old (forged) button, nothing changes.
    assert "Nút này đã cũ" in admin.texts(await admin.action(f"bc:t:{foreign.id}"))
    assert await snapshot(ward) == before and await rows(ward, Broadcast) == []
