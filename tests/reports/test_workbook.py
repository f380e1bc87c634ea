"""The XLSX workbook (built by ``bot.reports.exports``, as the CLI and the chat do): it opens
with openpyxl, every number of every sheet matches the database (checked against known values,
a naive recount of the rows, and storage.stats), periods filter, assisted completions stay apart
from self completions, people's text is never a formula."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from openpyxl.workbook import Workbook
from pytest import approx
from sqlmodel import select

from bot.reports.docx import Signer
from bot.reports.exports import read_report, render_report
from bot.reports.sheets import DATE_FORMAT
from storage.models import LessonProgress, Person, ProgressStatus, ResidentGroup, Ward
from storage.outbox import delivery_report
from storage.stats import group_stats, members_progress
from tests.reports.conftest import AUGUST, MAY, Seed
from tests.support import Chat

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
SEPTEMBER = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
MADE = datetime(2026, 9, 2, 1, 30, tzinfo=UTC)  # 08:30 the next morning in Hà Nội
SHEETS = ["Tổng hợp theo tổ", "Tiến độ người dân", "Bài học", "Lĩnh vực năng lực", "Theo tháng", "Tổ trưởng",
          "Hoàn thành có hỗ trợ", "Thông báo", "Thi đua"]


async def build_workbook(seed: Seed, *, ward: str = "DEMO", start: datetime | None, end: datetime,
                         now: datetime = MADE) -> bytes:
    """The workbook of [start, end] of ``ward``, made at ``now``, over the seed's three lessons."""
    async with seed.app.sessions() as session:
        data = await read_report(session, ward_code=ward, lessons=seed.lessons, start=start, end=end, zone=ZONE)
    return render_report(data, lessons=seed.lessons, span=None, zone=ZONE, now=now, signer=Signer(),
                         charts=False).workbook


async def _workbook(seed: Seed, *, start: datetime | None, end: datetime) -> Workbook:
    """The workbook of [start, end], made at MADE."""
    return load_workbook(BytesIO(await build_workbook(seed, start=start, end=end)))


def _table(ws: Any, first: str) -> tuple[int, list[dict[str, Any]]]:
    """The header row number and the rows under it (as header → value) up to an empty cell."""
    top = next(row[0].row for row in ws.iter_rows() if row[0].value == first)
    headers = [cell.value for cell in ws[top]]
    rows = []
    for values in ws.iter_rows(min_row=top + 1, values_only=True):
        if values[0] is None:
            break
        rows.append(dict(zip(headers, values, strict=True)))
    return top, rows


async def _recount(seed: Seed, start: datetime | None, end: datetime) -> dict[str, dict[str, int]]:
    """Group numbers recounted from the raw rows, independently of storage.stats."""
    ids = {lesson.id for lesson in seed.lessons}
    async with seed.app.sessions() as session:
        groups = (await session.exec(select(ResidentGroup).join(Ward).where(Ward.code == "DEMO"))).all()
        people = (await session.exec(select(Person))).all()
        rows = (await session.exec(select(LessonProgress))).all()
    result = {}
    for group in groups:
        members = [p for p in people if p.group_id == group.id and p.created_at <= end]  # type: ignore[operator]
        mine = [r for r in rows if r.person_id in {p.id for p in members} and r.lesson_id in ids
                and r.started_at <= end]  # type: ignore[operator]
        done = [r for r in mine if r.status == ProgressStatus.COMPLETED and r.completed_at <= end]  # type: ignore[operator]
        in_period = [r for r in done if start is None or r.completed_at >= start]  # type: ignore[operator]
        finished = [p for p in members if {r.lesson_id for r in done if r.person_id == p.id} == ids]
        result[group.code] = {
            "members": len(members), "started": len({r.person_id for r in mine}), "finished": len(finished),
            "self_period": sum(r.assisted_by is None for r in in_period),
            "assisted_period": sum(r.assisted_by is not None for r in in_period),
        }
    return result


def _group_row(row: dict[str, Any]) -> dict[str, int]:
    return {"members": row["Thành viên"], "started": row["Đã bắt đầu học"], "finished": row["Hoàn thành chương trình"],
            "self_period": row["Lượt hoàn thành bài – tự học (trong kỳ)"],
            "assisted_period": row["Lượt hoàn thành bài – có hỗ trợ (trong kỳ)"]}


