"""The broadcasts' pages over HTTP (aiohttp's client as the browser) against the real web
endpoint of ``open_world``: the composer's preview and count equal what the chat's functions
say, scheduling goes through the chat's service and the scheduler's tick queues the outbox
rows, a double submit makes one broadcast, cancel is audited once; admins only, every POST
CSRF-checked. The main journey runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import html
import re
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import delete
from sqlmodel import select

from bot.app import App
from bot.broadcasting import IMAGE_MAX_BYTES, estimate, estimate_lines, resident_message
from bot.channels.zalo.oa import oa_messages
from bot.media import draft_photos
from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, prune, tick
from storage.accounts import Declared, register_accounts
from storage.broadcasts import create_broadcast, recipients_by_channel
from storage.groups import upsert_group, upsert_ward
from storage.models import AuditLog, Broadcast, BroadcastStatus, HandledEvent, Outbox, Role, RoleKind, Ward
from tests.conftest import seed_demo_groups
from tests.dashboard.conftest import World, open_world
from tests.dashboard.test_signin import CSRF, Browser, browser, signed_in  # noqa: F401 (a fixture)
from tests.staff import group, person_of, rows, ward as ward_of
from tests.support import ManualClock

FORM_TOKEN = re.compile(r'name="mau" value="([^"]+)"')
RATES = {"test": 1.0}  # the test chats' channel: one message a second, so the estimate shows minutes


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A picture of one colour, as a PNG file (fixed bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png(160, 90, (11, 79, 138))


async def _world(app: App) -> AsyncIterator[World]:
    services = app.conversation.services
    app.conversation.services = replace(services, send_rates={**services.send_rates, **RATES})
    async with open_world(app) as built:
        yield built


@pytest.fixture
async def bc_world(ward: App) -> AsyncIterator[World]:
    """The conftest's ward, on SQLite, with a send rate for the test chats' channel."""
    async for built in _world(ward):
        yield built


@pytest.fixture
async def any_bc_world(any_app: App) -> AsyncIterator[World]:
    """The same on SQLite and on PostgreSQL."""
    await seed_demo_groups(any_app)
    async for built in _world(any_app):
        yield built


async def post(browser: Browser, url: str, fields: list[tuple[str, str]], *,
               photo: tuple[str, bytes] | None = None) -> tuple[int, str, str]:
    """A multipart POST as the composer's form sends it: (status, Location, page)."""
    data = aiohttp.FormData()
    for name, value in fields:
        data.add_field(name, value)
    if photo is not None:
        data.add_field("anh", photo[1], filename=photo[0], content_type="application/octet-stream")
    async with browser.http.post(url, data=data, allow_redirects=False) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


def draft(csrf: str, text: str, **more: Any) -> list[tuple[str, str]]:
    fields = [("csrf", csrf), ("noi_dung", text)]
    for name, value in more.items():
        fields += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
    return fields


def hidden_fields(page: str) -> list[tuple[str, str]]:
    """The preview's confirmation form: what "Đồng ý" sends."""
    form = page.split('action="', 1)[1].split("</form>", 1)[0]
    return [(n, html.unescape(v)) for n, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form)]


async def _broadcasts(app: App) -> list[Broadcast]:
    return await rows(app, Broadcast)


