"""The admin's report in the chat: the same files ``hocvuso report`` writes for the same period
and clock (documents compared by content, charts byte for byte), a caption of the period's
numbers, file names that say the period, and the previous half-year and year on offer."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import docx
from openpyxl import load_workbook

from bot.core.messages import Document, Image
from storage.roles import add_admin
from tests.reports.conftest import Seed
from tests.reports.test_cli import _cli, _document
from tests.support import Chat, ManualClock, join


def _cells(data: bytes) -> dict[str, list[tuple[object, ...]]]:
    book = load_workbook(BytesIO(data))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}


async def _admin(seed: Seed) -> Chat:
    admin = Chat(seed.app.conversation, user="9000", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")  # a member of no account: started nothing
    async with seed.app.sessions() as session, session.begin():  # ``hocvuso admin add telegram:9000 --ward DEMO``
        await add_admin(session, channel=admin.channel, external_id=admin.user, ward_code="DEMO",
                        now=seed.app.clock.now())
    return admin


async def _report(admin: Chat, period: str) -> list[Document | Image]:
    await admin.send("/quantri")
    await admin.press("Báo cáo")
    replies = await admin.press(period)
    return [r for r in replies if isinstance(r, Document | Image)]


async def test_the_chat_sends_the_files_the_cli_writes(seeded: Seed, clock: ManualClock, tmp_path: Path) -> None:
    admin = await _admin(seeded)
    clock.advance(hours=1)  # after Em's last assisted lesson
    files = await _report(admin, "6 tháng (báo cáo sơ kết)")
    report, book, annex, *charts = files
    assert [type(f) for f in files] == [Document, Document, Document, Image, Image, Image]
    assert report.path.name.startswith("bao-cao-DEMO-6-thang-cuoi-nam-2026-") and report.path.suffix == ".docx"
    assert book.path.name.startswith("so-lieu-DEMO-6-thang-cuoi-nam-2026-") and book.path.suffix == ".xlsx"
    assert annex.path.name.startswith("de-xuat-khen-thuong-DEMO-6-thang-cuoi-nam-2026-")
    assert [c.path.name.split("-DEMO-")[0] for c in charts] == ["bieu-do-nhom", "bieu-do-thang", "bieu-do-bai"]
    # The caption gives the period's numbers: since 1 July Chi started and did three lessons on
    # her own, Em three with Hải's help (Dũng, An and Bình were earlier). The chat's programme is
    # the whole library: nobody has finished it.
    assert report.caption.startswith("📑 Báo cáo Phường Mẫu — 6 tháng cuối năm 2026: 2 người mới bắt đầu học, "
                                     "3 lượt hoàn thành bài tự học và 3 lượt có tổ trưởng hỗ trợ, "
                                     "0 người học xong cả chương trình trong kỳ. Cuối kỳ: 0/7 thành viên")

    (folder := tmp_path / "cli").mkdir()
    out = {name: folder / name for name in ("r.docx", "s.xlsx", "a.docx")}
    result = await _cli(seeded.app, "report", "--ward", "DEMO", "--period", "6m", "--out", str(out["r.docx"]),
                        "--out", str(out["s.xlsx"]), "--annex", str(out["a.docx"]), "--charts", str(folder))
    assert result.exit_code == 0, result.output
    assert _document(report.path.read_bytes()) == _document(out["r.docx"].read_bytes())
    assert _cells(book.path.read_bytes()) == _cells(out["s.xlsx"].read_bytes())
    assert _document(annex.path.read_bytes()) == _document(out["a.docx"].read_bytes())
    for chart, name in zip(charts, ("nhom", "thang", "bai"), strict=True):
        assert chart.path.read_bytes() == (folder / f"bieu-do-{name}.png").read_bytes(), name


async def test_the_previous_half_year_and_year_are_on_offer(seeded: Seed, clock: ManualClock) -> None:
    admin = await _admin(seeded)
    first_half = await _report(admin, "Nửa năm trước (đã kết thúc)")
    paragraphs = [p.text for p in docx.Document(first_half[0].path).paragraphs]
    assert "Kết quả triển khai Phong trào “Bình dân học vụ số” 6 tháng đầu năm 2026" in paragraphs
    assert "(Số liệu từ ngày 01/01/2026 đến ngày 30/06/2026)" in paragraphs
    this_half = await _report(admin, "6 tháng (báo cáo sơ kết)")
    assert first_half[3].path.read_bytes() != this_half[3].path.read_bytes()  # the group charts differ
    clock.advance(days=200)  # February 2027: the annual report of 2026
    last_year = await _report(admin, "Năm trước (đã kết thúc)")
    paragraphs = [p.text for p in docx.Document(last_year[0].path).paragraphs]
    assert "Kết quả triển khai Phong trào “Bình dân học vụ số” năm 2026" in paragraphs
    assert "(Số liệu từ ngày 01/01/2026 đến ngày 31/12/2026)" in paragraphs
    assert "DANH SÁCH ĐỀ XUẤT KHEN THƯỞNG" in [p.text for p in docx.Document(last_year[2].path).paragraphs]