async def _check_groups_sheet(seed: Seed, book: Workbook, start: datetime | None, end: datetime) -> dict[str, dict]:  # type: ignore[type-arg]
    _, rows = _table(book["Tổng hợp theo tổ"], "Mã tổ")
    *groups, total = rows
    recount = await _recount(seed, start, end)
    assert {r["Mã tổ"]: _group_row(r) for r in groups} == recount
    async with seed.app.sessions() as session:
        ward = (await session.exec(select(Ward).where(Ward.code == "DEMO"))).one()
        stats = await group_stats(session, lesson_ids=[lesson.id for lesson in seed.lessons],
                                  since=end - timedelta(days=7), until=end, ward_id=ward.id)
    for s, row in zip(stats, groups, strict=True):  # the chat's numbers and the report's agree
        assert (row["Mã tổ"], row["Tổ dân phố / thôn"], row["Chỉ tiêu (%)"]) == (s.code, s.name, s.target_percent)
        # Excel keeps 15 significant digits; an empty group has no rate.
        if s.members:
            assert row["Tỷ lệ hoàn thành (%)"] == approx(s.rate)
            assert row["Đạt chỉ tiêu"] == ("Đạt" if s.meets_target else "Chưa đạt")
        else:
            assert (row["Tỷ lệ hoàn thành (%)"], row["Đạt chỉ tiêu"]) == ("chưa có thành viên", None)
    assert total["Mã tổ"] == "Tổng cộng"
    for key in ("members", "started", "finished", "self_period", "assisted_period"):
        assert _group_row(total)[key] == sum(g[key] for g in recount.values())
    return {r["Mã tổ"]: r for r in rows}