async def test_an_admin_previews_schedules_and_the_tick_fills_the_outbox(any_bc_world: World, browser: Browser,
                                                                         clock: ManualClock) -> None:
    world = any_bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    tdp03, tdp05 = await group(world.app, "DEMO-TDP03"), await group(world.app, "DEMO-TDP05")
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    async with browser.http.get(world.base + "/web/thong-bao", allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"] == f"/web/phuong/{ward.id}/thong-bao"
    status, page = await browser.get(base)
    assert status == 200 and "Phường chưa gửi thông báo nào." in page
    status, page = await browser.get(base + "/soan")
    assert status == 200 and 'name="noi_dung"' in page and "Tổ dân phố 3" in page

    # The preview: tomorrow 08:00 in the ward's time, to Tổ 3 and Tổ 5, with the button.
    text = "Chủ nhật này tổ chức ngày hội số.\nMời bà con đến nhà văn hóa."
    fields = draft(csrf, text, hoc_tiep="1", doi_tuong="groups", to=[str(tdp03.id), str(tdp05.id)], khi="later",
                   luc="2026-11-24T08:00")
    status, _, page = await post(browser, base + "/soan", fields)
    assert status == 200, page
    shown = html.unescape(page)
    sender = "📢 UBND phường Mẫu:"
    # Telegram: the text and its button; Zalo: the button as a numbered line, or words to type.
    telegram = shown.split('id="kenh-telegram"')[1].split("</section>")[0]
    assert f"{sender}\n{text}" in telegram and "<li>📖 Học tiếp</li>" in telegram
    zalo = shown.split('id="kenh-zalo"')[1].split("<details>")[0]
    assert f"{sender}\n{text}" in zalo and "1. 📖 Học tiếp" in zalo and "<li>📖 Học tiếp</li>" not in zalo
    assert "«Học tiếp»" in shown.split("<details>")[1]
    # The count and the estimate: the chat composer's functions, on the same audience.
    audience = {"kind": "groups", "codes": ["DEMO-TDP03", "DEMO-TDP05"], "ward": ward.code}
    async with world.app.sessions() as session:
        by_channel = await recipients_by_channel(session, audience=audience)
    assert by_channel == {"test": 5}  # Ba, Lan, Bình, Chi; Dũng
    assert "Gửi tới Tổ dân phố 3, Tổ dân phố 5: <strong>5</strong> người." in shown
    assert '<li data-channel="test">test: 5 người</li>' in shown
    start = clock.now().replace(hour=1)  # 08:00 tomorrow in Hà Nội (UTC+7)
    start = start + timedelta(days=1) if start < clock.now() else start
    t = world.app.catalog.translator(None)
    message = resident_message(t, text=text, ward_name=ward.name, learn=True)
    services = world.app.conversation.services
    found = estimate(message, recipients=by_channel, rates=services.send_rates, start=start, quiet=services.quiet)
    assert found is not None
    lines = estimate_lines(t, found, lead=t("broadcast.expected"), quiet=services.quiet, now=clock.now(), start=start)
    assert lines and all(f'<p class="estimate">{line}</p>' in shown for line in lines)
    assert "Bắt đầu gửi lúc 08:00 24/11/2026" in shown

    # "Đồng ý, hẹn giờ gửi", twice (a double click, a reload): one broadcast.
    confirm = hidden_fields(page.split('class="bc-preview"')[1])
    assert ("mau", FORM_TOKEN.search(page).group(1)) in confirm  # type: ignore[union-attr]
    first = await post(browser, base + "/gui", confirm)
    again = await post(browser, base + "/gui", confirm)
    [broadcast] = await _broadcasts(world.app)
    assert first[:2] == (303, f"/web/phuong/{ward.id}/thong-bao?moi={broadcast.id}")
    assert again[:2] == (303, f"/web/phuong/{ward.id}/thong-bao")
    assert broadcast.status == BroadcastStatus.SCHEDULED and broadcast.text == text
    assert broadcast.audience == {**audience, "learn": True}
    assert broadcast.scheduled_at == start and broadcast.image is None
    admin = await person_of(world.app, world.admin)
    assert broadcast.author == f"person:{admin.id}"
    created = [a for a in await rows(world.app, AuditLog) if a.action == "broadcast.create"]
    assert [(a.actor, a.target) for a in created] == [(f"person:{admin.id}", f"broadcast:{broadcast.id}")]
    assert [e.source for e in await rows(world.app, HandledEvent)] == ["web.broadcast"]
    assert [r for r in await rows(world.app, Outbox) if r.kind == "broadcast"] == []  # the help question's row aside
    status, page = await browser.get(f"{base}?moi={broadcast.id}")
    assert f"Đã tạo thông báo số {broadcast.id}." in page and "🕘 Đã lên lịch" in html.unescape(page)

    # The scheduler's job, on the test clock: not yet at 20:00; at 08:00 the rows are there.
    producers = Producers(sessions=world.app.sessions, clock=clock, lessons=world.app.lessons,
                          catalog=world.app.catalog, policy=ReminderPolicy(zone=world.app.settings.zone))
    assert (await tick(producers))["broadcast_rows"] == 0
    clock.advance(seconds=(start - clock.now()).total_seconds())
    assert (await tick(producers))["broadcast_rows"] == 5
    outbox = [r for r in await rows(world.app, Outbox) if r.broadcast_id == broadcast.id]
    assert len(outbox) == 5 and {r.group_id for r in outbox} == {tdp03.id, tdp05.id}
    assert {r.channel for r in outbox} == {"test"} and all(r.due_at == start for r in outbox)
    [queued] = await _broadcasts(world.app)
    assert queued.status == BroadcastStatus.QUEUED and queued.recipients == 5
    assert queued.message is not None and queued.message["text"] == f"{sender}\n{text}"

    # The list: waiting, with the delivery per group (the chat report's query). (22 hours on:
    # the session ended after 8 idle hours, a new link opens another.)
    await signed_in(world, world.admin, browser)
    status, page = await browser.get(base)
    shown = html.unescape(page)
    assert status == 200 and "⏳ Chờ gửi" in shown
    assert "<th scope=\"row\">Tổ dân phố 3 (DEMO-TDP03)</th>" in shown and "Tổ dân phố 5 (DEMO-TDP05)" in shown


async def test_send_now_queues_at_once(bc_world: World, browser: Browser) -> None:
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Tin gửi ngay", doi_tuong="all", khi="now"))
    assert status == 200 and "Nếu gửi ngay" in html.unescape(page) and "Đồng ý, gửi ngay" in page
    assert (await post(browser, base + "/gui", hidden_fields(page.split('class="bc-preview"')[1])))[0] == 303
    [broadcast] = await _broadcasts(world.app)
    assert broadcast.status == BroadcastStatus.QUEUED and broadcast.recipients == 7
    assert len([r for r in await rows(world.app, Outbox) if r.broadcast_id == broadcast.id]) == 7


async def test_the_audiences_of_the_chat(bc_world: World, browser: Browser) -> None:
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    first = list(world.app.lessons)[0]
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Học nhé", doi_tuong="not_completed",
                                                                bai=first.id))
    assert status == 200 and f'người chưa hoàn thành bài "{first.title}": <strong>3</strong> người' in \
        html.unescape(page)  # Hà, Ba, Chi
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Họp tổ trưởng", doi_tuong="leaders"))
    assert status == 200 and "các tổ trưởng: <strong>1</strong> người" in html.unescape(page)
    # Mistakes are said above the form, which keeps what was typed.
    for fields, error in (
        (draft(csrf, "Tin", doi_tuong="groups"), "Bạn hãy chọn ít nhất một tổ."),
        (draft(csrf, "Tin", doi_tuong="groups", to="999999"), "Bạn hãy chọn ít nhất một tổ."),
        (draft(csrf, "Tin", doi_tuong="not_completed", bai="khong-co"), "Bạn hãy chọn bài học."),
        (draft(csrf, "", doi_tuong="all"), "Bạn chưa nhập nội dung thông báo."),
        (draft(csrf, "x" * 4001, doi_tuong="all"), "Nội dung dài 4001 ký tự, tối đa 4000 ký tự."),
        (draft(csrf, "Tin", khi="later", luc=""), "Bạn hãy chọn ngày và giờ gửi."),
        (draft(csrf, "Tin", khi="later", luc="2026-11-22T08:00"), "Giờ gửi phải từ bây giờ đến 90 ngày tới."),
        (draft(csrf, "Tin", khi="later", luc="2027-06-01T08:00"), "Giờ gửi phải từ bây giờ đến 90 ngày tới."),
    ):
        status, _, page = await post(browser, base + "/soan", fields)
        assert status == 400 and error in html.unescape(page), (fields, page)
        assert 'class="bc-preview"' not in page
    # The confirmation re-checks it all too.
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Tin", doi_tuong="all"))
    token = dict(hidden_fields(page.split('class="bc-preview"')[1]))["mau"]  # a real preview's form token
    status, _, page = await post(browser, base + "/gui", draft(csrf, "Tin", doi_tuong="groups", mau=token))
    assert status == 400 and "Bạn hãy chọn ít nhất một tổ." in html.unescape(page)
    assert await _broadcasts(world.app) == []


