"""The dashboard in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium,
``apt-get install chromium``; no browser is downloaded). The bot's real web endpoint serves the
pages from the real database on 127.0.0.1; the sign-in links come from ``/web`` sent in the
chat through the real conversation engine.

Each page is checked with axe-core (vendored in ``bot/dashboard/static/vendor``: no serious or
critical violation) at desktop and phone width, and photographed at both widths into
``artifacts/screenshots/`` (docs/dashboard.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.overview import read_ward_overview
from tests.dashboard.conftest import World, link_from_chat
from tests.staff import group, ward as ward_of
from tests.support import Chat, ManualClock

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "bot" / "dashboard" / "static" / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium; .ci/run does)")


# libfaketime (the second run of .ci/run) is for our code: the browser and Playwright's driver
# run without it (under it Chromium crawls: minutes a page). They read no time our pages depend on.
FAKETIME_VARIABLES = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC", "NO_FAKE_STAT")


@pytest.fixture
async def chromium(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The browser, for every module that uses it (skipped, as this module is, without it)."""
    if not CHROMIUM.exists():
        pytest.skip(pytestmark.kwargs["reason"])
    from playwright.async_api import async_playwright

    for name in FAKETIME_VARIABLES:
        monkeypatch.delenv(name, raising=False)  # for the processes started below
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            await browser.close()


class Tab:
    """One browser profile (its own cookies) with a page, noting what the CSP refused."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.refused: list[str] = []
        page.on("console", lambda m: self.refused.append(m.text) if "Content Security Policy" in m.text else None)

    async def goto(self, url: str) -> int:
        response = await self.page.goto(url)
        return int(response.status)

    async def text(self, selector: str) -> str:
        return str(await self.page.locator(selector).first.inner_text()).strip()

    async def follow(self, link: str, url: str) -> None:
        """Click the link named ``link`` (the first of that name) and wait for the page at ``url`` (a glob)."""
        await self.page.get_by_role("link", name=link, exact=True).first.click()
        await self.page.wait_for_url(url)

    async def check(self, name: str) -> None:
        """axe-core finds nothing serious or critical at either width, nothing is wider than the
        phone's screen, and the page is photographed at both widths."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, (width, height) in WIDTHS.items():
            await self.page.set_viewport_size({"width": width, "height": height})
            if not await self.page.evaluate("() => typeof axe !== 'undefined'"):
                await self.page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")  # not subject to the CSP
            result = await self.page.evaluate(
                "async () => { const r = await axe.run(document);"
                " return {passes: r.passes.map(p => p.id), violations: r.violations.map("
                "v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))}; }")
            assert "color-contrast" in result["passes"] and "html-has-lang" in result["passes"]  # it looked
            serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
            assert serious == [], (name, label, serious)
            overflow = await self.page.evaluate("() => document.documentElement.scrollWidth")
            assert overflow <= width, (name, label, overflow)
            await self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        await self.page.set_viewport_size({"width": 1280, "height": 900})
        assert self.refused == []  # the pages need nothing the CSP forbids


async def open_tab(chromium: Any) -> Tab:
    context = await chromium.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    return Tab(await context.new_page())


async def sign_in(tab: Tab, link: str, *, name: str | None = None) -> None:
    assert await tab.goto(link) == 200
    assert await tab.text("h1") == "Đăng nhập trang quản lý"
    if name:
        await tab.check(name)
    await tab.page.get_by_role("button", name="Đăng nhập").click()
    await tab.page.wait_for_url("**/web/")


async def signed_in_tab(chromium: Any, chat: Chat) -> Tab:
    """A browser profile of its own, signed in as ``chat`` with the link ``/web`` sends in the chat."""
    tab = await open_tab(chromium)
    await sign_in(tab, await link_from_chat(chat))
    return tab


async def test_an_admin_signs_in_from_the_chat_and_sees_the_wards_numbers(world: World, chromium: Any) -> None:
    tab = await open_tab(chromium)
    await sign_in(tab, await link_from_chat(world.admin), name="signin")
    assert tab.page.url == world.base + "/web/"  # no token in the address any more
    assert await tab.text("h1") == "Tổng quan — Phường Mẫu"
    ward = await ward_of(world.app)
    async with world.app.sessions() as session:
        view = await read_ward_overview(session, ward=ward, lessons=world.app.lessons,
                                        zone=world.app.settings.zone, now=world.app.clock.now())
    shown = {figure: await tab.text(f"[data-figure={figure}]") for figure in (
        "members", "started", "finished", "target", "week", "questions", "targets-met", "self", "assisted")}
    assert shown == {
        "members": str(view.members), "started": str(view.started), "finished": str(view.finished),
        "target": str(view.target_percent), "week": str(view.finished_this_week),
        "questions": str(view.open_questions), "targets-met": str(view.targets_met),
        "self": str(view.completed_self), "assisted": str(view.completed_assisted),
    }
    # The seeded ward, as the conftest's table says: 7 people, 4 started, An and Lan finished,
    # Bình's question open, the lessons all done alone.
    assert (view.members, view.started, view.finished, view.open_questions) == (7, 4, 2, 1)
    assert (view.completed_self, view.completed_assisted) == (6, 0)
    # The thi đua table: every group, in the ranking's order, Tổ 1 (1 of 2 finished) first.
    rows = tab.page.locator("#thi-dua ~ div table tbody tr")  # the thi đua table (the trend has one too)
    assert await rows.count() == len(view.groups)
    assert [await rows.nth(i).get_attribute("data-group") for i in range(len(view.groups))] == \
        [str(s.group_id) for s in view.ranked]
    assert (await tab.text("#can-chu-y + ul li")).startswith("Tổ dân phố 3: 1 câu hỏi chưa trả lời · học xong 25%")
    await tab.check("overview")

    # The keyboard: the first Tab reaches the skip link, which takes focus to the content.
    await tab.page.keyboard.press("Tab")
    assert await tab.page.evaluate("() => document.activeElement.textContent") == "Bỏ qua, đến nội dung chính"
    await tab.page.keyboard.press("Enter")
    assert await tab.page.evaluate("() => document.activeElement.id") == "noi-dung"

    # A group's page from the table.
    tdp03 = await group(world.app, "DEMO-TDP03")
    await tab.page.locator(f"tr[data-group='{tdp03.id}'] a").click()
    await tab.page.wait_for_url(f"**/web/to/{tdp03.id}")
    assert await tab.text("h1") == "Tổ dân phố 3"