async def test_every_sheet_matches_the_database(seeded: Seed) -> None:
    book = await _workbook(seeded, start=None, end=SEPTEMBER)
    assert book.sheetnames == SHEETS
    groups = await _check_groups_sheet(seeded, book, None, SEPTEMBER)
    assert _group_row(groups["DEMO-TDP01"]) == {"members": 3, "started": 2, "finished": 1,
                                                "self_period": 4, "assisted_period": 1}
    assert _group_row(groups["DEMO-TDP02"]) == {"members": 2, "started": 2, "finished": 1,
                                                "self_period": 4, "assisted_period": 0}  # Dũng's tombstone counts
    assert _group_row(groups["DEMO-TDP03"]) == {"members": 1, "started": 1, "finished": 1,
                                                "self_period": 0, "assisted_period": 3}
    assert groups["DEMO-TDP04"]["Tỷ lệ hoàn thành (%)"] == "chưa có thành viên"  # never 0 %
    assert groups["DEMO-TDP01"]["Tỷ lệ hoàn thành (%)"] == approx(100 / 3) and groups["DEMO-TDP03"]["Đạt chỉ tiêu"] == "Đạt"
    assert groups["Tổng cộng"]["Tỷ lệ hoàn thành (%)"] == 50.0
    head = book["Tổng hợp theo tổ"]
    assert "Phường Mẫu" in head["A1"].value and head["A2"].value == "Kỳ báo cáo: từ khi bắt đầu đến 10:00 01/09/2026"
    assert head["A3"].value == "Lập lúc 08:30 02/09/2026 (giờ Asia/Ho_Chi_Minh)"
    assert head["A4"].value == "Số tổ đạt chỉ tiêu: 1/3"  # of the groups with members

    _, residents = _table(book["Tiến độ người dân"], "Họ và tên")
    by_name = {r["Họ và tên"]: r for r in residents}
    assert set(by_name) == {"Hải", "An", "Bình", "Chi", "Em"}  # no tombstone, no other ward
    l1, l2, l3 = (f"Bài {n}. {lesson.title}" for n, lesson in enumerate(seeded.lessons, 1))
    binh = by_name["Bình"]
    assert (binh["Số bài hoàn thành (tự học)"], binh["Số bài hoàn thành (có hỗ trợ)"], binh["Số bài đang học"]) == (1, 1, 1)
    assert (binh[l1], binh[l2], binh[l3]) == ("✓", "✓ (hỗ trợ)", "đang học")
    assert (by_name["Em"][l1], by_name["Em"]["Do tổ trưởng thêm"], by_name["Em"]["Số bài hoàn thành (có hỗ trợ)"]) == \
        ("✓ (hỗ trợ)", "Có", 3)
    assert by_name["Hải"][l1] is None and by_name["An"]["Do tổ trưởng thêm"] == "Không"
    assert by_name["An"]["Hoạt động gần nhất"] == datetime(2026, 5, 4, 10, 0)  # local wall-clock time
    async with seeded.app.sessions() as session:  # the leader's member list agrees
        groups_of_ward = select(ResidentGroup).join(Ward).where(Ward.code == "DEMO")
        for group in (await session.exec(groups_of_ward)).all():
            for m in await members_progress(session, group_id=group.id, lesson_ids=[x.id for x in seeded.lessons]):  # type: ignore[arg-type]
                row = by_name[m.display_name]  # type: ignore[index]
                assert (row["Số bài hoàn thành (tự học)"] + row["Số bài hoàn thành (có hỗ trợ)"],
                        row["Số bài hoàn thành (có hỗ trợ)"], row["Số bài đang học"]) == (m.completed, m.assisted, m.in_progress)

    _, lessons = _table(book["Bài học"], "Thứ tự")
    counts = [(r["Đã bắt đầu"], r["Lượt hoàn thành bài – tự học (lũy kế)"], r["Lượt hoàn thành bài – có hỗ trợ (lũy kế)"])
              for r in lessons]
    assert counts == [(5, 4, 1), (4, 2, 2), (4, 2, 1)]
    assert [r["Mã bài"] for r in lessons] == [x.id for x in seeded.lessons] and lessons[0]["Phiên bản"] == 1
    assert all(r["Lĩnh vực năng lực số"][0] in "123456" for r in lessons)
    assert sum(c[1] for c in counts) == groups["Tổng cộng"]["Lượt hoàn thành bài – tự học (trong kỳ)"]  # all time

    _, assisted = _table(book["Hoàn thành có hỗ trợ"], "Họ và tên")
    assert [(r["Họ và tên"], r["Mã tổ"], r["Bài học"], r["Tổ trưởng ghi nhận"]) for r in assisted] == \
        [("Bình", "DEMO-TDP01", seeded.lessons.get(lessons[1]["Mã bài"]).title, "Hải")] + \
        [("Em", "DEMO-TDP03", x.title, "Hải") for x in seeded.lessons]  # type: ignore[union-attr]
    assert assisted[0]["Thời gian hoàn thành"] == datetime(2026, 5, 5, 10, 0)

    _, broadcasts = _table(book["Thông báo"], "Số")
    assert [r["Số"] for r in broadcasts] == [seeded.broadcasts["all"], seeded.broadcasts["behind"]]  # not KHAC's
    first = broadcasts[0]
    assert (first["Đối tượng"], first["Người nhận"], first["Đã gửi"], first["Bị chặn"], first["Lỗi"], first["Đang chờ"]) \
        == ("Tất cả người dân", 3, 1, 1, 1, 0)  # this ward's share: Khoa (KHAC) waits in the other ward's
    async with seeded.app.sessions() as session:
        report = await delivery_report(session, broadcast_id=seeded.broadcasts["behind"])
    assert [broadcasts[1][k] for k in ("Đã gửi", "Bị chặn", "Lỗi", "Đang chờ")] == \
        [report.totals[k] for k in ("sent", "blocked", "failed", "pending")]
    assert broadcasts[1]["Đối tượng"].startswith("Người chưa hoàn thành bài")


