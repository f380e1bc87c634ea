"""The staff pages over HTTP against the real app: leaders and invitations (create, show the
chat's link, end one; remove a leader) and the audit log with its filters, for ward admins
only — each action the chat's storage function, audited, CSRF-checked, authorised in its
transaction, a second submit changing nothing. Database-dependent ones on SQLite and
PostgreSQL (``any_world``)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bot.dashboard import staff
from bot.links import invite_link
from storage import audit
from storage.broadcasts import create_broadcast
from storage.groups import upsert_group, upsert_ward
from storage.models import AuditLog, Invite, Outbox, Role, RoleKind
from storage.roles import InviteProblem, add_admin, consume_invite
from tests.dashboard.conftest import World
from tests.dashboard.test_signin import Browser, browser, signed_in  # noqa: F401 (a fixture)
from tests.staff import group, person_of, rows, snapshot
from tests.support import Chat, ManualClock

ENTRIES = re.compile(r'<tr data-entry="(\d+)">')


async def test_a_leader_gets_403_on_every_staff_page_and_action(any_world: World, browser: Browser) -> None:
    world = any_world
    tdp03 = await group(world.app, "DEMO-TDP03")
    csrf = await signed_in(world, world.leader, browser)
    [role] = [r for r in await rows(world.app, Role) if r.kind == RoleKind.LEADER]
    before = await snapshot(world.app)
    for path in ("/web/can-bo", f"/web/phuong/{tdp03.ward_id}/can-bo", "/web/nhat-ky"):
        status, page = await browser.get(world.base + path)
        assert status == 403 and "Bạn không có quyền xem trang này" in page, path
    base = f"{world.base}/web/phuong/{tdp03.ward_id}/can-bo"
    for path, form in (("/moi", {"to": str(tdp03.id)}), ("/go-vai-tro", {"vai_tro": str(role.id)})):
        response = await browser.post(base + path, {**form, "csrf": csrf})
        assert response.status == 403, path
    assert await snapshot(world.app) == before


async def test_an_admin_invites_a_leader_and_sees_the_chats_link_once(any_world: World, browser: Browser) -> None:
    world = any_world
    tdp05 = await group(world.app, "DEMO-TDP05")
    hà = await person_of(world.app, world.admin)
    csrf = await signed_in(world, world.admin, browser)
    status, page = await browser.get(world.base + "/web/can-bo")
    assert status == 200 and "Tổ trưởng và lời mời — Phường Mẫu" in page
    assert re.search(r'<tr data-group="%d"><th scope="row">Tổ dân phố 3</th>\s*<td>\s*<div class="leader" data-role="\d+">Ba'
                     % (await group(world.app, "DEMO-TDP03")).id, page)

    url = f"{world.base}/web/phuong/{tdp05.ward_id}/can-bo/moi"
    first = await browser.post(url, {"csrf": csrf, "to": str(tdp05.id)})
    again = await browser.post(url, {"csrf": csrf, "to": str(tdp05.id)})  # sent twice
    [invite] = await rows(world.app, Invite)
    assert first.status == again.status == 303
    assert first.headers["Location"] == again.headers["Location"] == f"/web/loi-moi/{invite.id}"
    assert (invite.group_id, invite.created_by, invite.used_by) == (tdp05.id, hà.id, None)
    made = [a for a in await rows(world.app, AuditLog) if a.action == "admin.invite"]
    assert [(a.actor, a.target, a.details) for a in made] == [(f"person:{hà.id}", f"group:{tdp05.id}",
                                                                {"invite": invite.id})]
    status, page = await browser.get(f"{world.base}/web/loi-moi/{invite.id}")
    assert status == 200
    # What the chat's "✉️ Mời tổ trưởng" shows (handlers.admin_groups._links).
    username = world.app.conversation.services.bot_username(tdp05.ward_id)
    zalo = invite_link(invite.code, telegram_username=None, channel="zalo")
    assert f'<code data-link="zalo">{zalo}</code>' in page
    if username:
        assert invite_link(invite.code, telegram_username=username) in page
    status, page = await browser.get(world.base + "/web/can-bo")
    assert f'<tr data-invite="{invite.id}">' in page

    # Ended from the page: a second press changes nothing, and the link no longer works.
    end = f"{world.base}/web/phuong/{tdp05.ward_id}/can-bo/huy-loi-moi"
    response = await browser.post(end, {"csrf": csrf, "loi_moi": str(invite.id)})
    assert response.headers["Location"] == f"/web/phuong/{tdp05.ward_id}/can-bo?kq=huy"
    before = await snapshot(world.app)
    response = await browser.post(end, {"csrf": csrf, "loi_moi": str(invite.id)})
    assert response.headers["Location"] == f"/web/phuong/{tdp05.ward_id}/can-bo?kq=da-huy"
    assert await snapshot(world.app) == before
    ended = [a for a in await rows(world.app, AuditLog) if a.action == "admin.invite_revoke"]
    assert [(a.target, a.details) for a in ended] == [(f"group:{tdp05.id}", {"invite": invite.id})]
    dung = await person_of(world.app, Chat(world.app.conversation, user="1006", name="Dũng"))
    async with world.app.sessions() as session, session.begin():
        assert await consume_invite(session, code=invite.code, person_id=dung.id,
                                    now=world.app.clock.now()) == InviteProblem.EXPIRED
    status, page = await browser.get(f"{world.base}/web/loi-moi/{invite.id}")
    assert status == 200 and zalo not in page


async def test_an_admin_removes_a_leader_once_and_the_leader_loses_the_pages(any_world: World,
                                                                             browser: Browser) -> None:
    world = any_world
    tdp03 = await group(world.app, "DEMO-TDP03")
    ba, hà = await person_of(world.app, world.leader), await person_of(world.app, world.admin)
    [role] = [r for r in await rows(world.app, Role) if r.kind == RoleKind.LEADER]
    leader = Browser()
    try:
        await signed_in(world, world.leader, leader)
        csrf = await signed_in(world, world.admin, browser)
        without = await browser.post(f"{world.base}/web/phuong/{tdp03.ward_id}/can-bo/go-vai-tro",
                                     {"vai_tro": str(role.id)})  # no CSRF token
        assert without.status == 403 and [r.id for r in await rows(world.app, Role)].count(role.id) == 1
        url = f"{world.base}/web/phuong/{tdp03.ward_id}/can-bo/go-vai-tro"
        response = await browser.post(url, {"csrf": csrf, "vai_tro": str(role.id)})
        assert response.headers["Location"] == f"/web/phuong/{tdp03.ward_id}/can-bo?kq=go"
        before = await snapshot(world.app)
        response = await browser.post(url, {"csrf": csrf, "vai_tro": str(role.id)})  # twice
        assert response.headers["Location"] == f"/web/phuong/{tdp03.ward_id}/can-bo?kq=da-go"
        assert await snapshot(world.app) == before
        assert role.id not in [r.id for r in await rows(world.app, Role)]
        told = [o for o in await rows(world.app, Outbox) if o.kind == "role"]
        assert [o.dedupe_key for o in told] == [f"role-removed:{role.id}"]  # the chat's message, once
        revoked = [a for a in await rows(world.app, AuditLog) if a.action == "admin.revoke"]
        assert [(a.actor, a.target, a.details) for a in revoked] == [
            (f"person:{hà.id}", f"group:{tdp03.id}", {"person": ba.id, "told": True})]
        status, _ = await leader.get(f"{world.base}/web/to/{tdp03.id}")
        assert status == 403  # the roles are read again: no role any more
    finally:
        await leader.close()


async def test_the_audit_log_is_the_wards_filtered_and_paged(any_world: World, browser: Browser,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             clock: ManualClock) -> None:
    world = any_world
    tdp03 = await group(world.app, "DEMO-TDP03")
    hà = await person_of(world.app, world.admin)
    now = world.app.clock.now()
    async with world.app.sessions() as session, session.begin():  # another ward, and something done there
        other, _ = await upsert_ward(session, code="KHAC", name="Phường Khác")
        far, _ = await upsert_group(session, ward_id=other.id, code="KHAC-01", name="Tổ Khác", kind=None,
                                    target_percent=None)
        audit.record(session, actor="cli", action="admin.invite", target=f"group:{far.id}", now=now)
        audit.record(session, actor="cli", action="admin.invite", target=f"group:{tdp03.id}", now=now)
    clock.advance(days=2)
    csrf = await signed_in(world, world.admin, browser)
    assert csrf
    all_rows = await rows(world.app, AuditLog)
    far_row = next(a for a in all_rows if a.target == f"group:{far.id}")
    near_row = next(a for a in all_rows if a.target == f"group:{tdp03.id}" and a.actor == "cli")

    status, page = await browser.get(world.base + "/web/nhat-ky")
    assert status == 200
    shown = [int(i) for i in ENTRIES.findall(page)]
    assert shown == sorted(shown, reverse=True) and near_row.id in shown and far_row.id not in shown
    assert f"Hà (person:{hà.id})" in page  # staff by name, as hocvuso audit prints them

    status, page = await browser.get(world.base + "/web/nhat-ky?hanh_dong=admin.invite")
    assert [int(i) for i in ENTRIES.findall(page)] == [near_row.id]
    status, page = await browser.get(f"{world.base}/web/nhat-ky?nguoi={hà.id}")
    assert {a.actor for a in all_rows if a.id in map(int, ENTRIES.findall(page))} == {f"person:{hà.id}"}
    local_day = now.astimezone(world.app.settings.zone).date()
    status, page = await browser.get(f"{world.base}/web/nhat-ky?tu={local_day}&den={local_day}")
    assert near_row.id in map(int, ENTRIES.findall(page))
    later = world.app.clock.now().astimezone(world.app.settings.zone).date()
    status, page = await browser.get(f"{world.base}/web/nhat-ky?tu={later}")
    assert near_row.id not in map(int, ENTRIES.findall(page))  # a day before the range

    monkeypatch.setattr(staff, "PAGE", 2)  # pages of two rows: keyset on the id
    seen, url = [], world.base + "/web/nhat-ky"
    while url:
        status, page = await browser.get(url)
        seen += [int(i) for i in ENTRIES.findall(page)]
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        url = world.base + found.group(1).replace("&amp;", "&") if found else ""
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert near_row.id in seen and far_row.id not in seen

    # A city admin sees every ward's rows, or one ward's.
    async with world.app.sessions() as session, session.begin():
        await add_admin(session, channel=world.resident.channel, external_id=world.resident.user, ward_code=None,
                        now=world.app.clock.now(), city=True)
    city = Browser()
    try:
        await signed_in(world, world.resident, city)
        status, page = await city.get(world.base + "/web/nhat-ky?hanh_dong=admin.invite")
        assert sorted(int(i) for i in ENTRIES.findall(page)) == sorted([far_row.id, near_row.id])
        status, page = await city.get(f"{world.base}/web/nhat-ky?hanh_dong=admin.invite&phuong={other.id}")
        assert [int(i) for i in ENTRIES.findall(page)] == [far_row.id]
    finally:
        await city.close()
    status, _ = await browser.get(f"{world.base}/web/nhat-ky?phuong={other.id}")  # not Hà's ward
    assert status == 403


async def test_a_wards_log_leaves_out_what_its_staff_did_in_another_ward(any_world: World, browser: Browser) -> None:
    """Ba leads a group here and administers another ward: what Ba did there is that ward's."""
    world = any_world
    ba = await person_of(world.app, world.leader)
    now = world.app.clock.now()
    async with world.app.sessions() as session, session.begin():
        other, _ = await upsert_ward(session, code="KHAC", name="Phường Khác")
        far, _ = await upsert_group(session, ward_id=other.id, code="KHAC-01", name="Tổ Khác", kind=None,
                                    target_percent=None)
        session.add(Role(person_id=ba.id, kind=RoleKind.ADMIN, ward_id=other.id, granted_by="cli", granted_at=now))
        far_broadcast = await create_broadcast(session, author=f"person:{ba.id}", text="Tin", now=now,
                                               audience={"kind": "all", "ward": "KHAC"}, scheduled_at=now)
        there = [
            audit.record(session, actor=f"person:{ba.id}", action="admin.report", target=f"ward:{other.id}", now=now),
            audit.record(session, actor=f"person:{ba.id}", action="admin.invite_revoke", target=f"group:{far.id}",
                         now=now),
            audit.record(session, actor=f"person:{ba.id}", action="broadcast.create",
                         target=f"broadcast:{far_broadcast.id}", now=now),
        ]
        here = [audit.record(session, actor=f"person:{ba.id}", action="web.signout", target="web", now=now)]
    await signed_in(world, world.admin, browser)
    status, page = await browser.get(world.base + "/web/nhat-ky")
    assert status == 200
    shown = {int(i) for i in ENTRIES.findall(page)}
    assert not shown & {e.id for e in there} and {e.id for e in here} <= shown
    for action in ("admin.report", "admin.invite_revoke", "broadcast.create"):  # nor in the filter's choices
        assert f'<option value="{action}"' not in page
    assert '<option value="web.signout"' in page
    ba_browser = Browser()  # the other ward's admin sees them
    try:
        await signed_in(world, world.leader, ba_browser)
        status, page = await ba_browser.get(f"{world.base}/web/phuong/{other.id}/can-bo")
        assert status == 200
        status, page = await ba_browser.get(f"{world.base}/web/nhat-ky?phuong={other.id}")
        assert {e.id for e in there} <= {int(i) for i in ENTRIES.findall(page)}
    finally:
        await ba_browser.close()


