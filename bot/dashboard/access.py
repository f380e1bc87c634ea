"""Who is looking at a dashboard page, and the sign-in that lets them.

- The link ``/web`` sends opens a confirmation page (GET changes nothing: chat apps fetch
  links for their previews). Its form POSTs the token with a CSRF token bound to a
  short-lived cookie set by that page; the POST uses the link once (``storage.web_access``)
  and sets the session cookie: a random value (only its hash is stored), HttpOnly,
  SameSite=Strict, Secure over HTTPS. The browser is then sent to ``/web/`` (303): the token
  stays in no address bar and, with ``Referrer-Policy: no-referrer``, in no Referer.
- Every request: the session is looked up (8 idle hours end it; it is marked seen at most once
  a minute, so reading pages does not queue for SQLite's write lock) and the person's roles are
  read from the database: a leader removed a moment ago sees nothing.
- CSRF: each session's token is an HMAC of its secret cookie (nothing more to store); every
  POST must carry it, compared in constant time.
- Refused sign-ins (unknown, used or expired links, a missing CSRF token) are counted per client
  address in the database (every web replica sees the same count) and audited; after
  ``MAX_REFUSED`` in 15 minutes the address gets 429 until the window passes. The link is
  looked up first: a usable link always signs in, so nobody can lock staff out by sending
  bad links. The address is ``request.remote``, or, when that is one of the trusted proxies
  (``WEB_TRUSTED_PROXIES``), the client its ``X-Forwarded-For`` names (:func:`client_address`).

Tokens and cookies never reach a log line or the audit log (ids and reasons only).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from bot.config import Network
from bot.dashboard import Dashboard
from storage import audit
from storage.models import Person, ResidentGroup, Ward
from storage.roles import administered_wards, led_groups
from storage.web_access import (
    MAX_REFUSED, SEEN_EVERY, SESSION_IDLE, close_session, find_session, mark_seen, open_session, record_refusal,
    refused_recently, use_link,
)

SESSION_COOKIE = "hvs_session"
SIGNIN_COOKIE = "hvs_signin"  # binds the confirmation page's form to this browser (login CSRF)
COOKIE_PATH = "/web"
AUDIT_ACTOR = "web"  # the actor of a refused sign-in: nobody known yet


def csrf_for(secret: str, purpose: str = "session") -> str:
    return hmac.new(secret.encode("utf-8"), purpose.encode("ascii"), hashlib.sha256).hexdigest()


def csrf_ok(secret: str | None, sent: object, purpose: str = "session") -> bool:
    """The form's token equals the one derived from this browser's cookie (constant time)."""
    if not secret or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(csrf_for(secret, purpose).encode("ascii"), sent.encode("utf-8", "replace"))


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """Who sent the request: the TCP peer; if the peer is a trusted proxy, the nearest address
    in ``X-Forwarded-For`` that is not itself a trusted proxy (read from the right: the proxy
    appends the address it saw; anything further left was written by the client and may lie)."""
    peer = request.remote or "?"
    address = _address(peer)
    if address is None or not any(address in network for network in trusted):
        return peer
    hops = [h for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        found = _address(hop)
        if found is None:
            return peer  # a malformed header: count the proxy, as without one
        if not any(found in network for network in trusted):
            return str(found)
    return peer


def client_key(dashboard: Dashboard, request: web.Request) -> str:
    """The client's address as stored with a refused attempt: an HMAC keyed by the server's
    secret (``Dashboard.client_secret``), so the table gives no address back."""
    address = client_address(request, dashboard.trusted_proxies).encode("utf-8")
    return hmac.new(dashboard.client_secret, address, hashlib.sha256).hexdigest()


def set_cookie(response: web.StreamResponse, name: str, value: str, *, secure: bool, max_age: int | None = None) -> None:
    response.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=secure,
                        max_age=max_age)


def clear_cookie(response: web.StreamResponse, name: str, *, secure: bool) -> None:
    response.del_cookie(name, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=secure)


# -- sign-in -------------------------------------------------------------------------------

async def limited(dashboard: Dashboard, request: web.Request) -> bool:
    """This address made ``MAX_REFUSED`` refused sign-ins in the window."""
    async with dashboard.reads() as session:
        return await refused_recently(session, client=client_key(dashboard, request),
                                      now=dashboard.clock.now()) >= MAX_REFUSED


async def refuse_sign_in(dashboard: Dashboard, request: web.Request, *, reason: str) -> None:
    """Count and audit a refused sign-in (the reason only: never the token)."""
    now = dashboard.clock.now()
    async with dashboard.writes() as session, session.begin():
        await record_refusal(session, client=client_key(dashboard, request), now=now)
        audit.record(session, actor=AUDIT_ACTOR, action="web.signin_refused", target="web", now=now,
                     details={"reason": reason})


async def sign_in(dashboard: Dashboard, *, token: str, previous: str | None) -> tuple[Person, str] | None:
    """Use the link and open a session for its person if they still hold a role: (person,
    cookie value); None if the link is unknown, used, expired, or its person holds no role.
    ``previous``: the browser's session cookie, if it had one: that session ends."""
    now = dashboard.clock.now()
    async with dashboard.writes() as session, session.begin():
        person = await use_link(session, token=token, now=now)
        if person is None or person.id is None:
            return None
        if not (await led_groups(session, person_id=person.id) or await administered_wards(session, person_id=person.id)):
            return None
        old = await find_session(session, token=previous) if previous else None
        if old is not None:
            await close_session(session, session_id=old.session_id)
        cookie = await open_session(session, person_id=person.id, now=now)
        audit.record(session, actor=f"person:{person.id}", action="web.signin", target="web", now=now)
        return person, cookie