async def test_cells_are_typed_and_the_header_is_bold_and_frozen(seeded: Seed) -> None:
    book = await _workbook(seeded, start=None, end=SEPTEMBER)
    groups = book["Tổng hợp theo tổ"]
    top, _ = _table(groups, "Mã tổ")
    assert groups.freeze_panes == f"C{top + 1}" and groups.cell(top, 1).font.b
    assert 26 <= groups.column_dimensions["B"].width < 27  # 26 characters (the file stores their padded width)
    row = top + 1
    assert groups.cell(row, 5).data_type == "n" and isinstance(groups.cell(row, 5).value, int)
    assert groups.cell(row, 9).number_format == "0.0"
    for name in SHEETS[1:]:
        ws = book[name]
        assert ws.freeze_panes is not None and ws.cell(1, 1).font.b and ws.column_dimensions["A"].width > 5
    dates = [c for c in book["Hoàn thành có hỗ trợ"]["F"][1:]]
    assert dates and all(isinstance(c.value, datetime) and c.number_format == DATE_FORMAT for c in dates)
    assert all(isinstance(c.value, datetime) for c in book["Thông báo"]["B"][1:])


async def test_periods_filter_and_keep_assisted_apart(seeded: Seed) -> None:
    h1_start, h1_end = datetime(2025, 12, 31, 17, tzinfo=UTC), datetime(2026, 6, 30, 17, tzinfo=UTC) - timedelta(microseconds=1)
    first = await _workbook(seeded, start=h1_start, end=h1_end)
    groups = await _check_groups_sheet(seeded, first, h1_start, h1_end)
    assert _group_row(groups["DEMO-TDP02"])["members"] == 1 and _group_row(groups["DEMO-TDP03"])["members"] == 0
    assert [r["Họ và tên"] for r in _table(first["Hoàn thành có hỗ trợ"], "Họ và tên")[1]] == ["Bình"]
    assert [r["Số"] for r in _table(first["Thông báo"], "Số")[1]] == [seeded.broadcasts["all"]]
    assert {r["Họ và tên"] for r in _table(first["Tiến độ người dân"], "Họ và tên")[1]} == {"Hải", "An", "Bình"}

    h2_start = h1_end + timedelta(microseconds=1)
    second = await _workbook(seeded, start=h2_start, end=SEPTEMBER)
    groups = await _check_groups_sheet(seeded, second, h2_start, SEPTEMBER)
    assert _group_row(groups["DEMO-TDP01"])["self_period"] == 0
    assert (_group_row(groups["DEMO-TDP02"])["self_period"], _group_row(groups["DEMO-TDP02"])["assisted_period"]) == (3, 0)
    assert (_group_row(groups["DEMO-TDP03"])["self_period"], _group_row(groups["DEMO-TDP03"])["assisted_period"]) == (0, 3)
    _, lessons = _table(second["Bài học"], "Thứ tự")
    assert [(r["Lượt hoàn thành bài – tự học (trong kỳ)"], r["Lượt hoàn thành bài – có hỗ trợ (trong kỳ)"])
            for r in lessons] == [(1, 1), (1, 1), (1, 1)]  # Chi on her own, Em with Hải
    assert [r["Họ và tên"] for r in _table(second["Hoàn thành có hỗ trợ"], "Họ và tên")[1]] == ["Em"] * 3
    assert [r["Số"] for r in _table(second["Thông báo"], "Số")[1]] == [seeded.broadcasts["behind"]]


async def test_the_change_against_the_previous_period(seeded: Seed) -> None:
    h2_start = datetime(2026, 6, 30, 17, tzinfo=UTC)
    book = await _workbook(seeded, start=h2_start, end=AUGUST + timedelta(days=1))
    groups = await _check_groups_sheet(seeded, book, h2_start, AUGUST + timedelta(days=1))
    # At the first half-year's end TDP02 had only Dũng (0 %) and TDP03 nobody; now 1 of 2 and 1 of 1.
    change = "Thay đổi so với kỳ trước (điểm %)"
    assert groups["DEMO-TDP02"][change] == 50.0
    assert groups["DEMO-TDP03"][change] == 100.0
    assert groups["DEMO-TDP01"][change] == 0.0
    assert groups["Tổng cộng"][change] == approx(50.0 - 100 / 4)  # 3/6 now, 1/4 at the end of June
    assert (groups["DEMO-TDP02"]["Hoàn thành chương trình (trong kỳ)"],
            groups["DEMO-TDP01"]["Hoàn thành chương trình (trong kỳ)"]) == (1, 0)
    assert groups["DEMO-TDP03"]["Người mới bắt đầu học (trong kỳ)"] == 1  # Em
    assert MAY < AUGUST


