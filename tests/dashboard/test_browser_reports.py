"""The report and lesson pages in a real browser (Playwright driving Debian's Chromium, as
``test_browser.py``): an admin picks a period with the keyboard, reads its figures, downloads
the Word report and the workbook and opens them (python-docx, openpyxl) to find the page's
numbers; a city admin chooses a ward; a leader reads a lesson and its answer statistics.
Every page is checked with axe-core and photographed at both widths (docs/dashboard.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.reports.period import chosen_period
from bot.reports.wording import percent
from storage.answers import answer_counts
from storage.figures import read_period_figures
from tests.dashboard.conftest import World, admin_of_another_ward
from tests.dashboard.test_browser import (  # noqa: F401 (a fixture; skipped without Chromium)
    chromium, pytestmark, signed_in_tab,
)
from tests.reports.test_documents import _sheet, _texts
from tests.staff import group, ward as ward_of
from tests.support import Chat, pass_lesson



async def test_a_report_downloads_and_opens(world: World, chromium: Any, tmp_path: Path) -> None:
    tab = await signed_in_tab(chromium, world.admin)
    await tab.page.get_by_role("link", name="Báo cáo", exact=True).click()
    ward = await ward_of(world.app)
    await tab.page.wait_for_url(f"**/web/phuong/{ward.id}/bao-cao")
    assert await tab.text("h1") == "Báo cáo — Phường Mẫu"
    assert await tab.page.get_by_label("6 tháng (báo cáo sơ kết)").is_checked()

    # The keyboard: the radio buttons are one stop, the arrows move, Enter sends the form.
    await tab.page.get_by_label("6 tháng (báo cáo sơ kết)").focus()
    await tab.page.keyboard.press("ArrowUp")  # "Tháng này", the option before it
    assert await tab.page.get_by_label("Tháng này").is_checked()
    async with tab.page.expect_navigation():
        await tab.page.keyboard.press("Enter")
    assert tab.page.url.endswith("/bao-cao?ky=month")
    assert await tab.text("#ky-bao-cao") == "Số liệu tháng 11 năm 2026"
    await tab.check("reports-report")

    _, period = chosen_period("month", now=world.app.clock.now(), zone=world.app.settings.zone)
    async with world.app.sessions() as session:
        assert ward.id is not None
        figures = await read_period_figures(session, ward_id=ward.id, lessons=world.app.lessons, start=period.start,
                                            end=period.end, zone=world.app.settings.zone)
    shown: dict[str, list[str]] = {}
    rows = tab.page.locator("#theo-to ~ div tbody tr")
    for i in range(await rows.count()):
        row = rows.nth(i)
        shown[(await row.locator("th").inner_text()).strip()] = [
            c.strip() for c in await row.locator("td").all_inner_texts()]
    assert shown == {g.name: [str(g.members), str(g.participants), str(g.new_participants), str(g.completed_self),
                              str(g.completed_assisted), str(g.finished),
                              "–" if g.rate is None else percent(g.rate),
                              f"{g.target_percent}%" + (" ✓ đạt" if g.meets_target else "")]
                     for g in figures.groups}
    assert await tab.text("[data-figure=finished]") == str(figures.total.finished) == "2"

    # The Word report: its group table has the page's numbers.
    async with tab.page.expect_download() as download:
        await tab.page.get_by_role("link", name="Báo cáo (Word)").click()
    report = await download.value
    assert report.suggested_filename == "bao-cao-DEMO-thang-11-nam-2026.docx"
    await report.save_as(tmp_path / "bao-cao.docx")
    paragraphs, tables = _texts((tmp_path / "bao-cao.docx").read_bytes())
    assert "Kết quả triển khai Phong trào “Bình dân học vụ số” tháng 11 năm 2026" in paragraphs
    in_document = {row[1]: row for row in tables[1][1:]}
    for name, cells in shown.items():
        assert [in_document[name][2], in_document[name][4], in_document[name][5]] == [cells[0], cells[1], cells[5]]
        assert in_document[name][6] == (cells[6] if cells[6] != "–" else "chưa có thành viên")

    # The workbook: the same numbers, and the residents the page does not list.
    async with tab.page.expect_download() as download:
        await tab.page.get_by_role("link", name="Bảng số liệu (Excel)").click()
    book = await download.value
    assert book.suggested_filename == "so-lieu-DEMO-thang-11-nam-2026.xlsx"
    await book.save_as(tmp_path / "so-lieu.xlsx")
    sheet = _sheet((tmp_path / "so-lieu.xlsx").read_bytes(), "Tổng hợp theo tổ", "Mã tổ")
    for row in sheet:
        if row["Mã tổ"] == "Tổng cộng":
            assert row["Thành viên"] == figures.total.members and row["Hoàn thành chương trình"] == 2
            continue
        cells = shown[str(row["Tổ dân phố / thôn"])]
        assert [str(row["Thành viên"]), str(row["Đã bắt đầu học"]), str(row["Hoàn thành chương trình"])] == \
            [cells[0], cells[1], cells[5]]


async def test_a_city_admin_chooses_a_ward_and_a_leader_has_no_reports(world: World, chromium: Any) -> None:
    city = await admin_of_another_ward(world, user="3001", name="Cán bộ Thành phố", group_code="DEMO-TDP01", city=True)
    tab = await signed_in_tab(chromium, city)
    assert await tab.goto(world.base + "/web/bao-cao") == 200
    assert await tab.text("h1") == "Báo cáo — chọn phường"
    await tab.check("reports-wards")
    await tab.follow("Phường Khác", "**/bao-cao")
    assert await tab.text("h1") == "Báo cáo — Phường Khác"
    assert await tab.text("[data-figure=rate]") == "chưa có thành viên"

    leader = await signed_in_tab(chromium, world.leader)
    assert await leader.page.get_by_role("link", name="Báo cáo", exact=True).count() == 0
    ward = await ward_of(world.app)
    assert await leader.goto(f"{world.base}/web/phuong/{ward.id}/bao-cao") == 403
    assert await leader.text("h1") == "Bạn không có quyền xem trang này"


async def test_a_leader_reads_a_lesson_and_how_their_residents_answered(world: World, chromium: Any) -> None:
    first = world.app.lessons.first
    chi = Chat(world.app.conversation, user="1005", name="Chi")  # Tổ 3: one question wrong
    await pass_lesson(chi, first, correct=2)
    tab = await signed_in_tab(chromium, world.leader)
    await tab.follow("Bài học", "**/web/bai-hoc")
    assert await tab.text("h1") == "Bài học"
    await tab.check("lessons-list")

    await tab.follow(first.title, f"**/web/bai-hoc/{first.id}")
    assert await tab.text("h1") == f"Bài 1: {first.title}"
    tdp03 = await group(world.app, "DEMO-TDP03")
    assert tdp03.id is not None
    async with world.app.sessions() as session:
        counts = await answer_counts(session, group_ids=[tdp03.id])
    for number, question in enumerate(first.quiz.questions, 1):
        stats = counts[(first.id, question.id)]
        article = tab.page.locator(f"article[data-question='{number}']")
        assert (await article.locator("[data-stat=answered]").inner_text()).strip() == str(stats.answered)
        assert (await article.locator("[data-stat=right]").inner_text()).strip() == f"{stats.share_right:.0f}%"
    # Lan and Bình right everywhere; Chi wrong on the third question, with the option after the answer.
    third = first.quiz.questions[2]
    wrong = (third.answer_index + 1) % len(third.options)
    assert (await tab.text("article[data-question='3'] [data-stat=most-wrong]")) == \
        f"{'ABC'[wrong]}. {third.options[wrong]}"
    await tab.page.get_by_text("Lời giải thích người dân nhận được").first.click()  # a <details> opens
    await tab.check("lessons-lesson")
