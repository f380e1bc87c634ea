"""The groups and staff pages in Debian's Chromium (``tests.dashboard.test_browser``'s harness):
sorting the thi đua table by its header links, nudging and recording an assisted completion
from a group's page with the keyboard and the mouse, the trend chart, the leaders and
invitations page and the audit log — each page checked with axe-core and photographed at
desktop and phone width (docs/dashboard.md)."""

from __future__ import annotations

from typing import Any

from storage.models import AuditLog, Invite, LessonProgress, Outbox
from tests.dashboard.conftest import World
from tests.dashboard.test_browser import chromium, signed_in_tab  # noqa: F401 (a fixture)
from tests.staff import group, person_of, rows
from tests.support import Chat, ManualClock


async def test_an_admin_sorts_the_groups_and_reads_the_trend(world: World, chromium: Any) -> None:
    tab = await signed_in_tab(chromium, world.admin)
    # The overview's trend chart: an SVG with its words, and the weeks as a table.
    assert await tab.page.locator("#xu-huong ~ figure svg[role=img]").count() == 1
    assert (await tab.page.locator("#xu-huong-mo-ta").text_content() or "").startswith("Tổng cộng 6 lượt; tuần này 6 lượt")
    await tab.page.get_by_text("Xem số liệu dạng bảng").click()
    assert await tab.text("tr[data-week='2026-11-23'] td:last-child") == "6"

    await tab.follow("Thi đua các tổ", "**/web/cac-to")
    assert await tab.text("h1") == "Thi đua các tổ — Phường Mẫu"
    assert await tab.page.locator("th[aria-sort]").get_attribute("data-column") == "hang"
    await tab.check("groups-table")

    await tab.follow("Thành viên", "**/web/cac-to?sap_xep=thanh-vien&chieu=desc")
    assert await tab.page.locator("th[aria-sort=descending]").get_attribute("data-column") == "thanh-vien"
    members = [int(t) for t in await tab.page.locator("tbody tr td:nth-child(3)").all_inner_texts()]
    assert members == sorted(members, reverse=True)
    await tab.follow("Thành viên", "**chieu=asc")  # again: the other way
    members = [int(t) for t in await tab.page.locator("tbody tr td:nth-child(3)").all_inner_texts()]
    assert members == sorted(members)


async def test_a_leader_nudges_and_records_a_lesson_from_the_group_page(world: World, chromium: Any,
                                                                        clock: ManualClock) -> None:
    clock.advance(days=4)  # Bình and Chi are behind
    tdp03 = await group(world.app, "DEMO-TDP03")
    chi = await person_of(world.app, Chat(world.app.conversation, user="1005", name="Chi"))
    tab = await signed_in_tab(chromium, world.leader)
    assert await tab.goto(f"{world.base}/web/to/{tdp03.id}") == 200
    assert await tab.text("[data-figure=behind]") == "2"
    await tab.check("group-actions")

    await tab.page.get_by_role("button", name="Nhắc cả 2 người").click()
    await tab.page.wait_for_url(f"**/web/to/{tdp03.id}?kq=nhac*")
    assert await tab.text("[data-outcome]") == "Đã xếp 2 lời nhắc vào hàng gửi qua bot."
    await tab.check("group-nudged")
    assert len([o for o in await rows(world.app, Outbox) if o.kind == "nudge"]) == 2

    # The keyboard: focus the button that records Chi's first lesson, press Enter.
    button = tab.page.get_by_role("button", name="Ghi nhận Chi đã học xong bài 1 trực tiếp")
    await button.focus()
    await tab.page.keyboard.press("Enter")
    await tab.page.wait_for_url(f"**/web/to/{tdp03.id}?kq=da-ghi")
    assert await tab.text("[data-outcome]") == "Đã ghi nhận bài học xong trực tiếp với tổ trưởng."
    first = list(world.app.lessons)[0]
    cell = tab.page.locator(f"tr[data-person='{chi.id}'] td[data-lesson='{first.id}']")
    assert (await cell.inner_text()).startswith("✓ trực tiếp")
    progress = [r for r in await rows(world.app, LessonProgress) if r.person_id == chi.id]
    assert [(r.lesson_id, r.status) for r in progress] == [(first.id, "completed")]

    await cell.get_by_role("button").click()  # "Hoàn tác"
    await tab.page.wait_for_url(f"**/web/to/{tdp03.id}?kq=hoan-tac")
    assert [r for r in await rows(world.app, LessonProgress) if r.person_id == chi.id] == []
    assert [a.action for a in await rows(world.app, AuditLog) if a.action.startswith("leader.")] == [
        "leader.nudge", "leader.assist", "leader.undo_assist"]


async def test_an_admin_manages_leaders_and_reads_the_audit_log(world: World, chromium: Any) -> None:
    tdp05 = await group(world.app, "DEMO-TDP05")
    tab = await signed_in_tab(chromium, world.admin)
    await tab.follow("Tổ trưởng", "**/web/can-bo")
    assert await tab.text("h1") == "Tổ trưởng và lời mời — Phường Mẫu"
    await tab.check("staff")

    await tab.page.get_by_role("button", name=f"Tạo link mời tổ trưởng {tdp05.name}").click()
    await tab.page.wait_for_url("**/web/loi-moi/*")
    [invite] = await rows(world.app, Invite)
    assert await tab.text("[data-link=zalo]") == f"/start ld_{invite.code}"
    await tab.check("staff-invitation")

    await tab.goto(world.base + "/web/nhat-ky")
    assert await tab.text("h1") == "Nhật ký thao tác"
    assert await tab.text("tbody tr:first-child td:nth-child(3)") == "admin.invite"
    await tab.check("audit-log")
    await tab.page.get_by_label("Thao tác").select_option("web.signin")
    await tab.page.get_by_role("button", name="Lọc").click()
    await tab.page.wait_for_url("**hanh_dong=web.signin*")
    actions = await tab.page.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert actions and set(actions) == {"web.signin"}

    # A leader is refused both pages.
    leader = await signed_in_tab(chromium, world.leader)
    assert await leader.goto(world.base + "/web/can-bo") == 403
    assert await leader.goto(world.base + "/web/nhat-ky") == 403
