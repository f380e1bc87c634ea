"""The dashboard's routes: sign-in, the overview, a group's page, sign-out (see ``bot.dashboard``).

Each page reads what it shows in one short read transaction, then renders the template
outside it. Refusals are pages too, in Vietnamese, with a 4xx status: 401 not signed in,
403 not allowed (or a form without its CSRF token), 410 a link that is used, expired or
unknown, 429 too many refused sign-ins.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Translate
from bot.dashboard import HERE, STATIC, Dashboard, groups, staff
from bot.dashboard.broadcasts import BroadcastPages
from bot.dashboard.access import (
    AUDIT_ACTOR, SESSION_COOKIE, SIGNIN_COOKIE, NoRole, NotSignedIn, Viewer, clear_cookie, csrf_for, csrf_ok,
    limited, refuse_sign_in, set_cookie, sign_in, viewer,
)
from bot.dashboard.trend import read_trend
from bot.overview import live_stats, read_ward_overview
from storage import audit
from storage.groups import get_ward
from storage.members import open_questions_per_group
from storage.web_access import LINK_TTL, close_session, link_is_usable, new_secret

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STYLESHEETS = {"dashboard.css"}
# No script, no frame, no other origin; forms post only here.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}%"


# The menu's links: the addresses of the link's own page (a ward's copy of it too:
# ``/web/phuong/<ward>/…``), and of the pages within its section (a lesson, the composer, …).
WARD = r"/web/(?:phuong/\d+/)?"
NAV = {
    "/web/": (re.compile(r"/web/(?:phuong/\d+)?"), None),
    "/web/cac-to": (re.compile(WARD + "cac-to"), None),
    "/web/thong-bao": (re.compile(WARD + "thong-bao"), re.compile(WARD + "thong-bao/.+")),
    "/web/bao-cao": (re.compile(WARD + "bao-cao"), re.compile(WARD + "bao-cao/.+")),
    "/web/bai-hoc": (re.compile(r"/web/bai-hoc"), re.compile(r"/web/bai-hoc/.+")),
    "/web/can-bo": (re.compile(WARD + "can-bo"), re.compile(r"/web/loi-moi/\d+")),
    "/web/nhat-ky": (re.compile(r"/web/nhat-ky"), None),
}


def nav_current(href: str, path: str) -> str | None:
    """``aria-current`` of the menu's link ``href`` on the page at ``path``: "page" on the
    link's own page, "true" on a page within its section, else None."""
    own, within = NAV[href]
    if own.fullmatch(path):
        return "page"
    return "true" if within is not None and within.fullmatch(path) else None


def markup_translator(t: Translate) -> Callable[..., Markup]:
    """The templates' ``t``: a catalogue text is plain text, escaped like any value; so is each
    placeholder's value, unless the template made it markup itself (a macro's output, a
    ``{% set %}`` block) — a sentence keeps its words in one piece around a ``<strong>`` or a
    ``<code>``, and no catalogue text is ever marked safe."""
    def translate(key: str, /, **values: object) -> Markup:
        text = escape(t(key))  # without values: the text as written, its {placeholders} unfilled
        return text.format(**values) if values else text

    return translate


def _templates(t: Translate) -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["percent"] = _percent
    env.globals["nav_current"] = nav_current
    env.globals["t"] = markup_translator(t)  # every word of every template comes from the catalogue
    return env


# The refusal and notice pages: the catalogue keys of their title and text, by kind.
MESSAGES = {
    "not_signed_in": ("web.page_not_signed_in", "web.page_not_signed_in_text"),
    "no_role": ("web.page_no_role", "web.page_no_role_text"),
    "forbidden": ("web.page_forbidden", "web.page_forbidden_text"),
    "link_unusable": ("web.page_link_unusable", "web.page_link_unusable_text"),
    "limited": ("web.page_limited", "web.page_limited_text"),
    "form_expired": ("web.page_form_expired", "web.page_form_expired_text"),
    "signed_out": ("web.page_signed_out", "web.page_signed_out_text"),
}