async def test_the_menu_shows_which_page_is_open(world: World, chromium: Any) -> None:
    """The page's own link in the menu is marked for screen readers (aria-current) and for the
    eye: bold and underlined by a bar, where the other links are not — not by colour alone."""
    tab = await signed_in_tab(chromium, world.admin)
    await tab.follow("Bài học", "**/web/bai-hoc")
    menu = tab.page.get_by_role("navigation", name="Điều hướng chính")
    current = menu.locator("a[aria-current=page]")
    assert await current.all_inner_texts() == ["Bài học"]
    looks = "e => { const s = getComputedStyle(e); return [s.fontWeight, s.borderBottomStyle, s.borderBottomWidth]; }"
    assert await current.evaluate(looks) == ["700", "solid", "3px"]
    other = await menu.get_by_role("link", name="Tổng quan").evaluate(looks)
    assert other[0] != "700" and other[1] == "none"


async def test_a_leader_sees_their_group_and_gets_403_on_another(world: World, chromium: Any) -> None:
    tab = await signed_in_tab(chromium, world.leader)
    assert await tab.text("h1") == "Tổ của tôi"
    tdp03, tdp01 = await group(world.app, "DEMO-TDP03"), await group(world.app, "DEMO-TDP01")
    rows = tab.page.locator("table:has(#bang-to) tbody tr")
    assert await rows.count() == 1 and await rows.first.get_attribute("data-group") == str(tdp03.id)
    await tab.check("leader-home")

    assert await tab.goto(f"{world.base}/web/to/{tdp03.id}") == 200
    members = await tab.page.locator("#thanh-vien ~ div tbody th").all_inner_texts()
    assert sorted(members) == ["Ba", "Bình", "Chi", "Lan"]
    assert await tab.text("tbody tr:has(th:text-is('Lan')) td:last-child") == "Đã học xong"
    await tab.check("group")

    assert await tab.goto(f"{world.base}/web/to/{tdp01.id}") == 403
    assert await tab.text("h1") == "Bạn không có quyền xem trang này"
    assert "An" not in await tab.text("main")
    await tab.check("forbidden")
    assert await tab.goto(f"{world.base}/web/phuong/{tdp01.ward_id}") == 403


async def test_expired_and_reused_links_are_refused(world: World, chromium: Any, clock: ManualClock) -> None:
    first, second = await open_tab(chromium), await open_tab(chromium)
    link = await link_from_chat(world.admin)
    await sign_in(first, link)
    assert await second.goto(link) == 410  # used
    assert await second.text("h1") == "Link đăng nhập không dùng được nữa"
    await second.check("link-refused")

    late = await link_from_chat(world.leader)
    assert await second.goto(late) == 200  # opened in time…
    clock.advance(minutes=10)
    async with second.page.expect_navigation() as navigation:
        await second.page.get_by_role("button", name="Đăng nhập").click()  # …pressed too late
    assert (await navigation.value).status == 410
    assert await second.goto(world.base + "/web/") == 401
    assert await second.text("h1") == "Bạn chưa đăng nhập"
    await second.check("not-signed-in")


async def test_a_form_without_its_csrf_token_is_refused(world: World, chromium: Any) -> None:
    tab = await signed_in_tab(chromium, world.admin)
    await tab.page.evaluate("() => document.querySelector('form[action=\"/web/thoat\"] input[name=csrf]').remove()")
    async with tab.page.expect_navigation() as navigation:
        await tab.page.get_by_role("button", name="Đăng xuất").click()
    assert (await navigation.value).status == 403
    assert await tab.text("h1") == "Biểu mẫu không hợp lệ"
    await tab.check("form-refused")
    assert await tab.goto(world.base + "/web/") == 200  # nothing happened: still signed in

    await tab.page.get_by_role("button", name="Đăng xuất").click()  # with its token
    await tab.page.wait_for_url("**/web/da-thoat")
    assert await tab.text("h1") == "Bạn đã đăng xuất"
    await tab.check("signed-out")
    assert await tab.goto(world.base + "/web/") == 401
