"""Leaders in the chat: invitations, the group's dashboard, nudges, assisted completion,
the weekly digest. (Who may do what is tested on its own in test_authorization.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.app import App
from bot.digest import digest_due, plan_digests
from storage.models import AuditLog, Invite, LessonProgress, Outbox, Person, ProgressStatus, Role, RoleKind
from storage.stats import group_stats
from tests.staff import group, make_admin, make_leader, person_of, rows, snapshot
from tests.support import Chat, ManualClock, join, pass_lesson

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def _invite(ward: App, admin: Chat, group_name: str = "Tổ dân phố 3") -> str:
    """The admin makes an invitation in the chat; returns the code from the text shown."""
    await admin.send("/quantri")
    await admin.press("Mời tổ trưởng")
    await admin.press(group_name)
    await admin.press("Tạo link mời")
    found = re.search(r"/start ld_([A-Za-z0-9_-]+)", admin.last_text)
    assert found, admin.last_text
    return found.group(1)


async def _admin(ward: App) -> Chat:
    admin = Chat(ward.conversation, user="9000", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    return admin


async def test_an_invitation_makes_a_leader_once_after_consent(ward: App, clock: ManualClock) -> None:
    admin = await _admin(ward)
    code = await _invite(ward, admin)
    assert "dùng được một lần" in admin.last_text and "t.me" not in admin.last_text  # no username known

    newcomer = Chat(ward.conversation, user="9100", name="Tư Trần")
    await newcomer.send(f"/start ld_{code}")
    assert "đồng ý" in newcomer.last_text.lower()
    assert await rows(ward, Role) != [] and len(await rows(ward, Role)) == 1  # only the admin so far
    await newcomer.press("Đồng ý")
    assert "trở thành tổ trưởng của Tổ dân phố 3" in newcomer.texts()
    await newcomer.press("Đúng rồi")  # the name; the group is the invitation's
    assert "Tổ của tôi" in [o.label for o in newcomer.menu.options][3]
    leader = await person_of(ward, newcomer)
    assert leader.group_id == (await group(ward, "DEMO-TDP03")).id
    [invite] = await rows(ward, Invite)
    assert invite.used_by == leader.id and invite.used_at == clock.now()
    roles = {(r.kind, r.person_id, r.group_id) for r in await rows(ward, Role)}
    assert (RoleKind.LEADER, leader.id, invite.group_id) in roles
    actions = [(a.actor, a.action) for a in await rows(ward, AuditLog) if a.action.startswith(("admin.", "invite."))]
    assert (f"person:{leader.id}", "invite.accept") in actions
    assert any(action == "admin.invite" for _, action in actions)

    # The same link again, by someone else: refused, nothing changes.
    other = Chat(ward.conversation, user="9200", name="Năm Lê")
    await join(other)
    before = await snapshot(ward)
    await other.send(f"/start ld_{code}")
    assert "đã được dùng rồi" in other.texts()
    assert await snapshot(ward) == before


async def test_a_resident_who_accepts_an_invitation_is_offered_the_leaders_menu_at_once(ward: App) -> None:
    """The menu shown right after accepting offers "Tổ của tôi": the roles the update read when
    it opened are read again once one was granted in it."""
    admin = await _admin(ward)
    code = await _invite(ward, admin)
    resident = Chat(ward.conversation, user="9150", name="Bảy Võ")
    await join(resident)
    assert not any("Tổ của tôi" in o.label for o in resident.menu.options)

    await resident.send(f"/start ld_{code}")

    assert "trở thành tổ trưởng của Tổ dân phố 3" in resident.texts()
    assert any("Tổ của tôi" in o.label for o in resident.menu.options)


async def test_expired_unknown_and_removed_group_invitations_are_refused(ward: App, clock: ManualClock) -> None:
    admin = await _admin(ward)
    code = await _invite(ward, admin)
    resident = Chat(ward.conversation, user="9300", name="Sáu Phạm")
    await join(resident)
    clock.advance(days=7, seconds=1)
    before = await snapshot(ward)
    await resident.send(f"/start ld_{code}")
    assert "đã hết hạn" in resident.texts()
    await resident.send("/start ld_khong-co-ma-nay")
    assert "không đúng" in resident.texts()
    assert await snapshot(ward) == before
    # Opened in time by someone who already leads the group: the invitation stays unused.
    clock.advance(days=-7)
    await make_leader(ward, resident, "DEMO-TDP03")
    await resident.send(f"/start ld_{code}")
    assert "đang là tổ trưởng của Tổ dân phố 3 rồi" in resident.texts()
    assert (await rows(ward, Invite))[0].used_by is None


async def _group_with_residents(ward: App, clock: ManualClock) -> tuple[Chat, dict[str, Chat]]:
    """Tổ dân phố 3: leader Ba; Lan finished lesson 1 on Monday, Minh started nothing, Hoa
    (Tổ dân phố 5) is another group's."""
    leader = Chat(ward.conversation, user="8000", name="Ba Nguyễn")
    await join(leader)
    await make_leader(ward, leader, "DEMO-TDP03")
    people = {}
    for user, name, code in (("8001", "Lan", "DEMO-TDP03"), ("8002", "Minh", "DEMO-TDP03"),
                             ("8003", "Hoa", "DEMO-TDP05")):
        people[name] = Chat(ward.conversation, user=user, name=name)
        await join(people[name], group_code=code)
    await pass_lesson(people["Lan"], ward.lessons.first)
    return leader, people


