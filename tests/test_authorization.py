"""The authorisation matrix: a resident, the leader of group A, the leader of group B, the
ward's admin and the admin of another ward × every leader and admin command and action —
including forged button data and expired or reused invitations.

Whoever may not take an action gets the kind refusal (or, for data nobody could have been
shown, the "old button" answer) and **nothing changes in the database**; whoever may, gets
the feature and an audit entry where the action is audited. Roles are read from the
database when each action runs: a button kept from before a role was revoked is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.app import App
from bot.broadcasting import schedule
from storage.groups import upsert_group, upsert_ward
from storage.models import AuditLog, GroupKind, HelpRequest, Role, RoleKind
from storage.roles import create_invite, grant
from tests.staff import group, make_leader, person_of, rows, snapshot
from tests.staff import ward as ward_of
from tests.support import Chat, ManualClock, join

REFUSED = "chỉ dành cho tổ trưởng hoặc cán bộ phường"
STALE = "Nút này đã cũ"
PERSONAS = ("resident", "leader_a", "leader_b", "admin", "other_admin")
LEADER_A = {"leader_a"}
ADMIN = {"admin"}


@dataclass
class World:
    chats: dict[str, Chat]
    ids: dict[str, int]


async def _world(app: App, clock: ManualClock) -> World:
    """Group A = Tổ dân phố 3, B = Tổ dân phố 5 (ward DEMO); ward KHAC with its own group."""
    chats = {}
    for persona, user, code in (("resident", "100", "DEMO-TDP03"), ("leader_a", "200", "DEMO-TDP03"),
                                ("leader_b", "300", "DEMO-TDP05"), ("admin", "400", "DEMO-TDP01"),
                                ("other_admin", "500", None), ("hoa", "600", "DEMO-TDP05"),
                                ("helper", "700", "DEMO-TDP01"), ("idle_a", "800", "DEMO-TDP03"),
                                ("idle_b", "900", "DEMO-TDP05")):
        chats[persona] = Chat(app.conversation, user=user, name=persona.replace("_", " ").title())
        await join(chats[persona], group_code=code)
    clock.advance(days=4)  # nobody has learned since joining: residents are behind, a nudge is offered
    now = clock.now()
    async with app.sessions() as session, session.begin():
        other, _ = await upsert_ward(session, code="KHAC", name="Xã Khác")
        other_group, _ = await upsert_group(session, ward_id=other.id, code="KHAC-T1", name="Thôn 1",
                                            kind=GroupKind.THON, target_percent=70)
    await make_leader(app, chats["leader_a"], "DEMO-TDP03")
    await make_leader(app, chats["leader_b"], "DEMO-TDP05")
    await make_leader(app, chats["helper"], "DEMO-TDP01")
    async with app.sessions() as session, session.begin():
        admin = await person_of(app, chats["admin"])
        other_admin = await person_of(app, chats["other_admin"])
        demo = await ward_of(app)
        await grant(session, person_id=admin.id, kind=RoleKind.ADMIN, ward_id=demo.id, granted_by="cli", now=now)
        await grant(session, person_id=other_admin.id, kind=RoleKind.ADMIN, ward_id=other.id,
                    granted_by="cli", now=now)
        a = await group(app, "DEMO-TDP03")
        expired = await create_invite(session, group_id=a.id, created_by=admin.id, now=now - timedelta(days=8))
        used = await create_invite(session, group_id=a.id, created_by=admin.id, now=now)
        used.used_by, used.used_at = admin.id, now
        session.add(used)
        from bot.app import quiet_hours

        quiet = quiet_hours(app.settings)
        mine = await schedule(session, author=f"person:{admin.id}", text="Họp tổ", audience_text="all",
                              lesson_ids={l.id for l in app.lessons}, now=now, quiet=quiet,
                              at=now + timedelta(days=1), ward="DEMO", catalog=app.catalog)
        cli = await schedule(session, author="cli", text="Tin CLI", audience_text="all",
                             lesson_ids={l.id for l in app.lessons}, now=now, quiet=quiet,
                             at=now + timedelta(days=1), catalog=app.catalog)
        codes = {"expired": expired.code, "used": used.code}
        broadcasts = {"mine": mine.broadcast.id, "cli": cli.broadcast.id}
    await chats["resident"].send("/hotro")
    await chats["resident"].send("Tôi cần giúp cài VNeID")
    [request] = await rows(app, HelpRequest)
    resident, hoa = await person_of(app, chats["resident"]), await person_of(app, chats["hoa"])
    [role_a] = [r for r in await rows(app, Role) if r.person_id == (await person_of(app, chats["leader_a"])).id]
    ids = {"A": a.id, "B": (await group(app, "DEMO-TDP05")).id, "W": demo.id, "R": resident.id, "hoa": hoa.id,
           "other_group": other_group.id, "req": request.id, "role_a": role_a.id, **broadcasts}
    return World(chats, {**ids, **codes})


def _matrix(i: dict) -> list[tuple[str, set[str], str | None] | tuple[str, set[str], str | None, str]]:
    """(command or action, who may take it, the audit action it writes when allowed[, what
    the others are told: the refusal unless said otherwise])."""
    A, W = i["A"], i["W"]
    return [
        # -- leader: the group's dashboard, members, nudge, assisted completion, help requests
        ("/nhom", {"leader_a", "leader_b"}, "leader.view"),
        ("lead", {"leader_a", "leader_b"}, "leader.view"),
        (f"lead:g:{A}", LEADER_A, "leader.view"),
        (f"lead:m:{A}:0", LEADER_A, "leader.members"),
        (f"lead:n:{A}", LEADER_A, "leader.nudge"),
        (f"lead:as:{A}:0", LEADER_A, None),
        (f"lead:an:{A}", LEADER_A, None),
        (f"lead:al:{A}:{i['R']}:0", LEADER_A, None),
        (f"lead:ac:{A}:{i['R']}:1", LEADER_A, "leader.assist"),
        # one member's page, nudging one person, undoing an assisted completion (only the leader who
        # recorded it: the others have none to undo here)
        (f"lead:p:{A}:{i['R']}", LEADER_A, "leader.member"),
        (f"lead:np:{A}:{i['R']}", LEADER_A, "leader.nudge_one"),
        (f"lead:ud:{A}:{i['R']}:1", LEADER_A, None),
        (f"lead:ux:{A}:{i['R']}:1", LEADER_A, "leader.undo_assist"),
        (f"lead:p:{A}:{i['hoa']}", set(), None),
        (f"lead:np:{i['B']}:{i['R']}", set(), None),
        (f"hotro:list:{A}", LEADER_A, "help.list"),
        (f"hotro:rep:{i['req']}", {"leader_a", "admin"}, None),  # the ward's admins are the fallback
        # forged: a resident of another group, a group that does not exist, a lesson out of range
        (f"lead:al:{A}:{i['hoa']}:0", set(), None),
        (f"lead:ac:{A}:{i['hoa']}:1", set(), None),
        ("lead:g:999999", set(), None),
        (f"lead:n:{i['B']}", {"leader_b"}, "leader.nudge"),
        # -- admin: menu, overview, ranking, reports, links, invitations, broadcasts
        ("/quantri", {"admin", "other_admin"}, None),
        ("adm", {"admin", "other_admin"}, None),
        (f"adm:w:{W}", ADMIN, None),
        (f"adm:ov:{W}", ADMIN, "admin.overview"),
        (f"adm:rk:{W}", ADMIN, "admin.ranking"),
        (f"adm:rp:{W}", ADMIN, None),
        (f"adm:rp:{W}:month", ADMIN, "admin.report"),
        (f"adm:jl:{W}:0", ADMIN, None),
        (f"adm:jq:{A}", ADMIN, "admin.join_link"),
        (f"adm:jq:{i['other_group']}", {"other_admin"}, "admin.join_link"),
        (f"adm:il:{W}:0", ADMIN, None),
        (f"adm:iv:{A}", ADMIN, "admin.leaders"),
        (f"adm:ic:{A}", ADMIN, "admin.invite"),
        (f"adm:bl:{W}", ADMIN, "admin.broadcasts"),
        (f"adm:br:{i['mine']}", ADMIN, "admin.broadcast_report"),
        (f"adm:bx:{i['mine']}", ADMIN, None),
        (f"adm:br:{i['cli']}", set(), None),  # the CLI's broadcast belongs to no ward
        (f"bc:new:{W}", ADMIN, None),
        (f"adm:rv:{i['role_a']}", ADMIN, None),
        # any group of the ward as its leader sees it (read-only, plus the nudge), the ward's lists
        (f"adm:gl:{W}:0", ADMIN, None),
        (f"adm:g:{A}", ADMIN, "admin.group"),
        (f"adm:n:{A}", ADMIN, "admin.nudge"),
        (f"adm:g:{i['other_group']}", {"other_admin"}, "admin.group"),
        (f"adm:nl:{W}", ADMIN, "admin.leaderless"),
        (f"adm:hq:{W}", ADMIN, "admin.questions"),
        (f"adm:bk:{W}", ADMIN, "admin.blocked"),
        # forged: composer steps with no draft, a ward that does not exist
        ("bc:ok", set(), None, STALE),
        ("bc:at:now", set(), None, STALE),
        (f"bc:t:{A}", set(), None, STALE),
        (f"adm:w:{W}:9", set(), None, STALE),
        ("adm:ov:999999", set(), None),
        # invitations that cannot be used
        (f"/start ld_{i['expired']}", set(), None, "Link mời này đã hết hạn"),
        (f"/start ld_{i['used']}", set(), None, "Link mời này đã được dùng rồi"),
        ("/start ld_khongcoma", set(), None, "Link mời này không đúng"),
        # last: the changes that change who may do what
        (f"adm:by:{i['mine']}", ADMIN, "broadcast.cancel"),
        (f"adm:ry:{i['role_a']}", ADMIN, "admin.revoke"),
    ]


def _via(what: str) -> str | None:
    """For a step-bound action, the view that offers it (a resident reaches a confirmation only
    through its question); None for free actions."""
    prefix, _, rest = what.partition(":")
    verb, _, tail = rest.partition(":")
    offered_by = {("lead", "n"): "g", ("adm", "ic"): "iv", ("adm", "by"): "bx", ("adm", "ry"): "rv",
                  ("lead", "np"): "p", ("lead", "ux"): "ud", ("adm", "n"): "g"}
    view = offered_by.get((prefix, verb))
    return f"{prefix}:{view}:{tail}" if view else None


async def _do(chat: Chat, what: str) -> str:
    replies = await (chat.send(what) if what.startswith("/") else chat.action(what))
    return chat.texts(replies)


@pytest.mark.parametrize("persona", PERSONAS)
async def test_every_leader_and_admin_action_is_authorised_when_it_runs(ward: App, clock: ManualClock,
                                                                        persona: str) -> None:
    world = await _world(ward, clock)
    chat = world.chats[persona]
    me = await person_of(ward, chat)
    for what, allowed, audited, *told in _matrix(world.ids):
        before = await snapshot(ward)
        via = _via(what)
        via_reply = await _do(chat, via) if via else ""
        reply = await _do(chat, what)
        if persona in allowed:
            assert REFUSED not in reply and STALE not in reply, (persona, what, reply)
            if audited:
                entries = [a for a in await rows(ward, AuditLog) if a.actor == f"person:{me.id}"]
                assert entries and entries[-1].action == audited, (persona, what)
        else:
            expected = told[0] if told else REFUSED
            # Refused when pressed; or, when its view was refused, never offered: an old button.
            assert expected in reply or (REFUSED in via_reply and STALE in reply), (persona, what, reply)
            assert await snapshot(ward) == before, (persona, what)
        if what == "/nhom" and persona in allowed:  # each leader sees exactly their own group
            mine, other = ("Tổ dân phố 3", "Tổ dân phố 5") if persona == "leader_a" else ("Tổ dân phố 5", "Tổ dân phố 3")
            assert mine in reply and other not in reply


async def test_a_button_kept_after_the_role_was_revoked_is_refused(ward: App, clock: ManualClock) -> None:
    world = await _world(ward, clock)
    leader = world.chats["leader_a"]
    await leader.send("/nhom")
    nudge = leader.option("Nhắc").action if any("Nhắc" in o.label for o in leader.menu.options) else None
    admin = world.chats["admin"]
    await admin.action(f"adm:rv:{world.ids['role_a']}")
    await admin.press("Bỏ quyền")
    before = await snapshot(ward)
    # The nudge button first, as the leader still sees it on the dashboard.
    for what in (nudge or f"lead:n:{world.ids['A']}", "/nhom", f"lead:g:{world.ids['A']}", f"lead:as:{world.ids['A']}:0"):
        assert REFUSED in await _do(leader, what)
    assert await snapshot(ward) == before
    assert "Tổ của tôi" not in [o.label for o in leader.menu.options]


async def test_only_roles_see_their_menu_entries_and_help(ward: App, clock: ManualClock) -> None:
    world = await _world(ward, clock)
    labels = {}
    for persona in ("resident", "leader_a", "admin"):
        chat = world.chats[persona]
        await chat.send("/menu")
        labels[persona] = [o.label for o in chat.menu.options]
        await chat.send("/trogiup")
        labels[persona + "_help"] = chat.last_text
    assert "👥 Tổ của tôi" not in labels["resident"] and "🏛 Quản trị phường" not in labels["resident"]
    assert "👥 Tổ của tôi" in labels["leader_a"] and "🏛 Quản trị phường" not in labels["leader_a"]
    assert "🏛 Quản trị phường" in labels["admin"] and "👥 Tổ của tôi" not in labels["admin"]
    assert "/nhom" not in labels["resident_help"] and "/quantri" not in labels["resident_help"]
    assert "/nhom" in labels["leader_a_help"] and "/quantri" in labels["admin_help"]
    assert "/hotro" in labels["resident_help"]