async def test_a_photo_is_checked_stored_and_shown(bc_world: World, browser: Browser) -> None:
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    photos = world.app.conversation.services.files_dir / "in" / "web" / str(ward.id)  # the ward's own folder
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Ảnh"), photo=("a.png", b"not a picture"))
    assert status == 400 and "Ảnh phải là tệp JPG hoặc PNG." in page
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Ảnh"),
                                 photo=("big.jpg", b"\xff\xd8\xff" + b"\x00" * IMAGE_MAX_BYTES))
    assert status == 400 and "Ảnh lớn quá: tối đa 10 MB." in page
    assert not photos.exists() or list(photos.iterdir()) == []

    status, _, page = await post(browser, base + "/soan", draft(csrf, "Ngày hội", hoc_tiep="1"), photo=("a.png", PNG))
    assert status == 200
    [stored] = list(photos.iterdir())
    assert stored.read_bytes() == PNG and stored.suffix == ".png"
    assert f'src="/web/thong-bao/anh/{stored.name}"' in page
    assert "🖼 Ảnh" in page
    async with browser.http.get(f"{world.base}/web/thong-bao/anh/{stored.name}") as response:
        assert response.status == 200 and response.content_type == "image/png" and await response.read() == PNG
    async with browser.http.get(f"{world.base}/web/thong-bao/anh/..%2Ftest.db") as response:
        assert response.status == 404
    assert (await post(browser, base + "/gui", hidden_fields(page.split('class="bc-preview"')[1])))[0] == 303
    [broadcast] = await _broadcasts(world.app)
    assert broadcast.image == str(stored.resolve())
    # Editing keeps the photo unless "Bỏ ảnh này" is ticked.
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Sửa", anh_da_tai=stored.name, bo_anh="1"))
    assert status == 200 and "🖼 Ảnh" not in page