async def test_the_dashboard_shows_the_group_with_its_numbers(ward: App, clock: ManualClock) -> None:
    leader, _ = await _group_with_residents(ward, clock)
    await leader.send("/nhom")
    text = leader.last_text
    assert text.startswith("👥 Tổ dân phố 3 — Phường Mẫu")
    assert "3 thành viên · 1 người đã bắt đầu học · 0 người học xong cả 13 bài" in text  # Ba, Lan, Minh
    first = ward.lessons.first
    assert f"1. {first.title}: ▓▓░░░ 1/3 · đang học 0" in text
    assert "Hoa" not in text
    assert "Không ai bị chậm cả" in text  # everyone was active today
    clock.advance(days=4)
    await leader.send("/nhom")
    assert "Cần nhắc (2 người" in leader.last_text  # Lan and Minh, not the leader looking
    assert "• Lan — 1/13 bài" in leader.last_text and "• Minh — 0/13 bài" in leader.last_text
    async with ward.sessions() as session:
        [stats] = await group_stats(session, lesson_ids=[l.id for l in ward.lessons], since=clock.now(),
                                    group_ids=[(await group(ward, "DEMO-TDP03")).id], by_lesson=True)
    assert stats.members == 3 and stats.lessons[first.id].completed == 1


async def _outbox(ward: App, kind: str) -> list[tuple[str, Outbox]]:
    """(name of the recipient, row) of every outbox row of ``kind``."""
    from storage.models import Identity

    result = []
    async with ward.sessions() as session:
        for row in (await session.exec(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id))).all():
            identity = await session.get(Identity, row.identity_id)
            person = await session.get(Person, identity.person_id)
            result.append((person.display_name, row))
    return result


async def test_a_nudge_reaches_who_is_behind_once_in_three_days_outside_quiet_hours(ward: App, clock: ManualClock) -> None:
    leader, people = await _group_with_residents(ward, clock)
    await pass_lesson(people["Minh"], ward.lessons.first)
    active = Chat(ward.conversation, user="8004", name="Tâm")  # joins later: active, not behind
    await join(active)
    off = Chat(ward.conversation, user="8005", name="Út")  # behind, but turned reminders off
    await join(off)
    await off.send("/dung")
    clock._now = local(27, 22)  # Friday 22:00: four days later, in the quiet hours
    await active.send("/tiendo")
    await leader.send("/nhom")
    await leader.press("Nhắc người chưa học (3)")
    assert "Đã xếp lời nhắc tới 2 người" in leader.last_text
    assert "1 người không nhận được tin" in leader.last_text and "07:00 28/11/2026" in leader.last_text
    nudges = await _outbox(ward, "nudge")
    assert sorted(name for name, _ in nudges) == ["Lan", "Minh"]
    for name, row in nudges:
        assert row.due_at == local(27, 22) and row.payload["options"][0] == ["📖 Học tiếp", "next"]
        assert f"Chào {name}" in row.payload["text"] and "Tổ trưởng Ba Nguyễn" in row.payload["text"]
        assert "1/13" in row.payload["text"]
    audit = [a for a in await rows(ward, AuditLog) if a.action == "leader.nudge"]
    assert [a.details for a in audit] == [{"queued": 2, "recent": 0, "unreachable": 1}]

    clock.advance(days=2)  # Sunday: pressed again, nobody is nudged twice within 3 days
    await leader.send("/nhom")
    await leader.press("Nhắc người chưa học")
    assert "Đã xếp lời nhắc tới 0 người" in leader.last_text and "2 người đã được nhắc trong 3 ngày qua" in leader.last_text
    assert len(await _outbox(ward, "nudge")) == 2
    clock.advance(days=1, hours=1)  # Monday 23:00: three days have passed, and Tâm is behind now too
    await leader.action(leader.option("Về trang của tổ").action)
    await leader.press("Nhắc người chưa học")
    assert sorted(name for name, _ in await _outbox(ward, "nudge")) == ["Lan", "Lan", "Minh", "Minh", "Tâm"]


