"""The audit log an officer can read (issue 11 §4): refused staff actions recorded through the
chat (at most one row per actor a minute), staff named in ``hocvuso audit`` (residents stay
ids, an erased person says so), every time in local time, the CLI's exports audited, and a
leader removed from the command line (told in the chat, audited)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import App
from bot.cli import Deps, cli
from storage import audit
from storage.migrate import head_revision
from storage.models import AuditLog, Outbox, Role
from storage.people import erase_person
from tests.staff import make_admin, make_leader, person_of, rows, ward as ward_of
from tests.support import Chat, ManualClock, join

REFUSED_TEXT = "chỉ dành cho tổ trưởng hoặc cán bộ phường"


async def _cli(app: App, *args: str):  # type: ignore[no-untyped-def]
    async with app.engine.begin() as conn:  # tables come from create_all: tell Alembic they are current
        await conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        await conn.execute(text("DELETE FROM alembic_version"))
        await conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head_revision()})
    env = {"DATABASE_URL": app.settings.database_url, "TIMEZONE": "Asia/Ho_Chi_Minh"}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, obj=Deps(clock=app.clock))


async def _refusals(app: App) -> list[AuditLog]:
    return [a for a in await rows(app, AuditLog) if a.action == audit.REFUSED]


async def test_a_forged_admin_button_pressed_three_times_is_one_refused_row(ward: App, clock: ManualClock) -> None:
    resident = Chat(ward.conversation, user="501", name="Lan")
    await join(resident, group_code="DEMO-TDP03")
    demo = await ward_of(ward)
    lan = await person_of(ward, resident)
    for _ in range(3):
        assert REFUSED_TEXT in resident.texts(await resident.action(f"adm:w:{demo.id}"))
        clock.advance(seconds=15)
    [refused] = await _refusals(ward)
    assert (refused.actor, refused.target, refused.details) == (
        f"person:{lan.id}", f"adm:w:{demo.id}", {"attempted": "adm:w"})
    clock.advance(seconds=30)  # more than a minute after the first row: a new one
    await resident.action(f"adm:rv:{demo.id}")
    assert [(r.actor, r.target) for r in await _refusals(ward)] == [
        (f"person:{lan.id}", f"adm:w:{demo.id}"), (f"person:{lan.id}", f"adm:rv:{demo.id}")]


async def test_the_audit_names_staff_keeps_residents_ids_and_records_itself(ward: App, clock: ManualClock) -> None:
    admin, leader, former, resident = (Chat(ward.conversation, user=u, name=n) for u, n in (
        ("601", "Nguyễn Văn An"), ("602", "Trần Thị Bình"), ("603", "Lê Văn Cường"), ("604", "Phạm Thị Dung")))
    for chat, code in ((admin, "DEMO-TDP01"), (leader, "DEMO-TDP03"), (former, "DEMO-TDP05"), (resident, "DEMO-TDP03")):
        await join(chat, group_code=code)
    await make_admin(ward, admin)
    await make_leader(ward, leader, "DEMO-TDP03")
    await make_leader(ward, former, "DEMO-TDP05")
    ids = {n: (await person_of(ward, c)).id for n, c in (("admin", admin), ("leader", leader), ("former", former),
                                                         ("resident", resident))}
    demo = await ward_of(ward)
    await admin.action(f"adm:ov:{demo.id}")  # admin.overview, by the admin
    await leader.send("/nhom")  # leader.view, by the leader
    await former.send("/nhom")
    await resident.action("lead:g:1")  # refused: the resident stays an id
    async with ward.sessions() as session, session.begin():
        # A detail holding a time (as leader.assist's "before" does) is shown in local time.
        audit.record(session, actor=f"person:{ids['leader']}", action="leader.assist",
                     target=f"person:{ids['resident']}", now=clock.now(),
                     details={"before": {"updated_at": datetime(2026, 11, 23, 1, 30, tzinfo=UTC).isoformat()}})
    removed = await _cli(ward, "admin", "remove-leader", f"test:{former.user}", "--group", "DEMO-TDP05")
    assert removed.exit_code == 0, removed.output
    assert removed.output.strip() == ("Đã bỏ quyền tổ trưởng Tổ dân phố 5 của Lê Văn Cường. "
                                      "Người đó sẽ nhận tin báo trong chat.")
    async with ward.sessions() as session, session.begin():
        await erase_person(session, person_id=ids["leader"], now=clock.now())  # type: ignore[arg-type]

    result = await _cli(ward, "audit", "--since", "2026-11-23")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Nhật ký thao tác từ 23/11/2026 đến 10:00 23/11/2026 (giờ Asia/Ho_Chi_Minh)")
    body = "\n".join(lines[1:])
    assert f"10:00:00  Nguyễn Văn An (person:{ids['admin']})  admin.overview" in body
    assert f"person:{ids['leader']} (đã xoá dữ liệu)  leader.view" in body  # erased since
    assert f"Lê Văn Cường (person:{ids['former']})  leader.view" in body  # held the role
    assert f"  person:{ids['resident']}  refused  lead:g:1" in body
    assert "Phạm Thị Dung" not in body
    assert '"updated_at": "2026-11-23 08:30:00"' in body  # 01:30 UTC, in Hà Nội
    assert f"cli  role.revoke  person:{ids['former']}" in body
    async with ward.sessions() as session:
        assert (await session.exec(select(Role).where(Role.person_id == ids["former"]))).first() is None
        [told] = (await session.exec(select(Outbox).where(Outbox.kind == "role"))).all()
    assert "Bạn không còn là tổ trưởng của Tổ dân phố 5" in told.payload["text"]
    [export] = [a for a in await rows(ward, AuditLog) if a.action == "export.audit"]
    assert (export.actor, export.details["entries"]) == ("cli", len(lines) - 1)
    again = await _cli(ward, "audit", "--since", "2026-11-23")
    assert again.output.splitlines()[-1].startswith("2026-11-23 10:00:00  cli  export.audit  -  {")


async def test_removing_a_leader_from_the_command_line_refuses_what_is_not_there(ward: App) -> None:
    resident = Chat(ward.conversation, user="701", name="Hoa")
    await join(resident, group_code="DEMO-TDP03")
    not_leader = await _cli(ward, "admin", "remove-leader", "test:701", "--group", "DEMO-TDP03")
    assert not_leader.exit_code == 1 and "không phải tổ trưởng của tổ DEMO-TDP03" in not_leader.output
    unknown = await _cli(ward, "admin", "remove-leader", "test:701", "--group", "NOPE")
    assert unknown.exit_code == 1 and "Không có tổ NOPE" in unknown.output
    nobody = await _cli(ward, "admin", "remove-leader", "test:999", "--group", "DEMO-TDP03")
    assert nobody.exit_code == 1 and "Không tìm thấy người dùng tài khoản test:999" in nobody.output
    assert [a for a in await rows(ward, AuditLog) if a.action == "role.revoke"] == []