# -- every request ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Viewer:
    """The signed-in person and what they may see, read from the database for this request."""

    session_id: int
    person: Person
    csrf: str
    wards: Sequence[Ward]  # administered (every ward for a city admin)
    groups: Sequence[ResidentGroup]  # led
    path: str = ""  # the address of this request (the menu marks its page: ``pages.nav_current``)

    @property
    def name(self) -> str:
        return self.person.display_name or ""

    def may_see_group(self, group: ResidentGroup) -> bool:
        return any(g.id == group.id for g in self.groups) or any(w.id == group.ward_id for w in self.wards)

    def may_see_ward(self, ward_id: int) -> bool:
        return any(w.id == ward_id for w in self.wards)


class NotSignedIn(Exception):
    """No session, an idle one, or one whose person left."""


class NoRole(Exception):
    """Signed in, but the person leads no group and administers no ward (any more)."""

    def __init__(self, person_id: int, session_id: int, csrf: str) -> None:
        super().__init__(person_id)
        self.person_id = person_id
        self.session_id = session_id  # the session is still open: sign-out closes it
        self.csrf = csrf  # for the sign-out form of the "no role" page


async def viewer(dashboard: Dashboard, request: web.Request) -> Viewer:
    """The signed-in person of this request, their session marked seen and their roles read
    now; raises :class:`NotSignedIn` or :class:`NoRole`."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotSignedIn()
    now = dashboard.clock.now()
    async with dashboard.reads() as session:
        signed_in = await find_session(session, token=cookie)
        wards: Sequence[Ward] = ()
        groups: Sequence[ResidentGroup] = ()
        if signed_in is not None and signed_in.person.id is not None and now - signed_in.last_seen_at < SESSION_IDLE:
            wards = await administered_wards(session, person_id=signed_in.person.id)
            groups = await led_groups(session, person_id=signed_in.person.id)
    if signed_in is None:
        raise NotSignedIn()
    if now - signed_in.last_seen_at >= SESSION_IDLE:
        async with dashboard.writes() as session, session.begin():
            await close_session(session, session_id=signed_in.session_id)
        raise NotSignedIn()
    if now - signed_in.last_seen_at >= SEEN_EVERY:  # a write once a minute, not one per page
        async with dashboard.writes() as session, session.begin():
            await mark_seen(session, session_id=signed_in.session_id, now=now)
    if not wards and not groups:
        assert signed_in.person.id is not None
        raise NoRole(signed_in.person.id, signed_in.session_id, csrf_for(cookie))
    return Viewer(signed_in.session_id, signed_in.person, csrf_for(cookie), wards, groups, request.path)
