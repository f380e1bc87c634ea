"""The dashboard's report pages over HTTP (aiohttp's client as the browser), against the real
app of ``world``: an admin picks a period and reads the figures ``read_period_figures`` gives
for it, and downloads the period's files — the ones ``render_report`` (what ``hocvuso report``
calls) draws for the same period and clock, as attachments never cached; a leader gets 403."""

from __future__ import annotations

import re
from html import unescape
from io import BytesIO
from pathlib import Path

import aiohttp
import pytest
from openpyxl import load_workbook

from bot.reports.docx import Signer
from bot.reports.exports import read_report, render_report
from bot.reports.period import CHOICES, chosen_period
from bot.reports.wording import percent
from storage.figures import PeriodFigures, read_period_figures
from storage.models import AuditLog
from tests.dashboard.conftest import World, admin_of_another_ward
from tests.dashboard.test_signin import Browser, browser, signed_in  # noqa: F401 (a fixture)
from tests.reports.test_cli import _document
from tests.staff import person_of, rows, ward as ward_of
from tests.support import ManualClock

FILES = ("bao-cao.docx", "so-lieu.xlsx", "de-xuat-khen-thuong.docx", "bieu-do-nhom.png", "bieu-do-thang.png",
         "bieu-do-bai.png")


def figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">([^<]*)<', page)
    assert found, name
    return unescape(found.group(1)).strip()


async def figures_of(world: World, choice: str) -> PeriodFigures:
    ward = await ward_of(world.app)
    assert ward.id is not None
    _, period = chosen_period(choice, now=world.app.clock.now(), zone=world.app.settings.zone)
    async with world.app.sessions() as session:
        return await read_period_figures(session, ward_id=ward.id, lessons=world.app.lessons, start=period.start,
                                         end=period.end, zone=world.app.settings.zone)