async def test_a_name_is_never_a_formula_a_link_or_a_broken_file(seeded: Seed) -> None:
    formula, link, control = '=HYPERLINK("http://example.invalid","x")', "http://example.invalid/x", "Chi\x07\x1b Lê"
    async with seeded.app.sessions() as session, session.begin():
        for name, value in (("Hải", formula), ("An", link), ("Bình", control)):
            person = await session.get(Person, seeded.people[name])
            person.display_name = value  # type: ignore[union-attr]
            session.add(person)
    data = await build_workbook(seeded, start=None, end=SEPTEMBER)
    _, residents = _table(load_workbook(BytesIO(data))["Tiến độ người dân"], "Họ và tên")
    names = [r["Họ và tên"] for r in residents]
    assert formula in names and link in names and "Chi Lê" in names  # control characters dropped, file opens
    with zipfile.ZipFile(BytesIO(data)) as archive:
        sheets = [archive.read(n) for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert not any(n.startswith("xl/worksheets/_rels/") for n in archive.namelist())  # no hyperlinks
    assert not any(b"<f>" in xml for xml in sheets)


async def test_a_past_periods_sheets_show_nothing_dated_after_its_end(seeded: Seed) -> None:
    an = Chat(seeded.app.conversation, user="An", name="An")
    await an.send("xin chào")  # An is active again in August
    h1_end = datetime(2026, 6, 30, 17, tzinfo=UTC) - timedelta(microseconds=1)
    first = await _workbook(seeded, start=datetime(2025, 12, 31, 17, tzinfo=UTC), end=h1_end)
    local_end = datetime(2026, 6, 30, 23, 59, 59)
    residents = {r["Họ và tên"]: r for r in _table(first["Tiến độ người dân"], "Họ và tên")[1]}
    assert residents["An"]["Hoạt động gần nhất"] == datetime(2026, 5, 4, 10, 0)  # his last lesson, not August
    for sheet, top, column in (("Tiến độ người dân", "Họ và tên", "Hoạt động gần nhất"),
                               ("Hoàn thành có hỗ trợ", "Họ và tên", "Thời gian hoàn thành"),
                               ("Thông báo", "Số", "Thời gian gửi")):
        dated = [r[column] for r in _table(first[sheet], top)[1] if r[column]]
        assert all(moment <= local_end for moment in dated), sheet
    now = await _workbook(seeded, start=None, end=SEPTEMBER)
    residents = {r["Họ và tên"]: r for r in _table(now["Tiến độ người dân"], "Họ và tên")[1]}
    assert residents["An"]["Hoạt động gần nhất"] > local_end


async def test_a_wards_workbook_shows_only_its_own_share_of_broadcasts(seeded: Seed) -> None:
    demo = await _workbook(seeded, start=None, end=SEPTEMBER)
    khac = load_workbook(BytesIO(await build_workbook(seeded, ward="KHAC", start=None, end=SEPTEMBER,
                                                      now=SEPTEMBER)))
    mine = {r["Số"]: r for r in _table(demo["Thông báo"], "Số")[1]}
    theirs = {r["Số"]: r for r in _table(khac["Thông báo"], "Số")[1]}
    assert set(theirs) == {seeded.broadcasts["all"], seeded.broadcasts["other ward"]}  # no DEMO-only broadcast
    everyone = seeded.broadcasts["all"]  # no ward named: each ward sees the residents it reached
    assert mine[everyone]["Người nhận"] + theirs[everyone]["Người nhận"] == 4
    assert sum(mine[everyone][k] + theirs[everyone][k] for k in ("Đã gửi", "Bị chặn", "Lỗi", "Đang chờ")) == 4
    assert theirs[everyone]["Người nhận"] == 1 and mine[everyone]["Người nhận"] == 3


async def test_the_workbook_is_dated_by_the_clock_it_is_given(seeded: Seed) -> None:
    """The same period made at the same moment is the same file, stamped with that moment (not
    the wall clock's), so the chat, the CLI and a reminder give one file."""
    first = await build_workbook(seeded, start=None, end=SEPTEMBER)
    again = await build_workbook(seeded, start=None, end=SEPTEMBER)
    assert first == again
    assert load_workbook(BytesIO(first)).properties.created == MADE.replace(tzinfo=None)