async def test_a_leader_gets_403_everywhere(bc_world: World, browser: Browser) -> None:
    world = bc_world
    csrf = await signed_in(world, world.leader, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    async with world.app.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="test", text="Tin", now=world.app.clock.now(),
                                           audience={"kind": "all", "ward": ward.code},
                                           scheduled_at=world.app.clock.now() + timedelta(days=1))
    for url in ("/web/thong-bao", base, base + "/soan"):
        status, page = await browser.get(world.base + url if url.startswith("/") else url)
        assert status == 403 and "Bạn không có quyền xem trang này" in page, url
    assert 'href="/web/thong-bao"' not in (await browser.get(world.base + "/web/"))[1]  # not in the menu
    for url in (base + "/soan", base + "/gui", f"{world.base}/web/thong-bao/{broadcast.id}/huy"):
        status, _, _ = await post(browser, url, draft(csrf, "Tin", doi_tuong="all", mau="y" * 43))
        assert status == 403, url
    [still] = await _broadcasts(world.app)
    assert still.status == BroadcastStatus.SCHEDULED
    assert [a for a in await rows(world.app, AuditLog) if a.action.startswith("broadcast.")] == []


async def test_forms_without_the_csrf_token_change_nothing(bc_world: World, browser: Browser) -> None:
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Tin", doi_tuong="all", khi="later",
                                                                luc="2026-11-25T09:00"))
    confirm = hidden_fields(page.split('class="bc-preview"')[1])
    without = [(n, v) for n, v in confirm if n != "csrf"]
    wrong = [(n, v if n != "csrf" else v[:-1] + ("0" if v[-1] != "0" else "1")) for n, v in confirm]
    for fields in (without, wrong):
        status, _, page = await post(browser, base + "/gui", fields)
        assert status == 403 and "Biểu mẫu không hợp lệ" in page
        status, _, page = await post(browser, base + "/soan", [(n, v) for n, v in fields if n != "mau"],
                                     photo=("a.png", PNG))
        assert status == 403
    assert await _broadcasts(world.app) == [] and await rows(world.app, HandledEvent) == []
    photos = world.app.conversation.services.files_dir / "in"
    assert not photos.exists() or list(photos.iterdir()) == []  # nothing stored either

    assert (await post(browser, base + "/gui", confirm))[0] == 303
    [broadcast] = await _broadcasts(world.app)
    cancel = f"{world.base}/web/thong-bao/{broadcast.id}/huy"
    assert (await browser.post(cancel, {})).status == 403
    assert (await browser.post(cancel, {"csrf": "0" * 64})).status == 403
    [still] = await _broadcasts(world.app)
    assert still.status == BroadcastStatus.SCHEDULED