async def test_a_leader_removed_by_three_submits_at_once_is_removed_and_audited_once(
        any_world: World, browser: Browser) -> None:
    world = any_world
    tdp03 = await group(world.app, "DEMO-TDP03")
    [role] = [r for r in await rows(world.app, Role) if r.kind == RoleKind.LEADER]
    csrf = await signed_in(world, world.admin, browser)
    url = f"{world.base}/web/phuong/{tdp03.ward_id}/can-bo/go-vai-tro"
    answers = await asyncio.gather(*(browser.post(url, {"csrf": csrf, "vai_tro": str(role.id)}) for _ in range(3)))
    assert sorted(a.headers["Location"].rsplit("=", 1)[1] for a in answers) == ["da-go", "da-go", "go"]
    assert len([a for a in await rows(world.app, AuditLog) if a.action == "admin.revoke"]) == 1
    assert len([o for o in await rows(world.app, Outbox) if o.kind == "role"]) == 1


async def test_a_role_removed_between_the_read_and_the_delete_is_not_audited(
        world: World, browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the race above does on PostgreSQL, made certain: the role is read, then another
    request's DELETE wins; this one's DELETE removes nothing and so tells and audits nothing."""
    tdp03 = await group(world.app, "DEMO-TDP03")
    [role] = [r for r in await rows(world.app, Role) if r.kind == RoleKind.LEADER]
    csrf = await signed_in(world, world.admin, browser)
    real = staff.revoke

    async def removed_first(session: Any, *, role_id: int) -> bool:
        await real(session, role_id=role_id)  # the other request's
        return await real(session, role_id=role_id)

    monkeypatch.setattr(staff, "revoke", removed_first)
    before = await snapshot(world.app)
    response = await browser.post(f"{world.base}/web/phuong/{tdp03.ward_id}/can-bo/go-vai-tro",
                                  {"csrf": csrf, "vai_tro": str(role.id)})
    assert response.headers["Location"] == f"/web/phuong/{tdp03.ward_id}/can-bo?kq=da-go"
    after = await snapshot(world.app)
    assert after["AuditLog"] == before["AuditLog"] and after["Outbox"] == before["Outbox"]


async def test_an_invitation_ended_a_moment_ago_does_not_stop_a_new_one(world: World, browser: Browser) -> None:
    tdp05 = await group(world.app, "DEMO-TDP05")
    csrf = await signed_in(world, world.admin, browser)
    base = f"{world.base}/web/phuong/{tdp05.ward_id}/can-bo"
    first = (await browser.post(base + "/moi", {"csrf": csrf, "to": str(tdp05.id)})).headers["Location"]
    ended = await browser.post(base + "/huy-loi-moi", {"csrf": csrf, "loi_moi": first.rsplit("/", 1)[1]})
    assert ended.headers["Location"].endswith("?kq=huy")
    second = (await browser.post(base + "/moi", {"csrf": csrf, "to": str(tdp05.id)})).headers["Location"]
    assert second != first
    new = next(i for i in await rows(world.app, Invite) if f"/web/loi-moi/{i.id}" == second)
    zalo = invite_link(new.code, telegram_username=None, channel="zalo")
    status, page = await browser.get(world.base + second)
    assert status == 200 and zalo in page  # usable: its link is shown
    dung = await person_of(world.app, Chat(world.app.conversation, user="1006", name="Dũng"))
    async with world.app.sessions() as session, session.begin():
        accepted = await consume_invite(session, code=new.code, person_id=dung.id, now=world.app.clock.now())
    assert not isinstance(accepted, InviteProblem)
