"""The dashboard's staff pages (issue 13, page 6), for ward admins only (a leader gets 403):

- ``GET /web/can-bo`` (one ward) or ``/web/phuong/<ward>/can-bo``: the ward's leaders by group
  and the pending invitations with their expiry.
- ``POST /web/phuong/<ward>/can-bo/moi`` (``to``): an invitation to lead a group
  (``storage.roles.create_invite``, as the chat's "✉️ Mời tổ trưởng"; audited ``admin.invite``),
  then ``GET /web/loi-moi/<invite>``: the same Telegram link and Zalo text the chat shows.
  Sent twice within ``AGAIN_WITHIN``, the form shows the invitation it made the first time.
- ``POST …/go-vai-tro`` (``vai_tro``): remove a leader (``storage.roles.revoke`` and
  ``handlers.admin_groups.tell_role_removed``, as the chat; audited ``admin.revoke``).
- ``POST …/huy-loi-moi`` (``loi_moi``): end an unused invitation
  (``storage.roles.revoke_invite``; audited ``admin.invite_revoke``).
- ``GET /web/nhat-ky``: the audit log, newest first, ``PAGE`` rows a page (keyset: ``truoc``),
  filtered by action, actor, and a date range in the ward's time; about the ward chosen
  (``storage.audit.read_log``); a city admin may choose every ward. Names only for staff, as
  ``hocvuso audit`` prints them.

Every action asks the database, inside its transaction, whether this person administers the
ward of what it changes; a second submit finds nothing left to do and changes nothing.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from bot.dashboard.access import Viewer
from bot.dashboard.groups import Form, GroupPages, _int
from bot.links import invite_link
from storage import audit
from storage.groups import get_group, get_ward, list_groups
from storage.models import Invite, Person, Role, RoleKind, Ward
from storage.roles import (
    administers, create_invite, leader_roles, pending_invites, recent_invite, revoke, revoke_invite, roles_of,
)

if TYPE_CHECKING:
    from bot.dashboard.pages import Pages

PAGE = 50  # audit rows a page
AGAIN_WITHIN = timedelta(minutes=5)  # an invitation form sent again this soon shows the first one
OUTCOMES = {"go": "web.staff.revoked", "da-go": "web.staff.revoked_already",
            "huy": "web.staff.invite_revoked", "da-huy": "web.staff.invite_revoked_already"}


class StaffPages:
    def __init__(self, pages: Pages) -> None:
        self.p = pages
        self.d = pages.d
        self.forms = GroupPages(pages)  # its CSRF-checked POST wrapper

    def routes(self) -> list[web.RouteDef]:
        p, ward = self.p, "/web/phuong/{ward_id:[0-9]{1,9}}/can-bo"
        return [
            web.get("/web/can-bo", p.page(self.staff)),
            web.get(ward, p.page(self.ward_staff)),
            web.post(ward + "/moi", self.forms.action(self.invite)),
            web.post(ward + "/go-vai-tro", self.forms.action(self.revoke_role)),
            web.post(ward + "/huy-loi-moi", self.forms.action(self.revoke_invitation)),
            web.get("/web/loi-moi/{invite_id:[0-9]{1,9}}", p.page(self.invitation)),
            web.get("/web/nhat-ky", p.page(self.log)),
        ]

    # -- leaders and invitations ---------------------------------------------------------------

    async def staff(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        if not who.wards:
            return await self.p.refused(request, who)
        if len(who.wards) == 1:
            assert who.wards[0].id is not None
            return await self._ward(request, who, who.wards[0].id)
        return self.p.choose_ward(who, title=self.p.t("web.staff.title_wards"), section="/can-bo")

    async def ward_staff(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        ward_id = int(request.match_info["ward_id"])
        if not who.may_see_ward(ward_id):
            return await self.p.refused(request, who)
        return await self._ward(request, who, ward_id)

    async def _ward(self, request: web.Request, who: Viewer, ward_id: int) -> web.StreamResponse:
        now = self.d.clock.now()
        async with self.d.reads() as session:
            ward = await get_ward(session, ward_id=ward_id)
            if ward is None:
                return await self.p.refused(request, who)
            groups = await list_groups(session, ward_id=ward_id)
            leaders = {g.id: await leader_roles(session, group_id=g.id) for g in groups if g.id is not None}
            invites = await pending_invites(session, ward_id=ward_id, now=now)
        names = {g.id: g.name for g in groups}
        key = OUTCOMES.get(request.query.get("kq", ""))
        return self.p.render("staff.html", viewer=who, ward=ward, groups=groups, leaders=leaders,
                             invites=[(i, names.get(i.group_id, "")) for i in invites], zone=self.d.zone,
                             outcome=self.p.t(key) if key else None, several=len(who.wards) > 1,
                             title=self.p.t("web.staff.title", ward=ward.name))

    async def _admin(self, session: Any, who: Viewer, ward_id: int) -> Person | None:
        """The acting person, if they administer the ward now (asked inside the transaction)."""
        person = await session.get(Person, who.person.id)
        if person is None or person.id is None or person.deleted_at is not None:
            return None
        return person if await administers(session, person_id=person.id, ward_id=ward_id) else None

    async def invite(self, request: web.Request, who: Viewer, form: Form) -> web.StreamResponse:
        ward_id, group_id = int(request.match_info["ward_id"]), _int(form.get("to"))
        now = self.d.clock.now()
        async with self.d.writes() as session, session.begin():
            admin = await self._admin(session, who, ward_id)
            group = await get_group(session, group_id=group_id) if group_id is not None else None
            if admin is None or admin.id is None or group is None or group.id is None or group.ward_id != ward_id:
                return await self.p.refused(request, who, session=session)
            invite = await recent_invite(session, group_id=group.id, created_by=admin.id, since=now - AGAIN_WITHIN,
                                         now=now)
            if invite is None:
                invite = await create_invite(session, group_id=group.id, created_by=admin.id, now=now)
                audit.record(session, actor=f"person:{admin.id}", action="admin.invite", target=f"group:{group.id}",
                             now=now, details={"invite": invite.id})
        return web.Response(status=303, headers={"Location": f"/web/loi-moi/{invite.id}"})

    async def invitation(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        """An invitation's link, shown to an admin of its ward while it can be used."""
        invite_id = int(request.match_info["invite_id"])
        now = self.d.clock.now()
        async with self.d.reads() as session:
            invite = await session.get(Invite, invite_id)
            group = await get_group(session, group_id=invite.group_id) if invite and invite.group_id else None
        if invite is None or group is None or not who.may_see_ward(group.ward_id):
            return await self.p.refused(request, who)
        usable = invite.used_by is None and invite.expires_at is not None and invite.expires_at > now
        services = self.d.services
        username = services.bot_username(group.ward_id) if services is not None else None
        telegram = invite_link(invite.code, telegram_username=username) if usable and username else None
        zalo = invite_link(invite.code, telegram_username=None, channel="zalo") if usable else None
        return self.p.render("invitation.html", viewer=who, invite=invite, group=group, usable=usable,
                             telegram=telegram, zalo=zalo, zone=self.d.zone,
                             title=self.p.t("web.staff.title_invite", group=group.name))

    async def revoke_role(self, request: web.Request, who: Viewer, form: Form) -> web.StreamResponse:
        from handlers.admin_groups import tell_role_removed  # noqa: PLC0415 (the chat's; handlers load the engine)

        ward_id, role_id = int(request.match_info["ward_id"]), _int(form.get("vai_tro"))
        now = self.d.clock.now()
        async with self.d.writes() as session, session.begin():
            admin = await self._admin(session, who, ward_id)
            ward = await session.get(Ward, ward_id)
            if admin is None or ward is None or role_id is None:
                return await self.p.refused(request, who, session=session)
            role = await session.get(Role, role_id)
            if role is None:
                return _back(ward_id, "da-go")  # removed already (a second submit): nothing to do
            group = await get_group(session, group_id=role.group_id) if role.group_id else None
            if role.kind != RoleKind.LEADER or group is None or group.ward_id != ward_id:
                return await self.p.refused(request, who, session=session)
            if not await revoke(session, role_id=role_id):
                return _back(ward_id, "da-go")  # a second submit at once removed it first (PostgreSQL)
            told = await tell_role_removed(session, role=role, group=group, ward=ward, catalog=self.d.catalog, now=now)
            audit.record(session, actor=f"person:{admin.id}", action="admin.revoke", target=f"group:{group.id}",
                         now=now, details={"person": role.person_id, "told": told})
        return _back(ward_id, "go")

    async def revoke_invitation(self, request: web.Request, who: Viewer, form: Form) -> web.StreamResponse:
        ward_id, invite_id = int(request.match_info["ward_id"]), _int(form.get("loi_moi"))
        now = self.d.clock.now()
        async with self.d.writes() as session, session.begin():
            admin = await self._admin(session, who, ward_id)
            invite = await session.get(Invite, invite_id) if invite_id is not None else None
            group = await get_group(session, group_id=invite.group_id) if invite and invite.group_id else None
            if admin is None or invite is None or group is None or group.ward_id != ward_id:
                return await self.p.refused(request, who, session=session)
            if not await revoke_invite(session, invite_id=invite.id, now=now):  # type: ignore[arg-type]
                return _back(ward_id, "da-huy")  # used, expired or ended already: nothing to do
            audit.record(session, actor=f"person:{admin.id}", action="admin.invite_revoke",
                         target=f"group:{group.id}", now=now, details={"invite": invite.id})
        return _back(ward_id, "huy")

    # -- the audit log ---------------------------------------------------------------------------

    async def log(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        from bot.cli.reports import _actor_label, _local  # noqa: PLC0415 (hocvuso audit's labels)
        from bot.reports.period import day_end, day_start  # noqa: PLC0415

        if not who.wards:
            return await self.p.refused(request, who)
        query = request.query
        async with self.d.reads() as session:
            city = any(r.kind == RoleKind.ADMIN and r.ward_id is None
                       for r in await roles_of(session, person_id=who.person.id))  # type: ignore[arg-type]
        chosen = _int(query.get("phuong"))
        if chosen is not None and not who.may_see_ward(chosen):
            return await self.p.refused(request, who)
        ward_id = chosen if chosen is not None else (None if city else who.wards[0].id)
        action = query.get("hanh_dong") or None
        actor_id = _int(query.get("nguoi"))
        since, until = _day(query.get("tu")), _day(query.get("den"))
        before = _int(query.get("truoc"))
        async with self.d.reads() as session:
            entries = await audit.read_log(
                session, ward_id=ward_id, action=action, actor=f"person:{actor_id}" if actor_id else None,
                since=day_start(since, self.d.zone) if since else None,
                until=day_end(until, self.d.zone) if until else None, before_id=before, limit=PAGE + 1)
            actions = await audit.log_actions(session, ward_id=ward_id)
            names = await audit.actor_names(session, actors={e.actor for e in entries})
        more = len(entries) > PAGE
        entries = list(entries[:PAGE])
        erased = self.d.catalog.text("cli.audit_erased")
        rows = [(e, _actor_label(e.actor, e.action, names, erased),
                 json.dumps(_local(e.details, self.d.zone), ensure_ascii=False, sort_keys=True) if e.details else "")
                for e in entries]
        kept = {k: v for k, v in (("phuong", chosen), ("hanh_dong", action), ("nguoi", actor_id),
                                  ("tu", since), ("den", until)) if v is not None}
        following = f"/web/nhat-ky?{urlencode({**kept, 'truoc': entries[-1].id})}" if more and entries else None
        return self.p.render("audit_log.html", viewer=who, rows=rows, actions=actions, action=action,
                             actor=actor_id, since=since, until=until, wards=who.wards, ward_id=ward_id, city=city,
                             chosen=chosen, following=following, first_page=f"/web/nhat-ky?{urlencode(kept)}",
                             paged=before is not None, zone=self.d.zone, title=self.p.t("web.staff.title_log"))


# The log's date filter is kept within these (the first and last days overflow a datetime
# once the ward's zone is applied); no row is older or newer.
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


def _day(value: str | None) -> date | None:
    if not value or not value.isascii():
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return min(max(day, EARLIEST), LATEST)


def _back(ward_id: int, outcome: str) -> web.Response:
    return web.Response(status=303, headers={"Location": f"/web/phuong/{ward_id}/can-bo?kq={outcome}"})


def routes(pages: Pages) -> list[web.RouteDef]:
    return StaffPages(pages).routes()

