"""Deletion is real.

- A resident who used every feature (joined by QR, changed name, lessons and quizzes, a
  question to the leader and its answer, ``/lienket`` with a second channel, reminders, a
  leader's nudge, a broadcast) and is also a leader (answered a resident, added someone by
  name, listed in the admin's leaders) erases their data: afterwards **no text or JSON
  column of any table** holds their name or anything they typed — read with plain SQL, on
  SQLite and PostgreSQL. Tombstones keep only the anonymous counts.
- Leaders and admins erase someone they added by name (no phone), from the assisted flow,
  authorised when it runs; a forged press by anyone else changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlmodel import SQLModel, select

from bot.app import App
from bot.broadcasting import schedule
from bot.core.text import fold
from bot.reminders import ReminderPolicy, plan_reminders
from storage.models import AuditLog, HelpRequest, Identity, LessonProgress, Outbox, OutboxStatus, Person, ProgressStatus
from tests.conftest import seed_demo_groups
from tests.staff import group, make_admin, make_leader, person_of, rows, snapshot
from tests.support import BUTTONS, NUMBERED, Chat, ManualClock, join, pass_lesson

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NAME = "Xuân Thắm Độc Nhất"  # the name she chose
CHANNEL_NAME = "Thắm Tạm Thời"  # the name Telegram gave the bot before she changed it
QUESTION = "điện thoại màu tím ngọc lam không mở được VNeID"
NIGHT_QUESTION = "chiếc ví điện tử bị khóa lạ lùng"
HER_ANSWER = "hàng rào hoa giấy trước nhà văn hóa"
SECRETS = (NAME, CHANNEL_NAME, QUESTION, NIGHT_QUESTION, HER_ANSWER)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def _readable(value: Any) -> str:
    """A column's value as text, JSON decoded (SQLite and asyncpg return JSON as a string,
    non-ASCII escaped as ``\\uXXXX``)."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if not isinstance(value, str):
        return ""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return value + "\n" + json.dumps(decoded, ensure_ascii=False)


