"""The leader's and the admin's journeys, written once against
:class:`~tests.contract.drivers.Driver`, and what they leave in the database, channel-free
(names instead of ids, no times), so every channel can be held to one expected outcome."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import select

from bot.app import App
from bot.curriculum import LessonLibrary
from storage.models import (
    AuditLog,
    Broadcast,
    HelpRequest,
    Identity,
    Invite,
    LessonProgress,
    Outbox,
    Person,
    ResidentGroup,
    Role,
    Ward,
)
from tests.contract.drivers import Driver
from tests.support import ManualClock

ADMIN, LEADER, RESIDENT = "Hà Phạm", "Ba Nguyễn", "Lan Trần"
NO_PHONE = "Cụ Sáu"


async def admin_invites_a_leader(admin: Driver, leader: Driver) -> None:
    """The admin makes an invitation for Tổ dân phố 3; the leader opens it (consent first)."""
    await admin.send("/quantri")
    await admin.choose("Mời tổ trưởng")
    await admin.choose("Tổ dân phố 3")
    assert "Tổ trưởng của Tổ dân phố 3: chưa có" in admin.last_text()
    await admin.choose("Tạo link mời")
    found = re.search(r"/start ld_([A-Za-z0-9_-]+)", admin.last_text())
    assert found, admin.last_text()
    await leader.send(f"/start ld_{found.group(1)}")
    assert "Bạn có đồng ý không?" in leader.last_text()
    await leader.choose("Đồng ý")
    assert leader.said("Bạn đã trở thành tổ trưởng của Tổ dân phố 3")
    if leader.display_name:
        await leader.choose("Đúng rồi")
    else:
        await leader.send(LEADER)
    await leader.choose("Tổ của tôi")  # the group came with the invitation: straight to the menu
    assert leader.last_text().startswith("👥 Tổ dân phố 3 — Phường Mẫu")


async def leader_journey(leader: Driver, resident: Driver, lessons: LessonLibrary, clock: ManualClock) -> None:
    """Assisted completion for someone without a phone, a nudge, a resident's question answered."""
    await leader.send("/nhom")
    assert "1 người đã bắt đầu học" in leader.last_text()  # the resident learned lesson 1
    await leader.choose("Ghi nhận học trực tiếp")
    await leader.choose("Thêm người theo tên")
    await leader.send(NO_PHONE)
    await leader.choose(f"1. {lessons.first.title}")
    assert f"Đã ghi nhận: {NO_PHONE} hoàn thành bài" in leader.last_text()
    await leader.choose("Về trang của tổ")
    assert f"1. {lessons.first.title}: ▓▓▓░░ 2/3 (🤝 1)" in leader.last_text()
    # Recorded by mistake? Undone from the person's page (and recorded again here).
    await leader.choose("Danh sách thành viên (3)")
    await leader.choose(NO_PHONE)
    assert f"🤝 1. {lessons.first.title}" in leader.last_text()
    await leader.choose("Hủy ghi nhận bài 1")
    await leader.choose("Đúng, hủy ghi nhận")
    assert f"Đã hủy ghi nhận bài 1. {lessons.first.title} của {NO_PHONE}" in leader.last_text()
    await leader.choose("Về trang của tổ")
    assert f"1. {lessons.first.title}: ▓▓░░░ 1/3 · đang học 0" in leader.last_text()
    await leader.choose("Ghi nhận học trực tiếp")
    await leader.choose(f"{NO_PHONE} (0/13)")
    await leader.choose(f"1. {lessons.first.title}")
    await leader.choose("Về trang của tổ")

    clock.advance(days=4)  # Friday: the resident has not come back since Monday
    await leader.send("/nhom")
    assert f"• {RESIDENT} — 1/13 bài" in leader.last_text()
    await leader.choose("Nhắc người chưa học")
    assert "Đã xếp lời nhắc tới 1 người" in leader.last_text()
    assert "1 người không nhận được tin qua bot" in leader.last_text()  # Cụ Sáu has no phone

    await resident.send("/hotro")
    await resident.send("Tôi quên mật khẩu VNeID")
    assert "đã chuyển câu hỏi tới tổ trưởng (1 người)" in resident.last_text()
    await leader.send("/nhom")
    await leader.choose("Câu hỏi của người dân (1)")
    await leader.choose(f"Trả lời {RESIDENT}")
    await leader.send("Mai mang căn cước qua nhà văn hóa tổ nhé.")
    assert f"Mình đang chuyển câu trả lời tới {RESIDENT}" in leader.last_text()


