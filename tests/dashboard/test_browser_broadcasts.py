"""The broadcasts' pages in Debian's Chromium (``test_browser``'s ``chromium``, ``Tab``,
``signed_in_tab`` and ``sign_in``): the acceptance of issue 13 — an admin composes a broadcast,
sees the preview and the count, schedules it, and the outbox holds the rows once the
scheduler's job runs (on the test clock) — then its delivery per group and cancel. Every page
is checked with axe-core and photographed at desktop and phone width."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, tick
from storage.models import Broadcast, BroadcastStatus, Outbox, RoleKind, Ward
from storage.roles import grant
from tests.dashboard.conftest import World, link_from_chat
from tests.dashboard.test_broadcasts import PNG, bc_world  # noqa: F401 (a fixture: the world with a send rate)
from tests.dashboard.test_browser import chromium, sign_in, signed_in_tab  # noqa: F401 (a fixture)
from tests.staff import group, person_of, rows
from tests.support import ManualClock


async def test_an_admin_composes_previews_schedules_and_the_outbox_holds_the_rows(
        bc_world: World, chromium: Any, clock: ManualClock) -> None:
    world = bc_world
    tab = await signed_in_tab(chromium, world.admin)
    page = tab.page
    await tab.follow("Thông báo", "**/thong-bao")
    assert await tab.text("h1") == "Thông báo của Phường Mẫu"
    assert "Phường chưa gửi thông báo nào." in await tab.text("main")
    await tab.check("broadcasts-list-empty")

    await page.get_by_role("link", name="Soạn thông báo mới").click()
    await page.wait_for_url("**/thong-bao/soan")
    assert await tab.text("h1") == "Soạn thông báo — Phường Mẫu"
    await tab.check("broadcasts-compose")

    # A mistake is said above the form, which keeps what was typed.
    await page.get_by_label("Nội dung thông báo").fill("Chủ nhật này có ngày hội số.\nMời bà con đến nhà văn hóa.")
    await page.get_by_label("Một số tổ (chọn ở dưới)").check()
    async with page.expect_navigation() as navigation:
        await page.get_by_role("button", name="Xem trước").click()
    assert (await navigation.value).status == 400
    assert await tab.text("[role=alert] p") == "Bạn hãy chọn ít nhất một tổ."
    assert "ngày hội số" in await page.get_by_label("Nội dung thông báo").input_value()
    await tab.check("broadcasts-error")

    # The draft, by keyboard where it matters: the photo, the button, Tổ 3, tomorrow 08:00.
    await page.get_by_label("Ảnh kèm theo (không bắt buộc)").set_input_files(
        files=[{"name": "ngay-hoi.png", "mimeType": "image/png", "buffer": PNG}])
    await page.get_by_label("Thêm nút “📖 Học tiếp”").focus()
    await page.keyboard.press("Space")
    await page.get_by_label("Tổ dân phố 3").check()
    await page.get_by_label("Hẹn giờ gửi").check()
    await page.get_by_label("Ngày giờ gửi (giờ của phường)").fill("2026-11-24T08:00")
    await page.get_by_role("button", name="Xem trước").focus()
    async with page.expect_navigation() as navigation:
        await page.keyboard.press("Enter")
    assert (await navigation.value).status == 200

    # The preview as each channel renders it, the count, the estimate.
    telegram = await tab.text("#kenh-telegram + ol")
    assert telegram.startswith("🖼 Ảnh") and "📢 UBND phường Mẫu:\nChủ nhật này có ngày hội số." in telegram
    assert await tab.text("#kenh-telegram + ol .tg-buttons") == "📖 Học tiếp"
    zalo = await tab.text("#kenh-zalo + ol")
    assert "1. 📖 Học tiếp" in zalo
    assert await page.locator("#kenh-telegram + ol img").count() == 1  # the uploaded photo, served to the admin
    assert await page.locator("#kenh-telegram + ol img").evaluate("img => img.naturalWidth") == 160
    assert await tab.text("[data-figure=total]") == "Gửi tới Tổ dân phố 3: 4 người."  # Ba, Lan, Bình, Chi
    assert "Bắt đầu gửi lúc 08:00 24/11/2026" in await tab.text(".bc-preview")
    assert "⏱ Dự kiến" in await tab.text(".estimate")
    await tab.check("broadcasts-preview")

    await page.get_by_role("button", name="Đồng ý, hẹn giờ gửi").focus()
    async with page.expect_navigation() as navigation:
        await page.keyboard.press("Enter")
    assert (await navigation.value).status == 200
    [broadcast] = await rows(world.app, Broadcast)
    assert (await tab.text("[role=status]")).startswith(f"Đã tạo thông báo số {broadcast.id}.")
    assert (await tab.text(f"[data-broadcast='{broadcast.id}'] .bc-status")).startswith("🕘 Đã lên lịch")
    await tab.check("broadcasts-list")
    assert broadcast.status == BroadcastStatus.SCHEDULED and broadcast.image is not None
    assert [r for r in await rows(world.app, Outbox) if r.broadcast_id == broadcast.id] == []

    # 08:00 tomorrow: the scheduler's job queues it; the outbox holds one row per recipient.
    producers = Producers(sessions=world.app.sessions, clock=clock, lessons=world.app.lessons,
                          catalog=world.app.catalog, policy=ReminderPolicy(zone=world.app.settings.zone))
    clock.advance(hours=22)
    assert (await tick(producers))["broadcast_rows"] == 4
    tdp03 = await group(world.app, "DEMO-TDP03")
    outbox = [r for r in await rows(world.app, Outbox) if r.broadcast_id == broadcast.id]
    assert len(outbox) == 4 and {r.group_id for r in outbox} == {tdp03.id} and all(r.status == "pending" for r in outbox)

    # Its delivery per group, then cancel what still waits (signed in again: 22 idle hours).
    await sign_in(tab, await link_from_chat(world.admin))
    await tab.follow("Thông báo", "**/thong-bao")
    item = f"[data-broadcast='{broadcast.id}']"
    assert (await tab.text(f"{item} .bc-status")).startswith("⏳ Chờ gửi")
    assert await tab.text(f"{item} tbody tr:first-child th") == "Tổ dân phố 3 (DEMO-TDP03)"
    assert await tab.text(f"{item} tbody tr:first-child td:nth-child(5)") == "4"
    await tab.check("broadcasts-delivery")
    await page.get_by_role("button", name=f"Hủy thông báo số {broadcast.id}").click()
    await page.wait_for_url("**/thong-bao")
    assert await tab.text(f"{item} .bc-status") == "✖ Đã hủy"
    assert await tab.text(f"{item} tbody tr.total td:nth-child(6)") == "4"  # the four rows, cancelled
    [cancelled] = await rows(world.app, Broadcast)
    assert cancelled.status == BroadcastStatus.CANCELLED
    assert {r.status for r in await rows(world.app, Outbox) if r.broadcast_id == broadcast.id} == {"cancelled"}
    assert clock.now() - broadcast.created_at >= timedelta(hours=22)  # type: ignore[operator]


async def test_a_leader_gets_403_on_the_broadcasts(bc_world: World, chromium: Any) -> None:
    world = bc_world
    tab = await signed_in_tab(chromium, world.leader)
    assert await tab.page.get_by_role("link", name="Thông báo", exact=True).count() == 0
    assert await tab.goto(world.base + "/web/thong-bao") == 403
    assert await tab.text("h1") == "Bạn không có quyền xem trang này"
    await tab.check("broadcasts-forbidden")


async def test_an_admin_of_several_wards_chooses_one(bc_world: World, chromium: Any) -> None:
    world = bc_world
    admin = await person_of(world.app, world.admin)
    async with world.app.sessions() as session, session.begin():
        second = Ward(code="HAI", name="Phường Hai")
        session.add(second)
        await session.flush()
        await grant(session, person_id=admin.id, kind=RoleKind.ADMIN, ward_id=second.id, granted_by="test",
                    now=world.app.clock.now())
    tab = await signed_in_tab(chromium, world.admin)
    await tab.follow("Thông báo", "**/web/thong-bao")
    assert await tab.text("h1") == "Chọn phường để gửi thông báo"
    assert await tab.page.locator("main li a").all_inner_texts() == ["Phường Mẫu", "Phường Hai"]
    await tab.check("broadcasts-wards")
    await tab.follow("Phường Hai", "**/thong-bao")
    assert await tab.text("h1") == "Thông báo của Phường Hai"