async def test_assisted_completion_is_recorded_apart_and_never_overwrites(ward: App, clock: ManualClock) -> None:
    leader, people = await _group_with_residents(ward, clock)
    first, second = list(ward.lessons)[:2]
    leader_person = await person_of(ward, leader)
    await leader.send("/nhom")
    await leader.press("Ghi nhận học trực tiếp")
    assert [o.label for o in leader.menu.options][:2] == ["Lan (1/13)", "Minh (0/13)"]  # not the leader himself
    await leader.press("Lan (1/13)")
    await leader.press(f"1. {first.title}")  # Lan completed it herself
    assert "đã tự hoàn thành" in leader.last_text
    await leader.press(f"2. {second.title}")
    assert "Đã ghi nhận: Lan hoàn thành bài" in leader.last_text
    assert f"🤝 2. {second.title}" in [o.label for o in leader.menu.options]
    await leader.press(f"2. {second.title}")  # pressed twice
    assert "đã được ghi nhận trước đó" in leader.last_text

    # Someone without a smartphone, added by name (typed twice: one person).
    await leader.press("Chọn người khác")
    await leader.press("Thêm người theo tên")
    await leader.send("Bà   Tư")
    assert "Đã thêm Bà Tư vào Tổ dân phố 3" in leader.last_text
    await leader.press(f"1. {first.title}")
    await leader.press("Chọn người khác")
    await leader.press("Thêm người theo tên")
    await leader.send("bà tư")
    assert "đã có trong danh sách" in leader.last_text

    lan, tu = await person_of(ward, people["Lan"]), None
    async with ward.sessions() as session:
        tu = (await session.exec(select(Person).where(Person.display_name == "Bà Tư"))).one()
        progress = (await session.exec(select(LessonProgress).order_by(LessonProgress.id))).all()
    assert tu.added_by == leader_person.id and tu.consent_version == "assisted-2026-11" and tu.reminders_on is False
    marks = {(p.person_id, p.lesson_id): (p.status, p.assisted_by) for p in progress}
    assert marks[(lan.id, first.id)] == (ProgressStatus.COMPLETED, None)  # her own, untouched
    assert marks[(lan.id, second.id)] == (ProgressStatus.COMPLETED, leader_person.id)
    assert marks[(tu.id, first.id)] == (ProgressStatus.COMPLETED, leader_person.id)
    audit = [(a.action, a.target) for a in await rows(ward, AuditLog) if a.action in ("leader.assist", "leader.add_person")]
    assert audit == [("leader.assist", f"person:{lan.id}"), ("leader.add_person", f"person:{tu.id}"),
                     ("leader.assist", f"person:{tu.id}")]
    assert all(name not in str(a.details) for a in await rows(ward, AuditLog) for name in ("Lan", "Tư"))

    # Shown apart on the dashboard and in the members list.
    await leader.send("/nhom")
    assert f"1. {first.title}: ▓▓░░░ 2/4 (🤝 1)" in leader.last_text
    assert f"2. {second.title}: ▓░░░░ 1/4 (🤝 1)" in leader.last_text
    await leader.press("Danh sách thành viên (4)")
    assert "• Bà Tư — 1/13 bài (🤝 1) (không dùng điện thoại) · lần cuối: 10:00 23/11/2026" in leader.last_text
    assert "• Lan — 2/13 bài (🤝 1)" in leader.last_text


