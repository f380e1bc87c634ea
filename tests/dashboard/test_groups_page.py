"""The groups pages over HTTP against the real app (``tests.dashboard.conftest``'s ward): the
thi đua table sorted on the server, a group's page with who is behind, the nudge (one and
all), assisted completions recorded and undone — each action the chat's function, authorised
from the database when it runs, CSRF-checked, and a second submit changing nothing. Those
that depend on the database run on SQLite and PostgreSQL (``any_world``)."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from bot.dashboard.groups import COLUMNS
from bot.overview import live_stats
from storage.models import AuditLog, LessonProgress, Outbox
from storage.stats import ranking
from tests.dashboard.conftest import World
from tests.dashboard.test_signin import Browser, browser, signed_in  # noqa: F401 (a fixture)
from tests.staff import group, make_leader, person_of, rows, snapshot
from tests.support import Chat, ManualClock

GROUP_ROWS = re.compile(r'<tr data-group="(\d+)">')
SORTED = re.compile(r'<th scope="col"[^>]*aria-sort="(\w+)" data-column="([\w-]+)"')


async def _stats(world: World) -> list:
    async with world.app.sessions() as session:
        ward_groups = await live_stats(session, lessons=world.app.lessons, zone=world.app.settings.zone,
                                       now=world.app.clock.now(), ward_id=(await group(world.app, "DEMO-TDP01")).ward_id)
    return ward_groups


async def test_the_thi_dua_table_is_the_chats_ranking_and_sorts_by_every_column(world: World, browser: Browser) -> None:
    await signed_in(world, world.admin, browser)
    stats = await _stats(world)
    status, page = await browser.get(world.base + "/web/cac-to")
    assert status == 200
    assert GROUP_ROWS.findall(page) == [str(s.group_id) for s in ranking(stats)]  # the chat's order
    assert SORTED.findall(page) == [("ascending", "hang")]

    by_members = sorted(ranking(stats), key=lambda s: s.members, reverse=True)  # ties: the ranking's order
    status, page = await browser.get(world.base + "/web/cac-to?sap_xep=thanh-vien&chieu=desc")
    assert GROUP_ROWS.findall(page) == [str(s.group_id) for s in by_members]
    assert SORTED.findall(page) == [("descending", "thanh-vien")]
    # The header links: the sorted column flips, the others start in their own direction.
    assert 'href="/web/cac-to?sap_xep=thanh-vien&amp;chieu=asc"' in page
    assert 'href="/web/cac-to?sap_xep=ten&amp;chieu=asc"' in page

    status, page = await browser.get(world.base + "/web/cac-to?sap_xep=ten&chieu=desc")
    assert GROUP_ROWS.findall(page) == [str(s.group_id) for s in sorted(stats, key=lambda s: s.name.casefold(),
                                                                          reverse=True)]
    for column in COLUMNS:
        for direction in ("asc", "desc"):
            status, page = await browser.get(f"{world.base}/web/cac-to?sap_xep={column.key}&chieu={direction}")
            assert status == 200 and sorted(GROUP_ROWS.findall(page)) == sorted(str(s.group_id) for s in stats)
            assert SORTED.findall(page) == [("ascending" if direction == "asc" else "descending", column.key)]
    status, page = await browser.get(world.base + "/web/cac-to?sap_xep=khong-co&chieu=len")  # unknown: the ranking
    assert status == 200 and GROUP_ROWS.findall(page) == [str(s.group_id) for s in ranking(stats)]


async def test_a_leader_ranks_only_their_groups(world: World, browser: Browser) -> None:
    await signed_in(world, world.leader, browser)
    tdp03 = await group(world.app, "DEMO-TDP03")
    status, page = await browser.get(world.base + "/web/cac-to")
    assert status == 200 and GROUP_ROWS.findall(page) == [str(tdp03.id)]
    status, _ = await browser.get(f"{world.base}/web/phuong/{tdp03.ward_id}/cac-to")
    assert status == 403


async def _nudge_rows(world: World) -> list[Outbox]:
    return [r for r in await rows(world.app, Outbox) if r.kind == "nudge"]


async def test_nudge_all_then_one_each_once_as_the_chat_does(any_world: World, browser: Browser,
                                                              clock: ManualClock) -> None:
    world = any_world
    clock.advance(days=4)  # Bình and Chi have been idle for 4 days; Lan finished
    csrf = await signed_in(world, world.leader, browser)
    tdp03 = await group(world.app, "DEMO-TDP03")
    status, page = await browser.get(f"{world.base}/web/to/{tdp03.id}")
    assert status == 200 and '<span data-figure="behind">2</span>' in page
    url = f"{world.base}/web/to/{tdp03.id}/nhac"

    response = await browser.post(url, {"csrf": csrf})
    assert response.status == 303 and response.headers["Location"] == f"/web/to/{tdp03.id}?kq=nhac&gui=2&gan=0&khong=0"
    nudged = await _nudge_rows(world)
    bình, chi = [await person_of(world.app, Chat(world.app.conversation, user=u, name=n))
                 for u, n in (("1004", "Bình"), ("1005", "Chi"))]
    ba = await person_of(world.app, world.leader)
    assert sorted(r.dedupe_key for r in nudged) == sorted(f"nudge:{p.id}:2026-11-27" for p in (bình, chi))
    assert {r.about_person_id for r in nudged} == {ba.id}  # the message names the leader who sent it

    before = await snapshot(world.app)
    response = await browser.post(url, {"csrf": csrf})  # pressed twice: nobody is nudged again
    assert response.headers["Location"] == f"/web/to/{tdp03.id}?kq=nhac&gui=0&gan=2&khong=0"
    after = await snapshot(world.app)
    assert after["Outbox"] == before["Outbox"]
    audits = [a for a in await rows(world.app, AuditLog) if a.action == "leader.nudge"]
    assert [(a.actor, a.target, a.details) for a in audits] == [
        (f"person:{ba.id}", f"group:{tdp03.id}", {"queued": 2, "recent": 0, "unreachable": 0}),
        (f"person:{ba.id}", f"group:{tdp03.id}", {"queued": 0, "recent": 2, "unreachable": 0}),
    ]
    status, page = await browser.get(world.base + response.headers["Location"])
    assert "Đã xếp 0 lời nhắc vào hàng gửi qua bot. 2 người đã được nhắc trong 3 ngày qua" in page

    # One member, the next week: the same function, a nudge_one audit row, once.
    clock.advance(days=4)
    csrf = await signed_in(world, world.leader, browser)  # 8 idle hours ended the session
    for _ in range(2):
        response = await browser.post(url, {"csrf": csrf, "nguoi": str(chi.id)})
        assert response.status == 303
    assert [r.dedupe_key for r in await _nudge_rows(world)][-1] == f"nudge:{chi.id}:2026-12-01"
    assert len(await _nudge_rows(world)) == 3
    one = [a for a in await rows(world.app, AuditLog) if a.action == "leader.nudge_one"]
    assert [(a.target, a.details["queued"]) for a in one] == [(f"person:{chi.id}", 1), (f"person:{chi.id}", 0)]


async def test_actions_without_the_csrf_token_or_by_another_groups_leader_change_nothing(
        any_world: World, browser: Browser, clock: ManualClock) -> None:
    world = any_world
    clock.advance(days=4)
    tdp03 = await group(world.app, "DEMO-TDP03")
    chi = await person_of(world.app, Chat(world.app.conversation, user="1005", name="Chi"))
    dung = Chat(world.app.conversation, user="1006", name="Dũng")
    await make_leader(world.app, dung, "DEMO-TDP05")
    csrf = await signed_in(world, world.leader, browser)
    other = Browser()
    other_csrf = await signed_in(world, dung, other)
    before = await snapshot(world.app)  # signed in (audited): from here on, nothing may change

    lesson = list(world.app.lessons)[0].id
    for path, form in (("nhac", {}), ("nhac", {"nguoi": str(chi.id)}),
                       ("hoc-truc-tiep", {"nguoi": str(chi.id), "bai": lesson}),
                       ("hoan-tac", {"nguoi": str(chi.id), "bai": lesson})):
        response = await browser.post(f"{world.base}/web/to/{tdp03.id}/{path}", form)  # no token
        assert response.status == 403, path
        response = await browser.post(f"{world.base}/web/to/{tdp03.id}/{path}", {**form, "csrf": "0" * 64})
        assert response.status == 403, path
    assert await snapshot(world.app) == before

    try:
        for path, form in (("nhac", {}), ("nhac", {"nguoi": str(chi.id)}),
                           ("hoc-truc-tiep", {"nguoi": str(chi.id), "bai": lesson})):
            response = await other.post(f"{world.base}/web/to/{tdp03.id}/{path}", {**form, "csrf": other_csrf})
            assert response.status == 403, path
        status, _ = await other.get(f"{world.base}/web/to/{tdp03.id}")
        assert status == 403
    finally:
        await other.close()
    assert await snapshot(world.app) == before
    # A member of another group cannot be reached through this one's page either.
    dung_person = await person_of(world.app, dung)
    response = await browser.post(f"{world.base}/web/to/{tdp03.id}/hoc-truc-tiep",
                                  {"csrf": csrf, "nguoi": str(dung_person.id), "bai": lesson})
    assert response.status == 403
    assert await snapshot(world.app) == before


async def test_assisted_completions_recorded_and_undone_once(any_world: World, browser: Browser) -> None:
    world = any_world
    tdp03 = await group(world.app, "DEMO-TDP03")
    chi = await person_of(world.app, Chat(world.app.conversation, user="1005", name="Chi"))
    lan = await person_of(world.app, world.resident)
    ba = await person_of(world.app, world.leader)
    first = list(world.app.lessons)[0]
    csrf = await signed_in(world, world.leader, browser)
    record = f"{world.base}/web/to/{tdp03.id}/hoc-truc-tiep"
    undo = f"{world.base}/web/to/{tdp03.id}/hoan-tac"

    response = await browser.post(record, {"csrf": csrf, "nguoi": str(chi.id), "bai": first.id})
    assert response.headers["Location"] == f"/web/to/{tdp03.id}?kq=da-ghi"
    response = await browser.post(record, {"csrf": csrf, "nguoi": str(chi.id), "bai": first.id})  # twice
    assert response.headers["Location"] == f"/web/to/{tdp03.id}?kq=da-co"
    async with world.app.sessions() as session:
        [row] = (await session.exec(select(LessonProgress).where(LessonProgress.person_id == chi.id))).all()
    assert (row.status, row.assisted_by, row.lesson_id) == ("completed", ba.id, first.id)
    assists = [a for a in await rows(world.app, AuditLog) if a.action == "leader.assist"]
    assert [(a.actor, a.target, a.details) for a in assists] == [
        (f"person:{ba.id}", f"person:{chi.id}", {"group": tdp03.id, "lesson": first.id, "before": None})]
    status, page = await browser.get(f"{world.base}/web/to/{tdp03.id}?kq=da-ghi")
    assert "Đã ghi nhận bài học xong trực tiếp với tổ trưởng." in page
    assert f'<tr data-person="{chi.id}">' in page and "✓ trực tiếp" in page

    # A self completion is never undone (Lan finished alone), nor recorded over.
    before = await snapshot(world.app)
    response = await browser.post(undo, {"csrf": csrf, "nguoi": str(lan.id), "bai": first.id})
    assert response.status == 403
    response = await browser.post(record, {"csrf": csrf, "nguoi": str(lan.id), "bai": first.id})
    assert response.headers["Location"] == f"/web/to/{tdp03.id}?kq=tu-hoc"
    assert await snapshot(world.app) == before

    response = await browser.post(undo, {"csrf": csrf, "nguoi": str(chi.id), "bai": first.id})
    assert response.headers["Location"] == f"/web/to/{tdp03.id}?kq=hoan-tac"
    assert [r for r in await rows(world.app, LessonProgress) if r.person_id == chi.id] == []  # she had none before
    before = await snapshot(world.app)
    response = await browser.post(undo, {"csrf": csrf, "nguoi": str(chi.id), "bai": first.id})  # twice
    assert response.headers["Location"] == f"/web/to/{tdp03.id}?kq=khong-con"
    assert await snapshot(world.app) == before
    undone = [a for a in await rows(world.app, AuditLog) if a.action == "leader.undo_assist"]
    assert [(a.actor, a.details) for a in undone] == [
        (f"person:{ba.id}", {"group": tdp03.id, "lesson": first.id, "recorded_by": ba.id, "outcome": "deleted"})]


async def test_the_wards_admin_undoes_a_leaders_record_and_a_removed_leader_cannot(world: World,
                                                                                  browser: Browser) -> None:
    tdp03 = await group(world.app, "DEMO-TDP03")
    chi = await person_of(world.app, Chat(world.app.conversation, user="1005", name="Chi"))
    first = list(world.app.lessons)[0]
    csrf = await signed_in(world, world.leader, browser)
    await browser.post(f"{world.base}/web/to/{tdp03.id}/hoc-truc-tiep", {"csrf": csrf, "nguoi": str(chi.id),
                                                                        "bai": first.id})
    # The leader's role is removed: the next click is refused (the session holds no role any more).
    from storage.models import Role  # noqa: PLC0415
    async with world.app.sessions() as session, session.begin():
        ba = await person_of(world.app, world.leader)
        for role in (await session.exec(select(Role).where(Role.person_id == ba.id))).all():
            await session.delete(role)
    before = await snapshot(world.app)
    response = await browser.post(f"{world.base}/web/to/{tdp03.id}/hoan-tac", {"csrf": csrf, "nguoi": str(chi.id),
                                                                               "bai": first.id})
    assert response.status == 403 and await snapshot(world.app) == before

    admin = Browser()
    try:
        admin_csrf = await signed_in(world, world.admin, admin)
        status, page = await admin.get(f"{world.base}/web/to/{tdp03.id}")
        assert status == 200 and "Hoàn tác" in page
        response = await admin.post(f"{world.base}/web/to/{tdp03.id}/hoan-tac",
                                    {"csrf": admin_csrf, "nguoi": str(chi.id), "bai": first.id})
        assert response.headers["Location"] == f"/web/to/{tdp03.id}?kq=hoan-tac"
    finally:
        await admin.close()
    hà = await person_of(world.app, world.admin)
    undone = [a for a in await rows(world.app, AuditLog) if a.action == "leader.undo_assist"]
    assert [a.actor for a in undone] == [f"person:{hà.id}"]


async def test_the_trend_chart_counts_the_weeks_completions(world: World, browser: Browser,
                                                             clock: ManualClock) -> None:
    """The seeded lessons were all passed this week (6 completions, alone); a completion
    recorded the next week lands in its own bar, as assisted."""
    await signed_in(world, world.admin, browser)
    status, page = await browser.get(world.base + "/web/")
    weeks = re.findall(r'<tr data-week="([\d-]+)"><th scope="row">[^<]+</th>\s*<td class="num">(\d+)</td>'
                       r'<td class="num">(\d+)</td><td class="num">(\d+)</td>', page)
    assert len(weeks) == 12 and weeks[-1] == ("2026-11-23", "6", "0", "6")
    assert all(w[3] == "0" for w in weeks[:-1]) and weeks[0][0] == "2026-09-07"
    assert "Tổng cộng 6 lượt; tuần này 6 lượt" in page

    clock.advance(days=7)  # the next week
    leader = Browser()
    try:
        csrf = await signed_in(world, world.leader, leader)
        tdp03 = await group(world.app, "DEMO-TDP03")
        chi = await person_of(world.app, Chat(world.app.conversation, user="1005", name="Chi"))
        await leader.post(f"{world.base}/web/to/{tdp03.id}/hoc-truc-tiep",
                          {"csrf": csrf, "nguoi": str(chi.id), "bai": list(world.app.lessons)[0].id})
        status, page = await leader.get(world.base + "/web/")  # the leader's own groups
        weeks = re.findall(r'<tr data-week="([\d-]+)"><th scope="row">[^<]+</th>\s*<td class="num">(\d+)</td>'
                           r'<td class="num">(\d+)</td>', page)
        assert weeks[-2:] == [("2026-11-23", "3", "0"), ("2026-11-30", "0", "1")]  # Lan's 2 and Bình's 1; Chi's
    finally:
        await leader.close()


@pytest.mark.parametrize("path", ["/web/cac-to", "/web/to/1"])
async def test_the_pages_need_a_session(world: World, browser: Browser, path: str) -> None:
    status, _ = await browser.get(world.base + path)
    assert status == 401
    response = await browser.post(world.base + "/web/to/1/nhac", {"csrf": "x"})
    assert response.status == 401


async def test_a_leader_records_others_lessons_not_their_own(world: World, browser: Browser) -> None:
    tdp03 = await group(world.app, "DEMO-TDP03")
    ba = await person_of(world.app, world.leader)
    csrf = await signed_in(world, world.leader, browser)
    status, page = await browser.get(f"{world.base}/web/to/{tdp03.id}")
    assert "Ghi nhận<span class=\"vh\"> Ba " not in page and "Ghi nhận<span class=\"vh\"> Chi " in page
    before = await snapshot(world.app)
    response = await browser.post(f"{world.base}/web/to/{tdp03.id}/hoc-truc-tiep",
                                  {"csrf": csrf, "nguoi": str(ba.id), "bai": list(world.app.lessons)[0].id})
    assert response.status == 403 and await snapshot(world.app) == before


async def test_a_refused_action_leaves_one_refused_row_a_minute(any_world: World, browser: Browser,
                                                                clock: ManualClock) -> None:
    """As the chat's refusals (``handlers.authz.refuse``): one ``refused`` row naming the route and
    its ids, at most one per actor a minute, and nothing else."""
    world = any_world
    tdp05 = await group(world.app, "DEMO-TDP05")
    ba = await person_of(world.app, world.leader)
    csrf = await signed_in(world, world.leader, browser)
    before = await snapshot(world.app)
    url = f"{world.base}/web/to/{tdp05.id}/nhac"
    assert (await browser.post(url, {"csrf": csrf})).status == 403
    assert (await browser.post(url, {"csrf": csrf})).status == 403  # again at once: the same event
    refused = [a for a in await rows(world.app, AuditLog) if a.action == "refused"]
    assert [(a.actor, a.target) for a in refused] == [(f"person:{ba.id}", f"POST /web/to/{tdp05.id}/nhac")]
    clock.advance(minutes=1, seconds=1)
    assert (await browser.get(f"{world.base}/web/to/{tdp05.id}"))[0] == 403  # a page of another group
    refused = [a for a in await rows(world.app, AuditLog) if a.action == "refused"]
    assert [a.target for a in refused] == [f"POST /web/to/{tdp05.id}/nhac", f"GET /web/to/{tdp05.id}"]
    assert await snapshot(world.app) == before
