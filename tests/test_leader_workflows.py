"""Issue 11 §4 through the chat: a leader's per-member page (nudge one person, undo an
assisted completion, erase someone added by name), the dashboard's "what to do" line and
who stalled inside a lesson today, a leader told when their role is removed, and the ward
admin's views of any group, groups without a leader, unanswered questions and who blocked
the bot. (Refusals of forged presses are at the end.)"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import select

from bot.app import App
from storage.models import AuditLog, Identity, LessonProgress, Outbox, Person, ProgressStatus, Role, RoleKind
from tests.staff import group, make_admin, make_leader, person_of, rows, snapshot
from tests.support import Chat, ManualClock, join, pass_lesson

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def _group(ward: App) -> tuple[Chat, dict[str, Chat]]:
    """Tổ dân phố 3: leader Ba; Lan finished lesson 1, Minh started nothing."""
    leader = Chat(ward.conversation, user="8000", name="Ba Nguyễn")
    await join(leader)
    await make_leader(ward, leader, "DEMO-TDP03")
    people = {}
    for user, name in (("8001", "Lan"), ("8002", "Minh")):
        people[name] = Chat(ward.conversation, user=user, name=name)
        await join(people[name])
    await pass_lesson(people["Lan"], ward.lessons.first)
    return leader, people


async def _nudges(ward: App) -> list[tuple[str, Outbox]]:
    result = []
    async with ward.sessions() as session:
        for row in (await session.exec(select(Outbox).where(Outbox.kind == "nudge").order_by(Outbox.id))).all():
            identity = await session.get(Identity, row.identity_id)
            person = await session.get(Person, identity.person_id)
            result.append((person.display_name, row))
    return result


async def _progress(ward: App, person_id: int, lesson_id: str) -> LessonProgress | None:
    async with ward.sessions() as session:
        return (await session.exec(select(LessonProgress).where(
            LessonProgress.person_id == person_id, LessonProgress.lesson_id == lesson_id))).first()


async def test_the_member_page_shows_lessons_and_nudges_one_person(ward: App, clock: ManualClock) -> None:
    leader, people = await _group(ward)
    first = ward.lessons.first
    await leader.send("/nhom")
    await leader.press("Danh sách thành viên (3)")
    await leader.press("Lan")
    text = leader.last_text
    assert text.startswith("👤 Lan — Tổ dân phố 3")
    assert "Đã học 1/13 bài · lần cuối: 10:00 23/11/2026" in text
    assert f"✅ 1. {first.title} — 23/11/2026" in text
    assert "Xóa người này" not in str(leader.menu.options)  # she has a phone: she erases herself

    clock._now = local(27, 22)  # Friday 22:00, the quiet hours
    await leader.action(leader.option("Nhắc riêng").action)
    assert "Đã xếp lời nhắc tới Lan" in leader.last_text and "07:00 28/11/2026" in leader.last_text
    [(name, row)] = await _nudges(ward)
    assert name == "Lan" and row.due_at == local(27, 22) and "Tổ trưởng Ba Nguyễn" in row.payload["text"]
    assert row.about_person_id == (await person_of(ward, leader)).id

    # Once in three days per person, whether by the one-person or the group nudge.
    await leader.press("Về trang của Lan")
    await leader.press("Nhắc riêng")
    assert "Lan đã được nhắc trong 3 ngày qua" in leader.last_text
    await leader.send("/nhom")
    await leader.press("Nhắc người chưa học (2)")
    assert "Đã xếp lời nhắc tới 1 người" in leader.last_text  # Minh; Lan was nudged today
    assert sorted(n for n, _ in await _nudges(ward)) == ["Lan", "Minh"]
    audit = [(a.action, a.details) for a in await rows(ward, AuditLog) if a.action.startswith("leader.nudge")]
    assert audit[0] == ("leader.nudge_one", {"queued": 1, "recent": 0, "unreachable": 0})
    assert audit[1] == ("leader.nudge_one", {"queued": 0, "recent": 1, "unreachable": 0})


async def test_an_assisted_completion_recorded_by_mistake_is_undone(ward: App, clock: ManualClock) -> None:
    leader, people = await _group(ward)
    first, second, third = list(ward.lessons)[:3]
    minh = await person_of(ward, people["Minh"])
    await people["Minh"].action(f"lesson:{third.id}:0")  # Minh opened lesson 3 himself
    opened = await _progress(ward, minh.id, third.id)
    clock.advance(hours=1)
    await leader.send("/nhom")
    await leader.press("Ghi nhận học trực tiếp")
    await leader.press("Minh (0/13)")
    await leader.press(f"2. {second.title}")  # by mistake: no progress before
    await leader.press(f"3. {third.title}")  # by mistake: he was in the middle of it
    assert (await _progress(ward, minh.id, third.id)).assisted_by is not None

    await leader.send("/nhom")
    await leader.press("Danh sách thành viên")
    await leader.press("Minh")
    assert f"🤝 2. {second.title} — 23/11/2026" in leader.last_text
    await leader.press("Hủy ghi nhận bài 2")
    assert "Hủy ghi nhận Minh đã học trực tiếp bài 2" in leader.last_text
    before = await snapshot(ward)
    await leader.press("Không, giữ nguyên")
    assert "👤 Minh" in leader.last_text
    assert {k: v for k, v in (await snapshot(ward)).items() if k != "AuditLog"} == {
        k: v for k, v in before.items() if k != "AuditLog"}
    await leader.press("Hủy ghi nhận bài 2")
    await leader.press("Đúng, hủy ghi nhận")
    assert f"Đã hủy ghi nhận bài 2. {second.title} của Minh" in leader.last_text
    assert await _progress(ward, minh.id, second.id) is None  # he had no progress: the row is gone
    await leader.press("Hủy ghi nhận bài 3")
    await leader.press("Đúng, hủy ghi nhận")
    back = await _progress(ward, minh.id, third.id)
    assert (back.status, back.assisted_by, back.completed_at) == (ProgressStatus.IN_PROGRESS, None, None)
    assert (back.lesson_version, back.updated_at, back.started_at) == (
        opened.lesson_version, opened.updated_at, opened.started_at)
    assert "Hủy ghi nhận" not in str(leader.menu.options)
    assert "Đã học 0/13 bài" in leader.last_text and f"📖 3. {third.title}" in leader.last_text
    audit = [(a.action, a.details["outcome"]) for a in await rows(ward, AuditLog) if a.action == "leader.undo_assist"]
    assert audit == [("leader.undo_assist", "deleted"), ("leader.undo_assist", "restored")]

    # The confirmation pressed again (an old button): nothing more happens.
    before = await snapshot(ward)
    await leader.action(f"lead:ux:{(await group(ward, 'DEMO-TDP03')).id}:{minh.id}:3")
    assert await snapshot(ward) == before


async def test_someone_added_by_name_is_erased_from_their_page_and_counts_agree(ward: App, clock: ManualClock) -> None:
    leader, people = await _group(ward)
    first = ward.lessons.first
    await leader.send("/nhom")
    await leader.press("Ghi nhận học trực tiếp")
    await leader.press("Thêm người theo tên")
    await leader.send("Bà Tư")
    await leader.press(f"1. {first.title}")
    await leader.send("/nhom")
    assert "4 thành viên" in leader.last_text
    await leader.press("Danh sách thành viên (4)")
    await leader.press("Bà Tư")
    assert "(không dùng điện thoại)" in leader.last_text and "Nhắc riêng" not in str(leader.menu.options)
    await leader.press("Xóa người này")
    await leader.press("Xóa hẳn")
    assert "Đã xóa dữ liệu của người này" in leader.texts()
    # The tombstone stays counted: the page and the members button say the same.
    await leader.send("/nhom")
    assert "4 thành viên" in leader.last_text
    await leader.press("Danh sách thành viên (4)")
    assert "Thành viên của Tổ dân phố 3 (4 người)" in leader.last_text
    assert "1 người đã xóa dữ liệu" in leader.last_text and "Bà Tư" not in leader.last_text
    # A resident erasing her own data: the same.
    await people["Minh"].send("/xoadulieu")
    await people["Minh"].press("Xóa dữ liệu")
    await leader.send("/nhom")
    assert "4 thành viên" in leader.last_text and "Danh sách thành viên (4)" in str(leader.menu.options)


async def test_the_dashboard_opens_with_what_to_do_and_lists_who_stalled_today(ward: App, clock: ManualClock) -> None:
    leader, people = await _group(ward)
    second = list(ward.lessons)[1]
    await leader.send("/nhom")
    assert leader.last_text.split("\n")[1] == "👋 Hôm nay không có ai cần nhắc và không có câu hỏi nào chờ trả lời."
    clock._now = local(27, 9)  # four days later: Lan and Minh are behind
    await people["Lan"].send("/hotro")
    await people["Lan"].send("Tôi không mở được bài 2.")
    await people["Lan"].action(f"lesson:{second.id}:0")  # …and opened lesson 2 this morning
    await leader.send("/nhom")
    lines = leader.last_text.split("\n")
    assert lines[1] == "👋 2 người cần nhắc · 1 câu hỏi chưa trả lời"
    assert lines.index(lines[1]) < next(i for i, l in enumerate(lines) if l.startswith("Từng bài"))
    assert "Cần nhắc (1 người" in leader.last_text and "• Minh — 0/13 bài" in leader.last_text
    assert "Dở bài hôm nay (1 người" in leader.last_text and "• Lan — 1/13 bài" in leader.last_text
    labels = [o.label for o in leader.menu.options]
    assert "🔔 Nhắc người chưa học (2)" in labels and "🙋 Câu hỏi của người dân (1)" in labels
    await leader.press("Nhắc người chưa học (2)")
    assert sorted(n for n, _ in await _nudges(ward)) == ["Lan", "Minh"]
    # The next local day, Lan is not "stalled today" any more (and not idle for 3 days yet).
    clock._now = local(28, 0, 1)
    await leader.send("/nhom")
    assert "Dở bài hôm nay" not in leader.last_text and "👋 1 người cần nhắc" in leader.last_text


async def test_a_leader_is_told_when_their_role_is_removed(ward: App, clock: ManualClock) -> None:
    leader, _ = await _group(ward)
    admin = Chat(ward.conversation, user="9000", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    await leader.send("/menu")
    assert any("Tổ của tôi" in o.label for o in leader.menu.options)
    await admin.send("/quantri")
    await admin.press("Mời tổ trưởng")
    await admin.press("Tổ dân phố 3")
    await admin.press("Bỏ quyền của Ba Nguyễn")
    await admin.press("✖ Bỏ quyền")
    assert await rows(ward, Role) and all(r.kind == RoleKind.ADMIN for r in await rows(ward, Role))
    async with ward.sessions() as session:
        [row] = (await session.exec(select(Outbox).where(Outbox.kind == "role"))).all()
        identity = await session.get(Identity, row.identity_id)
    assert identity.external_id == "8000" and row.due_at == clock.now()
    assert row.payload["text"].startswith("Bạn không còn là tổ trưởng của Tổ dân phố 3 (Phường Mẫu).")
    [revoked] = [a for a in await rows(ward, AuditLog) if a.action == "admin.revoke"]
    assert revoked.details["told"] is True
    await leader.send("/menu")
    assert not any("Tổ của tôi" in o.label for o in leader.menu.options)
    before = await snapshot(ward)
    await leader.send("/nhom")
    assert "chỉ dành cho tổ trưởng hoặc cán bộ phường" in leader.last_text
    assert {k: v for k, v in (await snapshot(ward)).items() if k != "AuditLog"} == {
        k: v for k, v in before.items() if k != "AuditLog"}


async def test_the_admin_opens_any_group_and_the_ward_lists(ward: App, clock: ManualClock) -> None:
    leader, people = await _group(ward)
    admin = Chat(ward.conversation, user="9000", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    hoa = Chat(ward.conversation, user="8003", name="Hoa")
    await join(hoa, group_code="DEMO-TDP05")
    clock._now = local(27, 9)
    await hoa.send("/hotro")
    await hoa.send("Cho tôi hỏi cách cài VNeID.")
    async with ward.sessions() as session, session.begin():  # Minh blocked the bot (the channel told us)
        await session.exec(update(Identity).where(Identity.external_id == "8002").values(blocked_at=clock.now()))

    await admin.send("/quantri")
    await admin.press("Tổng quan")
    labels = [o.label for o in admin.menu.options]
    assert "🧑‍💼 Tổ chưa có tổ trưởng (9)" in labels  # ten demo groups, Ba leads one
    assert "🙋 Câu hỏi chưa trả lời (1)" in labels and "🚫 Đã chặn bot (1)" in labels

    await admin.press("Tổ chưa có tổ trưởng")
    assert "Tổ dân phố 5" in admin.last_text and "Tổ dân phố 3" not in admin.last_text
    await admin.press("Về menu quản trị")
    await admin.press("Tổng quan")
    await admin.press("Câu hỏi chưa trả lời")
    assert "• Tổ dân phố 5: 1 câu" in admin.last_text and "Cho tôi hỏi cách cài VNeID." in admin.last_text
    await admin.press("Trả lời Hoa")
    await admin.send("Chị mang điện thoại ra phường, cán bộ cài giúp.")
    await admin.send("/quantri")
    await admin.press("Tổng quan")
    assert "🙋 Câu hỏi chưa trả lời (0)" in [o.label for o in admin.menu.options]
    await admin.press("Đã chặn bot")
    assert "• Tổ dân phố 3: 1 người" in admin.last_text and "Minh" not in admin.last_text

    # The group as its leader sees it: read-only, plus the nudge.
    await admin.press("Tổ dân phố 3")
    text = admin.last_text
    assert text.startswith("👥 Tổ dân phố 3 — Phường Mẫu") and "👋 3 người cần nhắc" in text  # Ba too
    labels = [o.label for o in admin.menu.options]
    assert not any("Ghi nhận" in l or "Danh sách thành viên" in l for l in labels)
    await admin.press("Nhắc người chưa học (3)")
    assert "Đã xếp lời nhắc tới 2 người" in admin.last_text and "1 người không nhận được tin" in admin.last_text
    nudges = await _nudges(ward)
    assert sorted(n for n, _ in nudges) == ["Ba Nguyễn", "Lan"]
    assert all("Cán bộ phường Cán bộ Hà" in row.payload["text"] for _, row in nudges)
    assert [a.action for a in await rows(ward, AuditLog) if a.action in ("admin.group", "admin.nudge")] == [
        "admin.group", "admin.nudge"]
    # Any group of the ward, from the overview.
    await admin.send("/quantri")
    await admin.press("Tổng quan")
    await admin.press("Xem từng tổ")
    await admin.press("Tổ dân phố 5")
    assert admin.last_text.startswith("👥 Tổ dân phố 5")


async def test_forged_member_pages_undos_and_admin_views_are_refused(ward: App, clock: ManualClock) -> None:
    leader, people = await _group(ward)
    second = list(ward.lessons)[1]
    other = Chat(ward.conversation, user="8100", name="Bảy")  # leads Tổ dân phố 5
    await join(other, group_code="DEMO-TDP05")
    await make_leader(ward, other, "DEMO-TDP05")
    cohort = Chat(ward.conversation, user="8101", name="Tám")  # a second leader of Tổ dân phố 3
    await join(cohort)
    await make_leader(ward, cohort, "DEMO-TDP03")
    await leader.send("/nhom")
    await leader.press("Ghi nhận học trực tiếp")
    await leader.press("Minh (0/13)")
    await leader.press(f"2. {second.title}")
    g3, g5 = (await group(ward, "DEMO-TDP03")).id, (await group(ward, "DEMO-TDP05")).id
    minh, hoa_group_person = await person_of(ward, people["Minh"]), await person_of(ward, other)
    before = await snapshot(ward)
    for chat, action in (
        (other, f"lead:p:{g3}:{minh.id}"),  # not their group
        (leader, f"lead:p:{g3}:{hoa_group_person.id}"),  # not a member of the group
        (other, f"lead:np:{g3}:{minh.id}"),
        (cohort, f"lead:ud:{g3}:{minh.id}:2"),  # another leader did not record it
        (other, f"adm:g:{g5}"),  # not an admin
        (leader, "adm:hq:1"),
    ):
        await chat.action(action)
        assert "chỉ dành cho tổ trưởng hoặc cán bộ phường" in chat.last_text, (action, chat.last_text)
    assert {k: v for k, v in (await snapshot(ward)).items() if k != "AuditLog"} == {
        k: v for k, v in before.items() if k != "AuditLog"}
    # The undo pressed without being asked first: nothing happens.
    await leader.action(f"lead:ux:{g3}:{minh.id}:2")
    assert (await _progress(ward, minh.id, second.id)).assisted_by is not None
    # An admin of the ward may undo another's recording.
    admin = Chat(ward.conversation, user="9000", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    await admin.action(f"lead:ud:{g3}:{minh.id}:2")
    await admin.press("Đúng, hủy ghi nhận")
    assert await _progress(ward, minh.id, second.id) is None
    assert "Đã hủy ghi nhận bài 2" in admin.last_text