async def test_the_weekly_digest_goes_to_each_leader_once_a_week(ward: App, clock: ManualClock) -> None:
    leader, _ = await _group_with_residents(ward, clock)
    await make_leader(ward, leader, "DEMO-TDP05")

    async def plan(now: datetime) -> int:
        async with ward.sessions() as session, session.begin():
            return await plan_digests(session, now=now, zone=ZONE, lessons=ward.lessons, catalog=ward.catalog)

    assert digest_due(local(30, 8), ZONE) and not digest_due(local(30, 7, 59), ZONE)
    assert not digest_due(local(24, 8), ZONE) and digest_due(local(24, 7, 59), ZONE)  # Monday's catch-up window
    assert await plan(local(30, 8)) == 1
    assert await plan(local(30, 9)) == 0  # the same ISO week: nothing twice
    [(name, row)] = await _outbox(ward, "digest")
    assert name == "Ba Nguyễn" and row.dedupe_key == f"digest:{(await person_of(ward, leader)).id}:2026-W49"
    assert "👥 Tổ dân phố 3" in row.payload["text"] and "👥 Tổ dân phố 5" in row.payload["text"]
    assert "3 thành viên · 1 người đã bắt đầu học" in row.payload["text"]
    assert "Cần nhắc: 2 người" in row.payload["text"]
    assert [label for label, _ in row.payload["options"]] == ["👥 Xem Tổ dân phố 3", "👥 Xem Tổ dân phố 5"]
    assert row.due_at == local(30, 8)
    assert await plan(datetime(2026, 12, 7, 8, tzinfo=ZONE).astimezone(UTC)) == 1  # next Monday


async def test_the_monday_job_and_the_catch_up_after_a_restart(ward: App, clock: ManualClock) -> None:
    from bot.reminders import ReminderPolicy
    from bot.scheduling import Producers, build_scheduler, send_digests, tick

    await _group_with_residents(ward, clock)
    producers = Producers(sessions=ward.sessions, clock=clock, lessons=ward.lessons, catalog=ward.catalog,
                          policy=ReminderPolicy(zone=ZONE))
    scheduler = build_scheduler(producers, zone=ZONE)
    job = scheduler.get_job("leader-digest")
    assert job is not None and job.func is send_digests
    assert job.trigger.get_next_fire_time(None, local(24, 10)) == datetime(2026, 11, 30, 8, tzinfo=ZONE)
    clock._now = local(30, 9, 30)  # the process was down at 08:00: the tick sends it
    assert (await tick(producers))["digests"] == 1
    assert "digests" not in await tick(producers)  # once per week per process…
    producers.digest_week = None  # …and after a restart the dedupe key holds
    assert (await tick(producers))["digests"] == 0
    clock._now = datetime(2026, 12, 1, 9, tzinfo=ZONE).astimezone(UTC)
    producers.digest_week = None
    assert "digests" not in await tick(producers)  # Tuesday 09:00: past the catch-up window
    assert len(await _outbox(ward, "digest")) == 1


async def test_two_people_opening_one_invitation_at_once_make_one_leader(any_app: App, clock: ManualClock) -> None:
    """The guarded UPDATE: on PostgreSQL the second transaction waits for the first and then
    finds the invitation used; on SQLite the writers are serialised."""
    import asyncio

    from storage.roles import create_invite
    from tests.conftest import seed_demo_groups

    await seed_demo_groups(any_app)
    chats = [Chat(any_app.conversation, user=str(u), name=n) for u, n in ((1, "Ba"), (2, "Bảy"))]
    for chat in chats:
        await join(chat)
    target = await group(any_app, "DEMO-TDP03")
    async with any_app.sessions() as session, session.begin():
        code = (await create_invite(session, group_id=target.id, created_by=None, now=clock.now())).code
    replies = await asyncio.gather(*(chat.send(f"/start ld_{code}") for chat in chats))
    texts = sorted(chats[0].texts(r) for r in replies)
    assert sum("trở thành tổ trưởng" in t for t in texts) == 1 and sum("đã được dùng rồi" in t for t in texts) == 1
    leaders = [r for r in await rows(any_app, Role) if r.kind == RoleKind.LEADER]
    [invite] = await rows(any_app, Invite)
    assert len(leaders) == 1 and invite.used_by == leaders[0].person_id and leaders[0].granted_by == "cli"