async def test_cancel_is_audited_once_and_only_for_the_wards_broadcasts(any_bc_world: World, browser: Browser,
                                                                       clock: ManualClock) -> None:
    world = any_bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    now = clock.now()
    async with world.app.sessions() as session, session.begin():
        mine = await create_broadcast(session, author="test", text="Của phường", now=now,
                                      audience={"kind": "all", "ward": ward.code}, scheduled_at=now + timedelta(days=1))
        programme = await create_broadcast(session, author="cli", text="Của chương trình", now=now,
                                           audience={"kind": "all"}, scheduled_at=now + timedelta(days=1))
    status, page = await browser.get(f"{world.base}/web/phuong/{ward.id}/thong-bao")
    assert f'action="/web/thong-bao/{mine.id}/huy"' in page and "Của chương trình" not in page
    for _ in range(2):  # a double click
        response = await browser.post(f"{world.base}/web/thong-bao/{mine.id}/huy", {"csrf": csrf})
        assert response.status == 303 and response.headers["Location"] == f"/web/phuong/{ward.id}/thong-bao"
    response = await browser.post(f"{world.base}/web/thong-bao/{programme.id}/huy", {"csrf": csrf})
    assert response.status == 403
    statuses = {b.id: b.status for b in await _broadcasts(world.app)}
    assert statuses == {mine.id: BroadcastStatus.CANCELLED, programme.id: BroadcastStatus.SCHEDULED}
    cancels = [(a.action, a.target) for a in await rows(world.app, AuditLog) if a.action == "broadcast.cancel"]
    assert cancels == [("broadcast.cancel", f"broadcast:{mine.id}")]
    status, page = await browser.get(f"{world.base}/web/phuong/{ward.id}/thong-bao")
    assert "✖ Đã hủy" in page and f'action="/web/thong-bao/{mine.id}/huy"' not in page
    async with world.app.sessions() as session:
        assert (await session.exec(select(Broadcast).where(Broadcast.id == programme.id))).one().status == \
            BroadcastStatus.SCHEDULED


async def test_two_submits_at_once_make_one_broadcast(any_bc_world: World, browser: Browser) -> None:
    world = any_bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Một lần thôi", khi="later",
                                                                luc="2026-11-25T09:00"))
    confirm = hidden_fields(page.split('class="bc-preview"')[1])
    answers = await asyncio.gather(*(post(browser, base + "/gui", confirm) for _ in range(3)))
    assert sorted(a[0] for a in answers) == [303, 303, 303]
    [broadcast] = await _broadcasts(world.app)
    assert sorted(a[1] for a in answers) == [f"/web/phuong/{ward.id}/thong-bao"] * 2 + \
        [f"/web/phuong/{ward.id}/thong-bao?moi={broadcast.id}"]
    assert len([a for a in await rows(world.app, AuditLog) if a.action == "broadcast.create"]) == 1
    # A new preview of the same words is a new broadcast (its own token).
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Một lần thôi", khi="later",
                                                                luc="2026-11-25T09:00"))
    assert (await post(browser, base + "/gui", hidden_fields(page.split('class="bc-preview"')[1])))[0] == 303
    assert len(await _broadcasts(world.app)) == 2


