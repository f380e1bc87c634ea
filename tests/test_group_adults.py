"""A group's adult population: the ``adults`` column of the groups CSV (a bad value is an error
with its line, an empty cell keeps the stored value), the admin's text step in the chat
(authorised when the number arrives, audited, "thôi" cancels) and the coverage it gives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import App
from bot.cli import Deps, cli
from storage.models import AuditLog, ResidentGroup, Role, RoleKind
from tests.conftest import START
from tests.staff import group, make_admin, person_of
from tests.support import Chat, ManualClock, join, pass_lesson

HEADER = "ward_code,ward_name,group_code,group_name,kind,target_percent,adults\n"
DEPS = Deps(clock=ManualClock(START))


async def _import(tmp_path: Path, url: str, content: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "groups.csv"
    path.write_text(content, encoding="utf-8")
    return await asyncio.to_thread(CliRunner().invoke, cli, ["groups", "import", str(path)],
                                   env={"DATABASE_URL": url}, obj=DEPS)


async def _adults(app: App) -> dict[str, int | None]:
    async with app.sessions() as session:
        return {g.code: g.adults for g in (await session.exec(select(ResidentGroup))).all()}


async def _imported(url: str) -> dict[str, int | None]:
    from storage.db import create_engine, session_factory

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return {g.code: g.adults for g in (await session.exec(select(ResidentGroup))).all()}
    finally:
        await engine.dispose()


async def test_the_csv_sets_adults_and_an_empty_cell_keeps_them(sqlite_url: str, tmp_path: Path) -> None:
    first = await _import(tmp_path, sqlite_url, HEADER + "BT,Phường Bàn Thạch,BT-01,Tổ 1,,,1.250\n"
                          "BT,Phường Bàn Thạch,BT-02,Tổ 2,,,40\nBT,Phường Bàn Thạch,BT-03,Tổ 3,,,\n")
    assert first.exit_code == 0, first.output
    assert await _imported(sqlite_url) == {"BT-01": 1250, "BT-02": 40, "BT-03": None}
    again = await _import(tmp_path, sqlite_url, HEADER + "BT,Phường Bàn Thạch,BT-01,Tổ 1,,,\n"
                          "BT,Phường Bàn Thạch,BT-02,Tổ 2,,,45\n")
    assert again.exit_code == 0, again.output
    assert "1 tổ cập nhật, 1 tổ không đổi" in again.output
    assert await _imported(sqlite_url) == {"BT-01": 1250, "BT-02": 45, "BT-03": None}


@pytest.mark.parametrize("value", ["bốn mươi", "0", "-5", "12.5", "40 người", "2000000", "1,250"])
async def test_a_bad_adults_value_names_its_line_and_nothing_is_imported(
    sqlite_url: str, tmp_path: Path, value: str,
) -> None:
    result = await _import(tmp_path, sqlite_url, HEADER + "BT,Phường A,BT-01,Tổ 1,,,40\n"
                           f'BT,Phường A,BT-02,Tổ 2,,,"{value}"\n')
    assert result.exit_code == 1
    assert f"dòng 3: adults '{value}' phải là số người lớn của tổ, một số nguyên từ 1 đến 1.000.000" in result.output
    assert "Không nhập gì" in result.output


async def _admin_on_group_page(ward: App, code: str) -> tuple[Chat, ResidentGroup]:
    admin = Chat(ward.conversation, user="admin", name="Cán bộ")
    await join(admin, group_code="DEMO-TDP09")  # a resident too, of another group
    await make_admin(ward, admin)
    target = await group(ward, code)
    await admin.action(f"adm:g:{target.id}")
    return admin, target


async def test_the_admin_types_the_adults_and_the_coverage_appears(ward: App, library) -> None:  # type: ignore[no-untyped-def]
    lan = Chat(ward.conversation, user="lan", name="Lan")
    await join(lan, group_code="DEMO-TDP02")
    for lesson in library:
        await pass_lesson(lan, lesson)
    admin, target = await _admin_on_group_page(ward, "DEMO-TDP02")
    assert "Độ phủ" not in admin.history[-1].text  # type: ignore[union-attr]
    await admin.press("👥 Nhập số người lớn của tổ")
    await admin.send("bốn mươi")
    assert "“bốn mươi” chưa phải một số người lớn hợp lệ" in admin.history[-1].text  # type: ignore[union-attr]
    assert (await _adults(ward))["DEMO-TDP02"] is None
    await admin.send("40")
    texts = "\n".join(r.text for r in admin.history[-2:])  # type: ignore[union-attr]
    assert "Đã ghi: Tổ dân phố 2 có 40 người lớn." in texts
    assert "Độ phủ: 1/40 người lớn (2%) · chỉ tiêu 80% " in texts
    assert (await _adults(ward))["DEMO-TDP02"] == 40
    async with ward.sessions() as session:
        entry = (await session.exec(select(AuditLog).where(AuditLog.action == "admin.group_adults"))).one()
    person = await person_of(ward, admin)
    assert (entry.actor, entry.target, entry.details) == (f"person:{person.id}", f"group:{target.id}",
                                                          {"before": None, "adults": 40})
    # The ranking shows the coverage too.
    await admin.action(f"adm:rk:{target.ward_id}")
    assert "Độ phủ: 1/40 người lớn (2%)" in admin.history[-1].text  # type: ignore[union-attr]


async def test_thoi_cancels_the_step_and_keeps_the_number(ward: App) -> None:
    admin, target = await _admin_on_group_page(ward, "DEMO-TDP01")
    await admin.press("👥 Nhập số người lớn của tổ")
    await admin.send("thôi")
    await admin.send("55")  # no longer in the step: an ordinary message, not a number for the group
    assert (await _adults(ward))["DEMO-TDP01"] is None
    async with ward.sessions() as session:
        assert (await session.exec(select(AuditLog).where(AuditLog.action == "admin.group_adults"))).first() is None


async def test_the_number_is_refused_when_the_admin_role_was_removed_meanwhile(ward: App) -> None:
    admin, target = await _admin_on_group_page(ward, "DEMO-TDP01")
    await admin.press("👥 Nhập số người lớn của tổ")
    person = await person_of(ward, admin)
    async with ward.sessions() as session, session.begin():
        for role in (await session.exec(select(Role).where(Role.person_id == person.id,
                                                            Role.kind == RoleKind.ADMIN))).all():
            await session.delete(role)
    await admin.send("55")
    assert (await _adults(ward))["DEMO-TDP01"] is None
    assert "chỉ dành cho tổ trưởng hoặc cán bộ phường" in admin.history[-1].text  # type: ignore[union-attr]