def attempted_route(request: web.Request) -> str:
    """The route's pattern with its numeric parts filled in (``POST /web/to/7/nhac``): ids
    only, never a token or a name from the address."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else "?"
    for name, value in request.match_info.items():
        if value.isascii() and value.isdigit():
            path = path.replace("{" + name + "}", value)
    return f"{request.method} {path}"


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The dashboard's pages are personal and never framed, cached or given a Referer."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/web"):
            exc.headers.update(SECURITY_HEADERS)
        raise
    if request.path.startswith("/web"):
        own = response.headers.get("Cache-Control", "")
        response.headers.update(SECURITY_HEADERS)
        if "no-store" in own:  # a download's "private, no-store" stays
            response.headers["Cache-Control"] = own
    return response


class Pages:
    def __init__(self, dashboard: Dashboard) -> None:
        self.d = dashboard
        self.t = dashboard.catalog.translator(None)  # Vietnamese: staff have no locale of their own here
        self.env = _templates(self.t)

    def routes(self) -> list[web.RouteDef]:
        from bot.dashboard.lessons import lesson_routes
        from bot.dashboard.reports import report_routes  # they use this module's Pages

        return [
            web.get("/web", self.to_overview),
            web.get("/web/", self.page(self.overview)),
            web.get("/web/phuong/{ward_id:[0-9]{1,9}}", self.page(self.ward)),
            web.get("/web/vao/{token}", self.confirm_sign_in),
            web.post("/web/vao", self.sign_in),
            web.post("/web/thoat", self.sign_out),
            web.get("/web/da-thoat", self.signed_out),
            web.get("/web/static/{name}", self.static),
            *BroadcastPages(self).routes(),
            *report_routes(self), *lesson_routes(self),
            *groups.routes(self),
            *staff.routes(self),
        ]

    # -- rendering -------------------------------------------------------------------------

    def render(self, template: str, *, status: int = 200, **values: Any) -> web.Response:
        html = self.env.get_template(template).render(**values)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def choose_ward(self, who: Viewer, *, title: str, section: str = "", heading: str | None = None) -> web.Response:
        """The wards an admin of several administers, each a link to ``/web/phuong/<ward><section>``."""
        return self.render("wards.html", viewer=who, wards=who.wards, title=title, heading=heading, section=section)

    def message(self, kind: str, status: int, viewer: Viewer | None = None, *,
                signout: str | None = None) -> web.Response:
        """A refusal or notice page (``message.html`` words each ``kind``); ``signout``: the CSRF
        token of a sign-out button (a session without a role: nothing else to offer)."""
        title, text = MESSAGES[kind]
        return self.render("message.html", status=status, title=self.t(title), text=self.t(text), viewer=viewer,
                           signout=signout)

    async def refused(self, request: web.Request, who: Viewer | None, kind: str = "forbidden", *,
                      session: AsyncSession | None = None, person_id: int | None = None,
                      signout: str | None = None) -> web.Response:
        """Every 403 of the dashboard: the refusal page, and one ``refused`` audit row naming the
        attempted route with its ids (``POST /web/to/7/nhac``), at most one per actor a minute —
        as the chat's refusals (``handlers.authz.refuse``). ``session``: the action's own write
        transaction, if the refusal happens inside one (SQLite has one writer)."""
        if who is not None:
            person_id = who.person.id
        actor = f"person:{person_id}" if person_id is not None else AUDIT_ACTOR
        attempted, now = attempted_route(request), self.d.clock.now()
        if session is not None:
            await audit.record_refusal(session, actor=actor, attempted=attempted, now=now)
        else:
            async with self.d.writes() as own, own.begin():
                await audit.record_refusal(own, actor=actor, attempted=attempted, now=now)
        return self.message(kind, 403, who, signout=signout)

    def page(self, handler: Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]) -> Handler:
        """A page for a signed-in person with a role, checked from the database now."""
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                who = await viewer(self.d, request)
            except NotSignedIn:
                response = self.message("not_signed_in", 401)
                clear_cookie(response, SESSION_COOKIE, secure=self.d.secure)
                return response
            except NoRole as gone:
                return await self.refused(request, None, "no_role", person_id=gone.person_id, signout=gone.csrf)
            return await handler(request, who)

        return handle

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STYLESHEETS:
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC / name, headers={"Content-Type": "text/css; charset=utf-8"})

    # -- sign-in and sign-out ------------------------------------------------------------------

    async def to_overview(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/web/")

    async def confirm_sign_in(self, request: web.Request) -> web.StreamResponse:
        """The page a ``/web`` link opens: a button, nothing used yet (link previews GET it).
        A usable link is never refused for the address's earlier mistakes."""
        token = request.match_info["token"]
        async with self.d.reads() as session:
            usable = await link_is_usable(session, token=token, now=self.d.clock.now())
        if not usable:
            return await self._refuse(request, "link", "link_unusable", 410)
        binding = new_secret()
        response = self.render("signin.html", token=token, csrf=csrf_for(binding, "signin"), viewer=None,
                               title=self.t("web.title_signin"))
        set_cookie(response, SIGNIN_COOKIE, binding, secure=self.d.secure, max_age=int(LINK_TTL.total_seconds()))
        return response

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if not csrf_ok(request.cookies.get(SIGNIN_COOKIE), form.get("csrf"), "signin"):
            return await self._refuse(request, "csrf", "form_expired", 403)
        token = form.get("token")
        done = (await sign_in(self.d, token=token, previous=request.cookies.get(SESSION_COOKIE))
                if isinstance(token, str) else None)
        if done is None:
            return await self._refuse(request, "link", "link_unusable", 410)
        _, cookie = done
        response = _see_other("/web/")  # the token leaves the address bar
        set_cookie(response, SESSION_COOKIE, cookie, secure=self.d.secure)
        clear_cookie(response, SIGNIN_COOKIE, secure=self.d.secure)
        return response

    async def _refuse(self, request: web.Request, reason: str, kind: str, status: int) -> web.Response:
        """A refused sign-in, counted and audited; past the limit, 429 (and nothing more stored).
        Only refusals reach here: the limit never stands in front of a usable link."""
        if await limited(self.d, request):
            return self.message("limited", 429)
        await refuse_sign_in(self.d, request, reason=reason)
        return self.message(kind, status)

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        """Ends the session whatever the person's roles now (a leader removed a moment ago may
        still close what they opened)."""
        form = await request.post()
        who: Viewer | None = None
        try:
            who = await viewer(self.d, request)
            person_id, session_id = who.person.id, who.session_id
        except NotSignedIn:
            person_id = session_id = None
        except NoRole as gone:
            person_id, session_id = gone.person_id, gone.session_id
        if session_id is None or not csrf_ok(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
            return await self.refused(request, who, "form_expired", person_id=person_id)
        now = self.d.clock.now()
        async with self.d.writes() as session, session.begin():
            await close_session(session, session_id=session_id)
            audit.record(session, actor=f"person:{person_id}", action="web.signout", target="web", now=now)
        response = _see_other("/web/da-thoat")
        clear_cookie(response, SESSION_COOKIE, secure=self.d.secure)
        return response

    async def signed_out(self, request: web.Request) -> web.StreamResponse:
        return self.message("signed_out", 200)

    # -- pages ----------------------------------------------------------------------------------

    async def overview(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        """An admin of one ward: its overview; of several: a choice; a leader: their groups."""
        if len(who.wards) == 1:
            assert who.wards[0].id is not None
            return await self._ward(who, who.wards[0].id)
        if who.wards:
            return self.choose_ward(who, title=self.t("web.title_wards"))
        return await self._leader_home(who)

    async def ward(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        ward_id = int(request.match_info["ward_id"])
        if not who.may_see_ward(ward_id):
            return await self.refused(request, who)
        return await self._ward(who, ward_id)

    async def _ward(self, who: Viewer, ward_id: int) -> web.StreamResponse:
        async with self.d.reads() as session:
            ward = await get_ward(session, ward_id=ward_id)
            if ward is None:
                return await self.refused(request, who)
            view = await read_ward_overview(session, ward=ward, lessons=self.d.lessons, zone=self.d.zone,
                                            now=self.d.clock.now())
            trend = await read_trend(session, lessons=self.d.lessons, zone=self.d.zone, now=self.d.clock.now(),
                                     ward_id=ward_id)
        return self.render("overview.html", viewer=who, view=view, title=self.t("web.title_overview", ward=ward.name),
                           several=len(who.wards) > 1, trend=trend)

    async def _leader_home(self, who: Viewer) -> web.StreamResponse:
        ids = [g.id for g in who.groups if g.id is not None]
        async with self.d.reads() as session:
            stats = await live_stats(session, lessons=self.d.lessons, zone=self.d.zone, now=self.d.clock.now(),
                                     group_ids=ids)
            questions = {}
            for ward_id in sorted({g.ward_id for g in who.groups}):
                for count in await open_questions_per_group(session, ward_id=ward_id):
                    if count.group_id in ids:
                        questions[count.group_id] = count.count
            trend = await read_trend(session, lessons=self.d.lessons, zone=self.d.zone, now=self.d.clock.now(),
                                     group_ids=ids)
        lessons = len(self.d.lessons.curriculum_at(self.d.clock.now(), self.d.zone))
        return self.render("groups.html", viewer=who, stats=stats, questions=questions, lessons=lessons,
                           title=self.t("web.title_leader"), trend=trend)