async def test_the_preview_shows_the_zalo_oa_where_the_ward_has_one(bc_world: World, browser: Browser) -> None:
    """A Zalo Official Account serving the ward (its own, or one serving every ward) adds its
    column to the preview: the consultation messages its transport sends, from the OA
    channel's own renderer (``oa_messages``) — the text with the option as a numbered line, and
    the option as a button under it; the photo first. Another ward's OA adds nothing."""
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    text = "Chủ nhật này tổ chức ngày hội số."

    async def oa_column(**more: Any) -> str | None:
        status, _, page = await post(browser, base + "/soan", draft(csrf, text, hoc_tiep="1", doi_tuong="all"), **more)
        assert status == 200, page
        shown = html.unescape(page)
        return shown.split('id="kenh-zalo-oa"')[1].split("</section>")[0] if 'id="kenh-zalo-oa"' in shown else None

    assert await oa_column() is None  # no OA registered
    async with world.app.sessions() as session, session.begin():
        session.add(Ward(code="KHAC", name="Phường Khác"))
        await session.flush()
        await register_accounts(session, declared=[Declared("oa_khac", "zalo_oa", "KHAC")], now=world.app.clock.now())
    assert await oa_column() is None  # another ward's OA

    async with world.app.sessions() as session, session.begin():
        await register_accounts(session, declared=[Declared("oa_mau", "zalo_oa", "DEMO")], now=world.app.clock.now())
    t = world.app.catalog.translator(None)
    message = resident_message(t, text=text, ward_name=ward.name, learn=True)
    bodies = await oa_messages(message.as_reply(), t, None)
    [body] = bodies
    assert body["text"].startswith(f"📢 UBND phường Mẫu:\n{text}\n") and "1. 📖 Học tiếp" in body["text"]  # numbered…
    assert [b["title"] for b in body["attachment"]["payload"]["buttons"]] == ["📖 Học tiếp"]  # …and a button
    column = await oa_column()
    assert column is not None
    assert f'<p class="bubble-text">{body["text"]}</p>' in column and "<li>📖 Học tiếp</li>" in column
    assert "🖼 Ảnh" not in column

    column = await oa_column(photo=("a.png", PNG))  # the photo goes first, alone
    assert column is not None and column.index("🖼 Ảnh") < column.index(body["text"])

    # An OA serving every ward (the single-ward settings) serves this one too.
    async with world.app.sessions() as session, session.begin():
        await register_accounts(session, declared=[Declared("oa_mau", "zalo_oa", None)], now=world.app.clock.now())
    assert await oa_column() is not None


