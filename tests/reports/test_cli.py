"""The commands: ``hocvuso report``, ``hocvuso groups qr`` and ``hocvuso audit``, run for
real (typer's CliRunner, in a thread: each runs its own event loop) on the test database and
the test's clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import docx
import zxingcpp
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import text
from typer.testing import CliRunner

from bot.app import App
from bot.cli import Deps, cli
from bot.reports.docx import Signer
from bot.reports.exports import read_report, render_report
from storage import audit
from storage.migrate import head_revision
from tests.fakes.telegram_api import FakeTelegram
from tests.reports.conftest import MAY, Seed
from tests.reports.test_workbook import ZONE
from tests.support import ManualClock


async def _stamp_schema(app: App) -> None:
    """The tests build tables with create_all; tell Alembic they are current."""
    async with app.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        await conn.execute(text("DELETE FROM alembic_version"))
        await conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head_revision()})


async def _cli(app: App, *args: str, **env: str):  # type: ignore[no-untyped-def]
    await _stamp_schema(app)
    environment = {"DATABASE_URL": app.settings.database_url, "TIMEZONE": "Asia/Ho_Chi_Minh",
                   "TELEGRAM_BOT_TOKEN": "", "TELEGRAM_BOT_USERNAME": "", **env}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=environment, obj=Deps(clock=app.clock))


def _cells(data: bytes) -> dict[str, list[tuple[object, ...]]]:
    book = load_workbook(BytesIO(data))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}


def _document(data: bytes) -> list[str]:
    """A .docx's text: paragraphs, then every table cell (what a reader sees, not the zip's stamps)."""
    document = docx.Document(BytesIO(data))
    cells = [c.text for table in document.tables for row in table.rows for c in row.cells]
    return [p.text for p in document.paragraphs] + cells


async def test_the_half_year_report_its_workbook_annex_and_charts(seeded: Seed, tmp_path: Path) -> None:
    report, book, annex = tmp_path / "bao-cao.docx", tmp_path / "so-lieu.xlsx", tmp_path / "khen-thuong.docx"
    chart, charts = tmp_path / "bieu-do.png", tmp_path / "charts"
    charts.mkdir()
    result = await _cli(seeded.app, "report", "--ward", "DEMO", "--out", str(report), "--out", str(book),
                        "--annex", str(annex), "--chart", str(chart), "--charts", str(charts),
                        "--period", "6m", "--to", "2026-06-30")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Đã ghi báo cáo Phường Mẫu (01/01/2026–30/06/2026): 10 tổ, 4 thành viên, "
        f"0 người hoàn thành chương trình (0.0%) → {report}, {book}; danh sách đề xuất khen thưởng → {annex}; "
        f"biểu đồ → {chart}; ba biểu đồ → {charts}",
    ]
    # Exactly the files of the period, in the ward's time zone, over the whole library, made at the clock's time.
    start, end = datetime(2025, 12, 31, 17, tzinfo=UTC), datetime(2026, 6, 30, 17, tzinfo=UTC) - timedelta(microseconds=1)
    async with seeded.app.sessions() as session:
        data = await read_report(session, ward_code="DEMO", lessons=seeded.app.lessons, start=start, end=end, zone=ZONE)
    expected = render_report(data, lessons=seeded.app.lessons, span="6m", zone=ZONE, now=seeded.app.clock.now(),
                             signer=Signer())
    assert _cells(book.read_bytes()) == _cells(expected.workbook)  # "Lập lúc …" included
    assert _document(report.read_bytes()) == _document(expected.report)
    assert "Kết quả triển khai Phong trào “Bình dân học vụ số” 6 tháng đầu năm 2026" in _document(report.read_bytes())
    assert _document(annex.read_bytes()) == _document(expected.annex)
    assert "DANH SÁCH ĐỀ XUẤT KHEN THƯỞNG" in _document(annex.read_bytes())
    assert chart.read_bytes() == expected.charts["nhom"]
    assert sorted(p.name for p in charts.iterdir()) == ["bieu-do-bai.png", "bieu-do-nhom.png", "bieu-do-thang.png"]
    assert (charts / "bieu-do-thang.png").read_bytes() == expected.charts["thang"]
    assert Image.open(chart).format == "PNG"


async def test_the_signer_comes_from_the_settings(seeded: Seed, tmp_path: Path) -> None:
    report = tmp_path / "r.docx"
    result = await _cli(seeded.app, "report", "--ward", "DEMO", "--out", str(report), "--period", "year",
                        REPORT_SIGNER_TITLE="PHÓ CHỦ TỊCH", REPORT_SIGNER_NAME="Trần Thị Bình")
    assert result.exit_code == 0, result.output
    text = _document(report.read_bytes())
    assert "KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH\n(Ký, ghi rõ họ tên, đóng dấu)\n\n\n\nTrần Thị Bình" in text


async def test_the_default_period_is_everything_up_to_now(seeded: Seed, clock: ManualClock, tmp_path: Path) -> None:
    (folder := tmp_path / "out").mkdir()
    out = folder / "r.xlsx"
    clock.advance(days=1)  # 4 August 2026, 10:00 in Hà Nội: after everything seeded
    result = await _cli(seeded.app, "report", "--ward", "DEMO", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "(từ đầu đến 04/08/2026)" in result.output and "10 tổ, 6 thành viên" in result.output
    head = load_workbook(out)["Tổng hợp theo tổ"]
    assert head["A2"].value == "Kỳ báo cáo: từ khi bắt đầu đến 10:00 04/08/2026"
    assert head["A3"].value == "Lập lúc 10:00 04/08/2026 (giờ Asia/Ho_Chi_Minh)"
    assert [p.name for p in folder.iterdir()] == ["r.xlsx"]  # no chart unless asked


async def test_report_mistakes_are_refused_clearly(seeded: Seed, tmp_path: Path) -> None:
    (tmp_path := tmp_path / "out").mkdir()  # the database lives beside it
    out = str(tmp_path / "r.xlsx")
    cases = [
        (["--ward", "NOPE", "--out", out], "Không có phường/xã mã NOPE. Các mã hiện có: DEMO, KHAC"),
        (["--ward", "DEMO", "--out", out, "--from", "2026-13-01"], "Ngày '2026-13-01' không đúng dạng"),
        (["--ward", "DEMO", "--out", out, "--to", "30/06/2026"], "Ngày '30/06/2026' không đúng dạng"),
        (["--ward", "DEMO", "--out", out, "--period", "tuan"], "Kỳ báo cáo 'tuan' không hợp lệ"),
        (["--ward", "DEMO", "--out", out, "--period", "6m", "--from", "2026-01-01"], "không dùng cả hai"),
        (["--ward", "DEMO", "--out", out, "--from", "2026-07-01", "--to", "2026-06-01"], "ở sau ngày kết thúc"),
        (["--ward", "DEMO", "--out", out, "--from", "2099-01-01"], "chưa tới"),
        (["--ward", "DEMO", "--out", str(tmp_path / "no" / "r.xlsx")], "Không ghi được tệp"),
        (["--ward", "DEMO", "--out", str(tmp_path)], "Không ghi được tệp"),
        (["--ward", "DEMO", "--out", out, "--chart", str(tmp_path / "no" / "c.png")], "Không ghi được tệp"),
        (["--ward", "DEMO", "--out", str(tmp_path / "r.pdf")], "--out cần tệp .docx (báo cáo) hoặc .xlsx"),
        (["--ward", "DEMO", "--out", out, "--annex", str(tmp_path / "a.xlsx")], "--annex cần tệp .docx"),
        (["--ward", "DEMO", "--out", out, "--charts", str(tmp_path / "none")], "thư mục này không có"),
    ]
    for args, expected in cases:
        result = await _cli(seeded.app, "report", *args)
        assert result.exit_code == 1 and expected in result.output, (args, result.output)
    assert list(tmp_path.iterdir()) == []


def _links(folder: Path) -> dict[str, str]:
    found = {}
    for path in sorted(folder.iterdir()):
        [result] = zxingcpp.read_barcodes(Image.open(path).convert("RGB"))
        found[path.name] = result.text
    return found


async def test_groups_qr_writes_one_code_per_group(seeded: Seed, tmp_path: Path) -> None:
    result = await _cli(seeded.app, "groups", "qr", "--out", str(tmp_path / "qr"), TELEGRAM_BOT_USERNAME="@phuong_bot")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Đã ghi 11 mã QR vào {tmp_path / 'qr'}"
    links = _links(tmp_path / "qr")
    assert links["DEMO-TDP01.png"] == "https://t.me/phuong_bot?start=g_DEMO-TDP01"
    assert links == {f"{code}.png": f"https://t.me/phuong_bot?start=g_{code}"
                     for code in [f"DEMO-TDP{n:02}" for n in range(1, 11)] + ["KHAC-01"]}
    one = await _cli(seeded.app, "groups", "qr", "--out", str(tmp_path / "khac"), "--ward", "KHAC",
                     TELEGRAM_BOT_USERNAME="phuong_bot")
    assert one.exit_code == 0 and _links(tmp_path / "khac") == {"KHAC-01.png": "https://t.me/phuong_bot?start=g_KHAC-01"}
    unknown = await _cli(seeded.app, "groups", "qr", "--out", str(tmp_path / "x"), "--ward", "NOPE",
                         TELEGRAM_BOT_USERNAME="phuong_bot")
    assert unknown.exit_code == 1 and "Không có phường/xã mã NOPE" in unknown.output


async def test_groups_qr_asks_telegram_for_the_username_once(seeded: Seed, tmp_path: Path) -> None:
    async with FakeTelegram(bot_username="hocvuso_mau_bot") as tg:
        result = await _cli(seeded.app, "groups", "qr", "--out", str(tmp_path / "qr"), "--ward", "KHAC",
                            TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.url)
        assert result.exit_code == 0, result.output
        assert len(tg.calls_to("getMe")) == 1
    assert _links(tmp_path / "qr") == {"KHAC-01.png": "https://t.me/hocvuso_mau_bot?start=g_KHAC-01"}


async def test_groups_qr_without_a_bot_name_says_what_to_set(seeded: Seed, tmp_path: Path) -> None:
    result = await _cli(seeded.app, "groups", "qr", "--out", str(tmp_path / "qr"))
    assert result.exit_code == 1 and "hãy đặt TELEGRAM_BOT_USERNAME" in result.output
    assert not (tmp_path / "qr").exists()


async def test_audit_prints_the_log_oldest_first_in_local_time(ward: App, tmp_path: Path) -> None:
    async with ward.sessions() as session, session.begin():
        audit.record(session, actor="person:7", action="nudge.send", target="group:DEMO-TDP01", now=MAY + timedelta(hours=2),
                     details={"residents": 3, "lesson": "b01"})
        audit.record(session, actor="cli", action="broadcast.create", target="broadcast:1", now=MAY)
        audit.record(session, actor="person:7", action="assist.record", target="person:9", now=MAY + timedelta(days=1))
        audit.record(session, actor="cli", action="too.early", now=MAY - timedelta(hours=10, minutes=1))  # 23:59 on 3/5, local
    result = await _cli(ward, "audit", "--since", "2026-05-04", "--until", "2026-05-04")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Nhật ký thao tác từ 04/05/2026 đến 23:59 04/05/2026 (giờ Asia/Ho_Chi_Minh): 2 mục",
        "2026-05-04 10:00:00  cli  broadcast.create  broadcast:1",
        '2026-05-04 12:00:00  person:7  nudge.send  group:DEMO-TDP01  {"lesson": "b01", "residents": 3}',
    ]
    later = await _cli(ward, "audit", "--since", "2026-05-05", "--until", "2026-05-31")
    assert later.output.splitlines()[1:] == ["2026-05-05 10:00:00  person:7  assist.record  person:9"]
    empty = await _cli(ward, "audit", "--since", "2026-04-01", "--until", "2026-04-30")
    assert empty.exit_code == 0 and empty.output.strip() == "Nhật ký không có mục nào từ 01/04/2026 đến 23:59 30/04/2026"
    bad = await _cli(ward, "audit", "--since", "4/5/2026")
    assert bad.exit_code == 1 and "không đúng dạng" in bad.output
