"""``hocvuso groups import``: updates by code, never duplicates, all or nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import Deps, cli
from bot.group_import import parse_groups_csv
from storage.models import AuditLog, GroupKind, ResidentGroup, Ward
from tests.conftest import START
from tests.support import ManualClock

ROOT = Path(__file__).resolve().parent.parent
HEADER = "ward_code,ward_name,group_code,group_name,kind,target_percent\n"
DEPS = Deps(clock=ManualClock(START))


async def _import(tmp_path: Path, url: str, content: str | bytes, name: str = "groups.csv"):  # type: ignore[no-untyped-def]
    """Run the real command (in a thread: it starts its own event loop)."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return await asyncio.to_thread(
        CliRunner().invoke, cli, ["groups", "import", str(path)], env={"DATABASE_URL": url}, obj=DEPS
    )


async def _groups(url: str) -> list[tuple[str, str, str, str, int]]:
    from storage.db import create_engine, session_factory

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            wards = {w.id: w.code for w in (await session.exec(select(Ward))).all()}
            rows = (await session.exec(select(ResidentGroup).order_by(ResidentGroup.code))).all()
            return [(wards[g.ward_id], g.code, g.name, g.kind, g.target_percent) for g in rows]
    finally:
        await engine.dispose()


def test_the_demo_file_is_valid() -> None:
    rows, errors = parse_groups_csv((ROOT / "examples" / "demo-ward.csv").read_bytes())
    assert errors == [] and len(rows) == 10 and {r.ward_code for r in rows} == {"DEMO"}


async def test_import_then_reimport_updates_names_and_never_duplicates(tmp_path: Path, any_db_url: str) -> None:
    if any_db_url.startswith("postgresql"):
        refused = await _import(tmp_path, any_db_url, HEADER + "BT,Phường Bàn Thạch,BT-01,Tổ 1,,\n")
        assert refused.exit_code == 1 and "hocvuso db upgrade" in refused.output
        upgraded = await asyncio.to_thread(CliRunner().invoke, cli, ["db", "upgrade"], env={"DATABASE_URL": any_db_url},
                                           obj=DEPS)
        assert upgraded.exit_code == 0, upgraded.output
    first = await _import(tmp_path, any_db_url, HEADER + "BT,Phường Bàn Thạch,BT-01,Tổ dân phố 1,tổ dân phố,80\n"
                    "BT,Phường Bàn Thạch,BT-02,Tổ 2,khu phố,\n")
    assert first.exit_code == 0, first.output
    assert "1 phường mới, 2 tổ mới" in first.output
    second = await _import(tmp_path, any_db_url, HEADER + "BT,Phường Bàn Thạch,BT-01,Tổ dân phố Một,,\n"
                     "BT,Phường Bàn Thạch,BT-02,Tổ 2,khu phố,\nBT,Phường Bàn Thạch,BT-03,Tổ 3,thôn,90\n")
    assert second.exit_code == 0, second.output
    assert "1 tổ mới, 1 tổ cập nhật, 1 tổ không đổi" in second.output
    assert await _groups(any_db_url) == [
        ("BT", "BT-01", "Tổ dân phố Một", GroupKind.TO_DAN_PHO, 80),  # empty optional cells keep values
        ("BT", "BT-02", "Tổ 2", GroupKind.KHU_PHO, 80),
        ("BT", "BT-03", "Tổ 3", GroupKind.THON, 90),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (HEADER + "BT,Phường A,BT-01,Tổ 1,,\nBT,Phường A,,Tổ 2,,\n", "dòng 3: cột group_code đang trống"),
        (HEADER + "BT,Phường A,BT-01,Tổ 1,,\nBT,Phường A,BT 02,Tổ 2,,\n", "dòng 3: group_code 'BT 02'"),
        (HEADER + "BT,Phường A,BT-01,Tổ 1,,\nBT,Phường A,BT-01,Tổ 1b,,\n", "dòng 3: mã tổ BT-01 đã có ở dòng 2"),
        (HEADER + "BT,Phường A,BT-01,Tổ 1,làng,\n", "dòng 2: kind 'làng' không hợp lệ"),
        (HEADER + "BT,Phường A,BT-01,Tổ 1,,150\n", "dòng 2: target_percent '150'"),
        (HEADER + "BT,Phường A,BT-01,Tổ 1,,\nBT,Phường B,BT-02,Tổ 2,,\n", "dòng 3: phường BT có hai tên"),
        ("ward,name\nx,y\n", "thiếu cột"),
        ("", "tệp trống"),
        (HEADER, "không có dòng dữ liệu"),
        (b"\xff\xfe\x00b\x00a\x00d", "không phải UTF-8"),
        (HEADER + 'BT,Phường A,BT-01,"Tổ 1,,\n', "dòng"),
    ],
)
async def test_a_bad_row_is_reported_with_its_line_and_nothing_is_imported(
    tmp_path: Path, sqlite_url: str, content: str | bytes, expected: str
) -> None:
    result = await _import(tmp_path, sqlite_url, content)
    assert result.exit_code == 1
    assert expected in result.output
    assert "Không nhập gì" in result.output
    assert await _groups(sqlite_url) == []


async def test_a_group_code_of_another_ward_is_refused_whole(tmp_path: Path, sqlite_url: str) -> None:
    assert (await _import(tmp_path, sqlite_url, HEADER + "A,Phường A,X-01,Tổ 1,,\n")).exit_code == 0
    result = await _import(tmp_path, sqlite_url, HEADER + "B,Phường B,B-01,Tổ 1,,\nB,Phường B,X-01,Tổ 2,,\n")
    assert result.exit_code == 1 and "dòng 3: mã tổ X-01 đã thuộc một phường khác" in result.output
    assert [g[1] for g in await _groups(sqlite_url)] == ["X-01"]  # B-01 was rolled back too


async def test_excel_bom_and_semicolons_are_accepted_and_the_import_is_audited(tmp_path: Path, sqlite_url: str) -> None:
    content = "\ufeffward_code;ward_name;group_code;group_name\nHD;Xã Hà Đông;HD-T1;Thôn 1\n"
    result = await _import(tmp_path, sqlite_url, content.encode("utf-8"))
    assert result.exit_code == 0, result.output
    assert await _groups(sqlite_url) == [("HD", "HD-T1", "Thôn 1", GroupKind.TO_DAN_PHO, 80)]
    from storage.db import create_engine, session_factory

    engine = create_engine(sqlite_url)
    async with session_factory(engine)() as session:
        [entry] = (await session.exec(select(AuditLog))).all()
    await engine.dispose()
    assert (entry.actor, entry.action, entry.details["created"], entry.at) == ("cli", "groups.import", 1, START)


def test_a_missing_file_is_a_clear_error(tmp_path: Path, sqlite_url: str) -> None:
    result = CliRunner().invoke(cli, ["groups", "import", str(tmp_path / "nope.csv")], env={"DATABASE_URL": sqlite_url},
                                obj=DEPS)
    assert result.exit_code == 1 and "Không đọc được tệp" in result.output