async def test_photos_of_drafts_never_sent_are_deleted_a_day_after_their_last_use(
        bc_world: World, browser: Browser, clock: ManualClock) -> None:
    """The scheduler's retention job deletes an uploaded photo no broadcast carries once its
    draft has not used it (uploaded, previewed again) for a day — on the test clock; a sent
    broadcast's photo stays; the abandoned preview, sent late, is refused kindly."""
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    files = world.app.conversation.services.files_dir
    photos = draft_photos(files) / "web" / str(ward.id)  # the ward's own folder
    producers = Producers(sessions=world.app.sessions, clock=clock, lessons=world.app.lessons,
                          catalog=world.app.catalog, policy=ReminderPolicy(zone=world.app.settings.zone),
                          files_dir=files)

    async def upload(text: str) -> tuple[str, str]:
        """A preview with a new photo: (the photo's name, the page)."""
        status, _, page = await post(browser, base + "/soan", draft(csrf, text, doi_tuong="all"), photo=("a.png", PNG))
        assert status == 200, page
        return re.search(r'name="anh_da_tai" value="([^"]+)"', page).group(1), page  # type: ignore[union-attr]

    sent, page = await upload("Gửi kèm ảnh")
    assert (await post(browser, base + "/gui", hidden_fields(page.split('class="bc-preview"')[1])))[0] == 303
    abandoned, page = await upload("Bỏ dở")
    late = hidden_fields(page.split('class="bc-preview"')[1])
    edited, _ = await upload("Còn sửa")
    assert {p.name for p in photos.iterdir()} == {sent, abandoned, edited}
    assert (await prune(producers))["draft_photos"] == 0

    clock.advance(hours=20)
    csrf = await signed_in(world, world.admin, browser)  # a new session: the last one was idle 8 hours
    status, _, _ = await post(browser, base + "/soan", draft(csrf, "Còn sửa tiếp", doi_tuong="all", anh_da_tai=edited))
    assert status == 200
    assert (await prune(producers))["draft_photos"] == 0  # each used within the day
    clock.advance(hours=5)
    assert (await prune(producers))["draft_photos"] == 1
    assert {p.name for p in photos.iterdir()} == {sent, edited}

    late = [(n, csrf if n == "csrf" else v) for n, v in late]
    assert (await post(browser, base + "/gui", late))[0] == 403  # its form token was the last session's
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Bỏ dở", doi_tuong="all", anh_da_tai=abandoned))
    assert status == 400 and "Không tìm thấy ảnh đã tải lên. Bạn chọn lại ảnh giúp nhé." in html.unescape(page)
    assert len(await _broadcasts(world.app)) == 1

    clock.advance(hours=20)
    assert (await prune(producers))["draft_photos"] == 1
    assert [p.name for p in photos.iterdir()] == [sent]  # a broadcast's photo is never a draft's
    assert (await prune(producers))["draft_photos"] == 0