async def admin_journey(admin: Driver, lessons: LessonLibrary) -> None:
    """Overview, ranking, a broadcast to who has not completed lesson 1, its report, a report."""
    await admin.send("/quantri")
    await admin.choose("Tổng quan")
    assert "10 tổ · 4 người dân tham gia · 2 người đã bắt đầu học" in admin.last_text()
    assert "Lượt hoàn thành bài: 1 tự học · 1 học trực tiếp với tổ trưởng" in admin.last_text()
    await admin.choose("Thi đua giữa các tổ")
    assert "Tổ dân phố 3: 0% (0/3)" in admin.last_text()
    await admin.choose("Về menu quản trị")
    await admin.choose("Soạn thông báo")
    await admin.send("Mời bà con học bài 1 trong tuần này.")
    await admin.choose("Có, thêm nút")
    await admin.choose("Người chưa hoàn thành một bài")
    await admin.choose(f"1. {lessons.first.title}")
    assert "sẽ gửi tới 2 người" in admin.last_text()  # the admin and the leader; Cụ Sáu has no chat
    assert admin.said("Mời bà con học bài 1 trong tuần này.")  # the preview
    await admin.choose("Đồng ý, gửi")
    await admin.choose("Gửi ngay")
    assert "Đã xếp hàng thông báo #1 cho 2 người" in admin.last_text()
    await admin.choose("Kết quả gửi")
    assert "Thông báo #1 — gửi người chưa hoàn thành bài" in admin.last_text()
    assert "⏳ Chờ gửi: bắt đầu gửi lúc" in admin.last_text() and "cho 2 người" in admin.last_text()
    await admin.choose("Về menu quản trị")
    await admin.choose("Báo cáo")
    await admin.choose("Tháng này")
    assert "Đã gửi báo cáo" in admin.last_text()
    # The report's summary reaches every channel (a file on Telegram, a text on Zalo, a path here).
    assert admin.said("📑 Báo cáo Phường Mẫu — tháng 11 năm 2026: ")


async def staff_outcome(app: App) -> dict[str, Any]:
    """What the journeys left in the database, by names (no ids, no times, no channel)."""
    async with app.sessions() as session:
        people = {p.id: p.display_name for p in (await session.exec(select(Person))).all()}
        groups = {g.id: g.code for g in (await session.exec(select(ResidentGroup))).all()}
        wards = {w.id: w.code for w in (await session.exec(select(Ward))).all()}
        owner = {i.id: people.get(i.person_id) for i in (await session.exec(select(Identity))).all()}

        def who(ref: str | int | None) -> str | None:
            if isinstance(ref, str) and ref.startswith("person:"):
                return people.get(int(ref.split(":")[1]))
            return people.get(ref) if isinstance(ref, int) else ref

        def all_of(model: type) -> list[Any]:
            return list(model_rows[model])

        model_rows = {m: (await session.exec(select(m))).all() for m in
                      (Role, Invite, LessonProgress, Outbox, Broadcast, HelpRequest, AuditLog, Person)}
    return {
        "roles": sorted((who(r.person_id), r.kind, groups.get(r.group_id), wards.get(r.ward_id), who(r.granted_by))
                        for r in all_of(Role)),
        "invites": sorted((groups.get(i.group_id), who(i.created_by), who(i.used_by)) for i in all_of(Invite)),
        "added": sorted((p.display_name, groups.get(p.group_id), who(p.added_by), p.consent_version)
                        for p in all_of(Person) if p.added_by is not None),
        "progress": sorted((who(p.person_id), p.lesson_id, p.status, p.score, who(p.assisted_by))
                           for p in all_of(LessonProgress)),
        "outbox": sorted((o.kind, owner.get(o.identity_id), o.payload.get("text"), str(o.payload.get("options")),
                          o.dedupe_key.split(":")[0], o.status) for o in all_of(Outbox)),
        "broadcasts": sorted((who(b.author), str(b.audience), b.text, b.status, b.recipients) for b in all_of(Broadcast)),
        "help": sorted((who(h.person_id), h.text, who(h.answered_by)) for h in all_of(HelpRequest)),
        "audit": sorted((who(a.actor), a.action) for a in all_of(AuditLog) if a.actor != "test"),
    }
