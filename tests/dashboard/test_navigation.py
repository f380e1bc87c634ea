"""The menu marks the page shown (``bot.dashboard.pages.nav_current``): ``aria-current="page"``
on the link of the page itself — a ward's copy of it too (``/web/phuong/<ward>/…``) —,
``aria-current="true"`` on a page within the link's section (the composer, a lesson, an
invitation), no mark on a page the menu does not list (a group's page)."""

from __future__ import annotations

import re

from tests.dashboard.conftest import World
from tests.dashboard.test_signin import Browser, browser, signed_in  # noqa: F401 (a fixture)
from tests.staff import group, ward as ward_of

MENU = re.compile(r'<nav aria-label="Điều hướng chính">(.*?)</nav>', re.S)
MARKED = re.compile(r'<a href="([^"]+)" aria-current="([a-z]+)">')


def marked(page: str) -> list[tuple[str, str]]:
    """(link, aria-current) of every link of the menu that carries a mark."""
    menu = MENU.search(page)
    assert menu, page[:200]
    return MARKED.findall(menu.group(1))


async def test_the_menu_marks_the_page_shown_for_an_admin(world: World, browser: Browser) -> None:
    await signed_in(world, world.admin, browser)
    ward, tdp03 = await ward_of(world.app), await group(world.app, "DEMO-TDP03")
    lesson = world.app.lessons.first
    ours = f"/web/phuong/{ward.id}"
    expected = {
        "/web/": [("/web/", "page")],
        ours: [("/web/", "page")],
        "/web/cac-to": [("/web/cac-to", "page")],
        f"{ours}/cac-to": [("/web/cac-to", "page")],
        f"{ours}/thong-bao": [("/web/thong-bao", "page")],
        f"{ours}/thong-bao/soan": [("/web/thong-bao", "true")],
        f"{ours}/bao-cao": [("/web/bao-cao", "page")],
        "/web/bai-hoc": [("/web/bai-hoc", "page")],
        f"/web/bai-hoc/{lesson.id}": [("/web/bai-hoc", "true")],
        "/web/can-bo": [("/web/can-bo", "page")],
        "/web/nhat-ky": [("/web/nhat-ky", "page")],
        f"/web/to/{tdp03.id}": [],
    }
    for path, want in expected.items():
        status, page = await browser.get(world.base + path)
        assert status == 200, path
        assert marked(page) == want, path


async def test_the_menu_marks_a_leaders_page(world: World, browser: Browser) -> None:
    await signed_in(world, world.leader, browser)
    for path, want in {"/web/": [("/web/", "page")], "/web/cac-to": [("/web/cac-to", "page")],
                       "/web/bai-hoc": [("/web/bai-hoc", "page")]}.items():
        status, page = await browser.get(world.base + path)
        assert status == 200, path
        assert marked(page) == want, path