def _role_removed_after_the_page_check(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """The viewer's roles are read, then (another admin, the CLI) the roles go: only the check
    inside the write transaction can see it."""
    import bot.dashboard.pages as pages

    real = pages.viewer

    async def then_removed(dashboard: Any, request: Any) -> Any:
        who = await real(dashboard, request)
        async with app.sessions() as session, session.begin():
            await session.exec(delete(Role).where(Role.person_id == who.person.id))  # type: ignore[call-overload]
        return who

    monkeypatch.setattr(pages, "viewer", then_removed)


async def test_an_admin_removed_meanwhile_cannot_send_or_cancel(bc_world: World, browser: Browser,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Tin", doi_tuong="all", khi="now"))
    confirm = hidden_fields(page.split('class="bc-preview"')[1])
    now = world.app.clock.now()
    async with world.app.sessions() as session, session.begin():
        scheduled = await create_broadcast(session, author="test", text="Đã hẹn", now=now,
                                           audience={"kind": "all", "ward": ward.code},
                                           scheduled_at=now + timedelta(days=1))
    roles = await rows(world.app, Role)
    _role_removed_after_the_page_check(world.app, monkeypatch)
    status, _, page = await post(browser, base + "/gui", confirm)
    assert status == 403 and "Bạn không có quyền" in page
    [still] = await _broadcasts(world.app)  # the one made before; nothing sent
    assert still.id == scheduled.id and await rows(world.app, HandledEvent) == []
    async with world.app.sessions() as session, session.begin():  # an admin again, for the page's check
        session.add_all([Role(person_id=r.person_id, kind=r.kind, group_id=r.group_id, ward_id=r.ward_id,
                              granted_by=r.granted_by, granted_at=r.granted_at) for r in roles])
    assert (await browser.post(f"{world.base}/web/thong-bao/{scheduled.id}/huy", {"csrf": csrf})).status == 403
    [still] = await _broadcasts(world.app)
    assert still.status == BroadcastStatus.SCHEDULED
    assert [a for a in await rows(world.app, AuditLog) if a.action.startswith("broadcast.")] == []


async def test_a_photo_belongs_to_the_ward_it_was_uploaded_for(bc_world: World, browser: Browser) -> None:
    """Ward B's admin can neither see ward A's upload nor send it by its name; a photo gone
    missing is said kindly, with no path of the server."""
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    status, _, page = await post(browser, f"{world.base}/web/phuong/{ward.id}/thong-bao/soan", draft(csrf, "Ảnh"),
                                 photo=("a.png", PNG))
    [name] = re.findall(r'name="anh_da_tai" value="([^"]+)"', page)[:1]
    async with world.app.sessions() as session, session.begin():
        other, _ = await upsert_ward(session, code="KHAC", name="Phường Khác")
        await upsert_group(session, ward_id=other.id, code="KHAC-01", name="Tổ Khác", kind=None, target_percent=None)
        ba = await person_of(world.app, world.leader)
        session.add(Role(person_id=ba.id, kind=RoleKind.ADMIN, ward_id=other.id, granted_by="cli",
                         granted_at=world.app.clock.now()))
    b_admin = Browser()
    try:
        b_csrf = await signed_in(world, world.leader, b_admin)
        async with b_admin.http.get(f"{world.base}/web/thong-bao/anh/{name}") as response:
            assert response.status == 404
        b_base = f"{world.base}/web/phuong/{other.id}/thong-bao"
        status, _, page = await post(b_admin, b_base + "/soan", draft(b_csrf, "Ảnh của phường khác", anh_da_tai=name))
        assert status == 400 and "Không tìm thấy ảnh đã tải lên" in page
        status, _, page = await post(b_admin, b_base + "/soan", draft(b_csrf, "Ảnh của phường khác", doi_tuong="all"))
        confirm = hidden_fields(page.split('class="bc-preview"')[1])
        status, _, page = await post(b_admin, b_base + "/gui", [*confirm, ("anh_da_tai", name)])
        assert status == 400 and "Không tìm thấy ảnh đã tải lên" in page
        assert str(world.app.conversation.services.files_dir) not in page
    finally:
        await b_admin.close()
    assert await _broadcasts(world.app) == []
    async with browser.http.get(f"{world.base}/web/thong-bao/anh/{name}") as response:  # its own ward: shown
        assert response.status == 200 and await response.read() == PNG


async def test_an_old_preview_form_is_refused_after_its_record_is_pruned(bc_world: World, browser: Browser,
                                                                        clock: ManualClock) -> None:
    """The form's token is recorded (handled_event) when it is sent, and that record is pruned
    after a week: a token older than a day is refused, so a resubmit never finds it gone."""
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Một lần thôi", doi_tuong="all"))
    confirm = hidden_fields(page.split('class="bc-preview"')[1])
    assert (await post(browser, base + "/gui", confirm))[0] == 303
    for _ in range(8 * 24 // 6):  # eight days, the session kept alive
        clock.advance(hours=6)
        assert (await browser.get(world.base + "/web/"))[0] == 200
    producers = Producers(sessions=world.app.sessions, clock=clock, lessons=world.app.lessons,
                          catalog=world.app.catalog, policy=ReminderPolicy(zone=world.app.settings.zone))
    assert (await prune(producers))["events"] == 1
    status, _, page = await post(browser, base + "/gui", confirm)
    assert status == 403 and "Biểu mẫu không hợp lệ" in page
    assert len(await _broadcasts(world.app)) == 1


async def test_a_preview_form_is_good_for_its_own_session_only(bc_world: World, browser: Browser) -> None:
    world = bc_world
    csrf = await signed_in(world, world.admin, browser)
    ward = await ward_of(world.app)
    base = f"{world.base}/web/phuong/{ward.id}/thong-bao"
    status, _, page = await post(browser, base + "/soan", draft(csrf, "Tin", doi_tuong="all"))
    confirm = dict(hidden_fields(page.split('class="bc-preview"')[1]))
    other = Browser()
    try:
        other_csrf = await signed_in(world, world.admin, other)
        forged = [(n, other_csrf if n == "csrf" else v) for n, v in confirm.items()]
        assert (await post(other, base + "/gui", forged))[0] == 403
        for token in ("y" * 43, confirm["mau"][:-1] + ("0" if confirm["mau"][-1] != "0" else "1")):
            assert (await post(other, base + "/gui", [*[(n, v) for n, v in forged if n != "mau"], ("mau", token)]))[0] == 403
    finally:
        await other.close()
    assert await _broadcasts(world.app) == []