async def test_an_admin_reads_each_periods_figures(any_world: World, browser: Browser) -> None:
    world = any_world
    await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    async with browser.http.get(world.base + "/web/bao-cao", allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"] == f"/web/phuong/{ward.id}/bao-cao"
    for choice in CHOICES:
        status, page = await browser.get(f"{world.base}/web/phuong/{ward.id}/bao-cao?ky={choice}")
        assert status == 200, choice
        figures = await figures_of(world, choice)
        total = figures.total
        assert {name: figure(page, name) for name in ("members", "participants", "new", "finished", "rate",
                                                       "finished-period", "self", "assisted")} == {
            "members": str(total.members), "participants": str(total.participants),
            "new": str(total.new_participants), "finished": str(total.finished),
            "rate": percent(total.rate) if total.rate is not None else "chưa có thành viên",
            "finished-period": str(total.finished_in_period), "self": str(total.completed_self),
            "assisted": str(total.completed_assisted)}, choice
        assert f'value="{choice}" checked' in page
        for g in figures.groups:
            row = re.search(rf'<tr data-group="{g.group_id}">(.*?)</tr>', page, re.S)
            assert row, g.code
            cells = [unescape(c).strip() for c in re.findall(r'<td class="num">([^<]*)', row.group(1))]
            assert cells[:6] == [str(g.members), str(g.participants), str(g.new_participants),
                                 str(g.completed_self), str(g.completed_assisted), str(g.finished)]
        for name in FILES:
            assert f'href="/web/phuong/{ward.id}/bao-cao/{choice}/{name}"' in page
    # The seeded ward (tests/dashboard/conftest.py): 7 people, 4 started, An and Lan finished,
    # every lesson done this month, alone.
    month = await figures_of(world, "month")
    assert (month.total.members, month.total.participants, month.total.finished) == (7, 4, 2)
    assert (month.total.completed_self, month.total.completed_assisted, month.total.new_participants) == (6, 0, 4)
    status, page = await browser.get(f"{world.base}/web/phuong/{ward.id}/bao-cao?ky=decade")
    assert status == 404 and "Không có kỳ báo cáo hay tệp này" in page


async def test_the_downloads_are_the_files_the_cli_draws(world: World, browser: Browser, clock: ManualClock,
                                                         tmp_path: Path) -> None:
    await signed_in(world, world.admin, browser)
    ward, admin = await ward_of(world.app), await person_of(world.app, world.admin)
    assert ward.id is not None
    zone, now = world.app.settings.zone, clock.now()
    span, period = chosen_period("6m", now=now, zone=zone)
    async with world.app.sessions() as session:
        data = await read_report(session, ward_id=ward.id, lessons=world.app.lessons, start=period.start,
                                 end=period.end, zone=zone)
    expected = render_report(data, lessons=world.app.lessons, span=span.value if span else None, zone=zone, now=now,
                             signer=Signer(world.app.settings.report_signer_title,
                                           world.app.settings.report_signer_name))
    got: dict[str, bytes] = {}
    for name in FILES:
        async with browser.http.get(f"{world.base}/web/phuong/{ward.id}/bao-cao/6m/{name}") as response:
            assert response.status == 200, name
            assert response.headers["Cache-Control"] == "private, no-store"
            disposition = response.headers["Content-Disposition"]
            kind, suffix = name.rsplit(".", 1)
            assert disposition.startswith(f'attachment; filename="{kind}-DEMO-6-thang-cuoi-nam-2026.{suffix}"')
            got[name] = await response.read()
    assert _document(got["bao-cao.docx"]) == _document(expected.report)
    assert _document(got["de-xuat-khen-thuong.docx"]) == _document(expected.annex)
    sheets = {ws.title: list(ws.iter_rows(values_only=True)) for ws in load_workbook(BytesIO(got["so-lieu.xlsx"]))}
    assert sheets == {ws.title: list(ws.iter_rows(values_only=True))
                      for ws in load_workbook(BytesIO(expected.workbook))}
    for chart in ("nhom", "thang", "bai"):
        assert got[f"bieu-do-{chart}.png"] == expected.charts[chart], chart
    # Each download is audited: who, the ward, the period, the file.
    audited = [a for a in await rows(world.app, AuditLog) if a.action == "admin.report"]
    assert [(a.actor, a.target, a.details) for a in audited] == [
        (f"person:{admin.id}", f"ward:{ward.id}", {"period": "6m", "file": n, "via": "web"}) for n in FILES]
    for wrong in ("6m/bao-cao.pdf", "decade/bao-cao.docx"):
        status, page = await browser.get(f"{world.base}/web/phuong/{ward.id}/bao-cao/{wrong}")
        assert status == 404 and "Không có kỳ báo cáo hay tệp này" in page, wrong


async def test_a_leader_gets_403_and_nobody_signed_in_401(world: World, browser: Browser) -> None:
    ward = await ward_of(world.app)
    async with aiohttp.ClientSession() as anonymous:
        for path in ("/web/bao-cao", f"/web/phuong/{ward.id}/bao-cao", f"/web/phuong/{ward.id}/bao-cao/6m/so-lieu.xlsx"):
            async with anonymous.get(world.base + path, allow_redirects=False) as response:
                assert response.status == 401, path
    await signed_in(world, world.leader, browser)
    _, home = await browser.get(world.base + "/web/")
    assert 'href="/web/bao-cao"' not in home  # not offered
    for path in ("/web/bao-cao", f"/web/phuong/{ward.id}/bao-cao", f"/web/phuong/{ward.id}/bao-cao?ky=month",
                 f"/web/phuong/{ward.id}/bao-cao/6m/so-lieu.xlsx", f"/web/phuong/{ward.id}/bao-cao/6m/bao-cao.docx"):
        status, page = await browser.get(world.base + path)
        assert status == 403 and "Bạn không có quyền xem trang này" in page, path
        assert "An" not in re.sub(r"<[^>]+>", " ", page).split(), path
    assert [a for a in await rows(world.app, AuditLog) if a.action == "admin.report"] == []


async def test_an_admin_of_another_ward_gets_403(world: World, browser: Browser) -> None:
    """A ward's admin sees only their ward's report: another ward's page and files are 403."""
    other = await admin_of_another_ward(world, user="2001", name="Cán bộ Khác", group_code="DEMO-TDP05")
    demo, khac = await ward_of(world.app), await ward_of(world.app, "KHAC")
    await signed_in(world, other, browser)
    for path in (f"/web/phuong/{demo.id}/bao-cao", f"/web/phuong/{demo.id}/bao-cao/6m/so-lieu.xlsx"):
        status, _ = await browser.get(world.base + path)
        assert status == 403, path
    async with browser.http.get(world.base + "/web/bao-cao") as response:  # to their own ward's
        assert response.status == 200 and response.url.path == f"/web/phuong/{khac.id}/bao-cao"
        page = await response.text()
    assert "Báo cáo — Phường Khác" in unescape(page) and figure(page, "members") == "0"
    assert figure(page, "rate") == "chưa có thành viên"


async def test_the_files_are_drawn_in_the_drawing_process_after_the_transaction(
    world: World, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every download goes through the bot's drawing process (never the event loop), and at that
    moment the request holds no connection: no read transaction, no write lock (another
    connection takes SQLite's write lock without waiting)."""
    import bot.reports.exports
    from tests.test_transactions import _write_lock_is_free

    drawn: list[tuple[str, bool, int]] = []
    in_drawing_process = bot.reports.exports.in_drawing_process

    async def drawing(function, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append((function.__name__, _write_lock_is_free(world.app),
                      world.app.engine.sync_engine.pool.checkedout()))  # type: ignore[attr-defined]
        return await in_drawing_process(function, *args, **kwargs)

    monkeypatch.setattr(bot.reports.exports, "in_drawing_process", drawing)
    await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    for name in ("bao-cao.docx", "so-lieu.xlsx", "bieu-do-bai.png"):
        async with browser.http.get(f"{world.base}/web/phuong/{ward.id}/bao-cao/month/{name}") as response:
            assert response.status == 200 and len(await response.read()) > 1000, name
    assert drawn == [("draw_documents", True, 0), ("draw_workbook", True, 0), ("draw_documents", True, 0)]
