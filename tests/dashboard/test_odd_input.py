"""Odd input in the dashboard's addresses and forms: a page or a kind refusal, never a 500 —
and a 500, if one happens anyway, is as private as every other /web answer (no cache, no frame)."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from tests.dashboard.conftest import World
from tests.dashboard.test_signin import Browser, browser, signed_in  # noqa: F401 (a fixture)
from tests.staff import group, ward as ward_of

SUPERSCRIPT_TWO = "%C2%B2"  # "²": str.isdigit() says yes, int() says no


async def test_odd_numbers_and_dates_never_give_a_500(world: World, browser: Browser) -> None:
    csrf = await signed_in(world, world.admin, browser)
    tdp03 = await group(world.app, "DEMO-TDP03")
    ward = await ward_of(world.app)
    for path in (f"/web/to/{tdp03.id}?kq=nhac&gui={SUPERSCRIPT_TWO}",
                 f"/web/phuong/{ward.id}/thong-bao?moi={SUPERSCRIPT_TWO}",
                 "/web/nhat-ky?tu=0001-01-01", "/web/nhat-ky?den=9999-12-31",
                 "/web/nhat-ky?tu=0001-01-01&den=9999-12-31",
                 f"/web/nhat-ky?nguoi={SUPERSCRIPT_TWO}", f"/web/nhat-ky?truoc={SUPERSCRIPT_TWO}",
                 f"/web/nhat-ky?phuong={SUPERSCRIPT_TWO}", "/web/nhat-ky?tu=%EF%BC%92026-01-01"):
        async with browser.http.get(world.base + path, allow_redirects=False) as response:
            assert response.status in (200, 400), path
            assert response.headers["Cache-Control"] == "no-store", path
    for path, form in ((f"/web/to/{tdp03.id}/nhac", {"nguoi": "²"}),
                       (f"/web/to/{tdp03.id}/hoc-truc-tiep", {"nguoi": "²", "bai": "x"}),
                       (f"/web/phuong/{ward.id}/can-bo/moi", {"to": "²"}),
                       (f"/web/phuong/{ward.id}/can-bo/go-vai-tro", {"vai_tro": "²"}),
                       (f"/web/phuong/{ward.id}/thong-bao/soan",
                        {"noi_dung": "Tin", "doi_tuong": "groups", "to": "²"})):
        response = await browser.post(world.base + path, {"csrf": csrf, **form})
        assert response.status in (303, 400, 403), path
        assert response.headers["Cache-Control"] == "no-store", path


async def test_a_500_carries_the_dashboards_headers(world: World, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import bot.dashboard.pages as pages

    async def broken(session: object, *, token: str, now: object) -> bool:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(pages, "link_is_usable", broken)
    caplog.set_level(logging.CRITICAL)  # the failure's traceback is expected here
    async with aiohttp.ClientSession() as http, http.get(f"{world.base}/web/vao/{'x' * 43}") as response:
        assert response.status == 500 and await response.json() == {"ok": False}
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