async def found_in_database(app: App, needles: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """(table, column, needle) for every text or JSON value of every table that contains a
    needle, as typed or folded (no diacritics): plain SQL, no model in between."""
    hits = set()
    async with app.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            result = await conn.execute(text(f'SELECT * FROM "{table.name}"'))
            columns = list(result.keys())
            for row in result.all():
                for column, value in zip(columns, row, strict=True):
                    haystack = _readable(value)
                    if not haystack:
                        continue
                    for needle in needles:
                        if needle in haystack or fold(needle) in fold(haystack):
                            hits.add((table.name, column, needle))
    return hits


async def test_erasure_leaves_nothing_of_a_resident_who_used_every_feature(any_app: App, clock: ManualClock) -> None:
    app = any_app
    await seed_demo_groups(app)
    tham = Chat(app.conversation, user="501", name=CHANNEL_NAME, channel="telegram", capabilities=BUTTONS)
    ba = Chat(app.conversation, user="502", name="Ba Trưởng", channel="telegram")
    minh = Chat(app.conversation, user="503", name="Minh Dân", channel="telegram")
    ha = Chat(app.conversation, user="509", name="Hà Cán Bộ", channel="telegram")
    # Joined by the group's QR link, consented, then changed her name.
    await join(tham, group_code="DEMO-TDP03")
    await tham.send("/doiten")
    await tham.send(NAME)
    for chat, code in ((ba, "DEMO-TDP03"), (minh, "DEMO-TDP05"), (ha, "DEMO-TDP01")):
        await join(chat, group_code=code)
    await make_leader(app, ba, "DEMO-TDP03")
    await make_admin(app, ha)
    # Lessons and quizzes; a lesson left open; reminders at 09:00.
    first, second = list(app.lessons)[:2]
    await pass_lesson(tham, first)
    await tham.action(f"lesson:{second.id}")
    await tham.send("/nhacnho")
    await tham.press("09:00")

    # She is also the leader of Tổ 5: she answers Minh, adds someone without a phone.
    await make_leader(app, tham, "DEMO-TDP05")
    await minh.send("/hotro")
    await minh.send("Tôi cần cài ứng dụng ngân hàng.")
    [to_her] = [r for r in await rows(app, Outbox) if r.kind == "help"]
    await tham.action(to_her.payload["options"][0][1])
    await tham.send(f"Chiều nay gặp ở {HER_ANSWER} nhé.")
    await tham.send("/nhom")
    await tham.press("Ghi nhận học trực tiếp")
    await tham.press("Thêm người theo tên")
    await tham.send("Cụ Sáu Không Điện Thoại")
    await tham.press(f"1. {first.title}")

    # Her question to Ba, and Ba's answer.
    await tham.send("/hotro")
    await tham.send(QUESTION)
    [request] = [r for r in await rows(app, HelpRequest) if QUESTION in r.text]
    await ba.action(f"hotro:rep:{request.id}")
    await ba.send("Mai mang máy qua mình xem.")

    # /lienket: her Zalo account joins, after she confirms on Telegram.
    zalo = Chat(app.conversation, user="zalo-501", name=None, channel="zalo", capabilities=NUMBERED)
    await tham.send("/lienket")
    await tham.press("Lấy mã liên kết")
    code = tham.last_text.split(": ", 1)[1].split("\n", 1)[0]
    await zalo.send(f"/lienket {code}")
    await tham.send("/lienket")
    await tham.press("Đúng, liên kết")

    # Four days later: Ba nudges her, a reminder is planned, the ward broadcasts.
    clock._now = local(27, 10)
    await ba.send("/nhom")
    await ba.press("Nhắc người chưa học")
    await plan_reminders(app.sessions, now=clock.now(), lessons=app.lessons, catalog=app.catalog,
                         policy=ReminderPolicy(zone=ZONE))
    async with app.sessions() as session, session.begin():
        services = app.conversation.services
        admin = await session.exec(select(Identity).where(Identity.external_id == "509"))
        await schedule(session, author=f"person:{admin.one().person_id}", text="Phường mở lớp kỹ năng số.",
                       audience_text="all", lesson_ids={lesson.id for lesson in app.lessons}, now=clock.now(),
                       quiet=services.quiet, ward="DEMO", catalog=app.catalog)
    # At night she asks again: the forward waits for 07:00.
    clock._now = local(27, 22)
    await tham.send("/hotro")
    await tham.send(NIGHT_QUESTION)
    # Ba looks at who to help in person, the admin at Tổ 5's leaders: her name in their menus.
    await ba.send("/nhom")
    await ba.press("Ghi nhận học trực tiếp")
    await ha.send("/quantri")
    await ha.press("Mời tổ trưởng")
    await ha.press("Tổ dân phố 5")
    assert f"✖ Bỏ quyền của {NAME}" in [o.label for o in ha.menu.options]

    her = await person_of(app, tham)
    accounts = {i.id for i in await rows(app, Identity) if i.person_id == her.id}
    assert len(accounts) == 2 and len([r for r in await rows(app, Outbox) if r.identity_id in accounts]) >= 5
    kinds = {r.kind for r in await rows(app, Outbox)}
    assert {"help", "help_reply", "nudge", "reminder", "broadcast", "link_confirm", "link_done"} <= kinds
    before = await found_in_database(app, SECRETS)
    assert {table for table, _, _ in before} >= {"person", "help_request", "outbox", "conversation_state"}
    assert {needle for _, _, needle in before} == set(SECRETS) - {CHANNEL_NAME}  # the search finds what is there

    await tham.send("/xoadulieu")
    await tham.press("Xóa dữ liệu")
    assert "Đã xóa" in tham.last_text

    assert await found_in_database(app, SECRETS) == set()
    # The tombstone keeps the anonymous counts and nothing else.
    tombstone = next(p for p in await rows(app, Person) if p.id == her.id)
    assert (tombstone.display_name, tombstone.consent_at, tombstone.last_active_at) == (None, None, None)
    assert tombstone.next_reminder_at is None
    assert tombstone.deleted_at is not None and tombstone.group_id == (await group(app, "DEMO-TDP03")).id
    assert [(p.lesson_id, p.status) for p in await rows(app, LessonProgress) if p.person_id == her.id] == [
        (first.id, ProgressStatus.COMPLETED), (second.id, ProgressStatus.IN_PROGRESS)]
    assert [i for i in await rows(app, Identity) if i.person_id == her.id] == []
    assert [r for r in await rows(app, Outbox) if r.identity_id in accounts] == []  # gone with her accounts
    # Messages about her that had not gone out are cancelled, and every one is empty.
    about = [r for r in await rows(app, Outbox) if r.about_person_id == her.id]
    assert about and all(r.payload == {} for r in about)
    assert all(r.status == OutboxStatus.CANCELLED for r in about if r.sent_at is None)
    # Her questions are gone from Ba's dashboard; Minh's question (she answered) stays.
    await ba.send("/nhom")
    assert "Câu hỏi của người dân" not in " ".join(o.label for o in ba.menu.options)
    [kept] = await rows(app, HelpRequest)
    assert kept.text == "Tôi cần cài ứng dụng ngân hàng." and kept.answered_by == her.id
    # The audit log has ids only.
    assert [a.target for a in await rows(app, AuditLog) if a.action == "person.erase"] == [f"person:{her.id}"]


async def _leader_with_someone_added(ward: App) -> tuple[Chat, Person]:
    leader = Chat(ward.conversation, user="2", name="Ba")
    await join(leader)
    await make_leader(ward, leader, "DEMO-TDP03")
    await leader.send("/nhom")
    await leader.press("Ghi nhận học trực tiếp")
    await leader.press("Thêm người theo tên")
    await leader.send("Bà Tư Bán Nước")
    await leader.press(f"1. {ward.lessons.first.title}")
    async with ward.sessions() as session:
        tu = (await session.exec(select(Person).where(Person.display_name == "Bà Tư Bán Nước"))).one()
    return leader, tu


async def test_a_leader_erases_someone_they_added_by_name(ward: App, clock: ManualClock) -> None:
    leader, tu = await _leader_with_someone_added(ward)
    await leader.press("Xóa người này")
    assert "Xóa dữ liệu của Bà Tư Bán Nước khỏi Tổ dân phố 3?" in leader.last_text
    await leader.press("Thôi, giữ lại")
    assert (await person_of_id(ward, tu.id)).display_name == "Bà Tư Bán Nước"
    await leader.press("Xóa người này")
    await leader.press("Xóa hẳn")
    assert "Đã xóa dữ liệu của người này khỏi Tổ dân phố 3" in leader.last_text
    assert "Bà Tư" not in " ".join(o.label for o in leader.menu.options)
    erased = await person_of_id(ward, tu.id)
    assert erased.display_name is None and erased.deleted_at is not None and erased.group_id == tu.group_id
    [progress] = [p for p in await rows(ward, LessonProgress) if p.person_id == tu.id]
    assert progress.status == ProgressStatus.COMPLETED  # the group's count stays
    [entry] = [a for a in await rows(ward, AuditLog) if a.action == "leader.erase_person"]
    leader_person = await person_of(ward, leader)
    assert (entry.actor, entry.target, entry.details) == (
        f"person:{leader_person.id}", f"person:{tu.id}", {"group": tu.group_id})
    assert await found_in_database(ward, ("Bà Tư Bán Nước",)) == set()


async def test_an_admin_may_erase_too_and_anyone_else_is_refused(ward: App, clock: ManualClock) -> None:
    leader, tu = await _leader_with_someone_added(ward)
    other = Chat(ward.conversation, user="5", name="Năm")  # leads another group
    lan = Chat(ward.conversation, user="6", name="Lan")  # a resident of the same group
    await join(other, group_code="DEMO-TDP05")
    await make_leader(ward, other, "DEMO-TDP05")
    await join(lan)
    group_id = tu.group_id
    before = await snapshot(ward)
    for chat in (other, lan):
        await chat.action(f"lead:ad:{group_id}:{tu.id}")
        assert "chỉ dành cho tổ trưởng hoặc cán bộ phường" in chat.last_text
        await chat.action(f"lead:ax:{group_id}:{tu.id}")
        assert "chỉ dành cho tổ trưởng hoặc cán bộ phường" in chat.last_text
    await leader.action(f"lead:ax:{group_id}:{tu.id}")  # no question was asked: stale
    assert "Nút này đã cũ" in leader.last_text
    lan_person = await person_of(ward, lan)
    await leader.action(f"lead:ad:{group_id}:{lan_person.id}")  # she has a phone: her own /xoadulieu
    assert "chỉ dành cho tổ trưởng hoặc cán bộ phường" in leader.last_text
    assert await snapshot(ward) == before

    # The leader is also the ward's admin; the leader role is removed while the question is
    # open: as an admin of the ward the erasure is still allowed.
    await make_admin(ward, leader)
    await leader.action(f"lead:al:{group_id}:{tu.id}:0")
    await leader.press("Xóa người này")
    async with ward.sessions() as session, session.begin():
        from storage.models import Role

        for role in (await session.exec(select(Role).where(Role.group_id == group_id))).all():
            await session.delete(role)
    await leader.press("Xóa hẳn")
    assert "Đã xóa dữ liệu của người này" in leader.last_text
    assert (await person_of_id(ward, tu.id)).deleted_at is not None


async def person_of_id(app: App, person_id: int | None) -> Person:
    async with app.sessions() as session:
        person = await session.get(Person, person_id)
    assert person is not None
    return person
