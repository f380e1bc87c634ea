"""Sign-in to the web dashboard without passwords: one-time links, sessions, refused attempts.

Only SHA-256 hashes of the secrets are stored (a link's token, a session's cookie): reading
the database gives no way in. A refused attempt's client address is kept as an HMAC keyed by a
server secret (the caller's ``client``), never as itself or a plain hash (IPv4 has only 2³²
addresses: a plain hash is reversed by trying them all). A link is used once, by a guarded UPDATE, so a reuse or two
browsers racing with the same link cannot both open a session.

Keyword-only functions; none commits (the caller owns the transaction).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Person, WebLink, WebSession, WebSignInAttempt

LINK_TTL = timedelta(minutes=10)
LINKS_KEPT = timedelta(days=1)  # after expiring (the audit log keeps who signed in)
SESSION_IDLE = timedelta(hours=8)
SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often (a page view is a read)
ATTEMPT_WINDOW = timedelta(minutes=15)
MAX_REFUSED = 10  # refused sign-ins an address may make in ATTEMPT_WINDOW before it waits
TOKEN_CHARS = 43  # secrets.token_urlsafe(32)


def new_secret() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_secret(value: str) -> bool:
    """The shape of :func:`new_secret`'s output: anything else is refused before any query."""
    return len(value) == TOKEN_CHARS and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)


# -- links -------------------------------------------------------------------------------

async def create_link(session: AsyncSession, *, person_id: int, now: datetime, ttl: timedelta = LINK_TTL) -> str:
    """A new sign-in link's token for the person (returned once, stored as its hash); the
    person's earlier unused links stop working (the newest ``/web`` is the one to open), and
    links expired for a day (anyone's) are deleted."""
    await session.exec(delete(WebLink).where(col(WebLink.expires_at) <= now - LINKS_KEPT))  # type: ignore[call-overload]
    await session.exec(  # type: ignore[call-overload]
        update(WebLink).where(WebLink.person_id == person_id, col(WebLink.used_at).is_(None),
                              col(WebLink.expires_at) > now).values(expires_at=now)
    )
    token = new_secret()
    session.add(WebLink(token_hash=digest(token), person_id=person_id, created_at=now, expires_at=now + ttl))
    await session.flush()
    return token


async def link_is_usable(session: AsyncSession, *, token: str, now: datetime) -> bool:
    """The link is unused and unexpired (the confirmation page's GET: it changes nothing)."""
    if not looks_like_secret(token):
        return False
    query = select(WebLink.id).where(WebLink.token_hash == digest(token), col(WebLink.used_at).is_(None),
                                     col(WebLink.expires_at) > now)
    return (await session.exec(query)).first() is not None


async def use_link(session: AsyncSession, *, token: str, now: datetime) -> Person | None:
    """Mark the link used and return its person (still there, not erased); None if it is
    unknown, used or expired. The UPDATE is guarded by ``used_at IS NULL``: of two requests
    with the same link, one gets the person, the other None."""
    if not looks_like_secret(token):
        return None
    token_hash = digest(token)
    taken = await session.exec(  # type: ignore[call-overload]
        update(WebLink).where(WebLink.token_hash == token_hash, col(WebLink.used_at).is_(None),
                              col(WebLink.expires_at) > now).values(used_at=now)
    )
    if not taken.rowcount:
        return None
    person_id = (await session.exec(select(WebLink.person_id).where(WebLink.token_hash == token_hash))).one()
    person = await session.get(Person, person_id)
    return person if person is not None and person.deleted_at is None else None


# -- sessions ----------------------------------------------------------------------------

async def open_session(session: AsyncSession, *, person_id: int, now: datetime) -> str:
    """A new session's cookie value (returned once, stored as its hash). Sessions idle for
    longer than ``SESSION_IDLE`` (anyone's) are deleted on the way."""
    await session.exec(delete(WebSession).where(col(WebSession.last_seen_at) <= now - SESSION_IDLE))  # type: ignore[call-overload]
    token = new_secret()
    session.add(WebSession(token_hash=digest(token), person_id=person_id, created_at=now, last_seen_at=now))
    await session.flush()
    return token


@dataclass(frozen=True)
class SignedIn:
    session_id: int
    person: Person
    last_seen_at: datetime


async def find_session(session: AsyncSession, *, token: str) -> SignedIn | None:
    """The session of this cookie and its person (None if unknown, or the person erased)."""
    if not looks_like_secret(token):
        return None
    row = (await session.exec(select(WebSession).where(WebSession.token_hash == digest(token)))).first()
    if row is None or row.id is None or row.last_seen_at is None:
        return None
    person = await session.get(Person, row.person_id)
    if person is None or person.deleted_at is not None:
        return None
    return SignedIn(row.id, person, row.last_seen_at)


async def mark_seen(session: AsyncSession, *, session_id: int, now: datetime) -> None:
    await session.exec(  # type: ignore[call-overload]
        update(WebSession).where(col(WebSession.id) == session_id).values(last_seen_at=now))


async def close_session(session: AsyncSession, *, session_id: int) -> None:
    await session.exec(delete(WebSession).where(col(WebSession.id) == session_id))  # type: ignore[call-overload]


# -- refused attempts ----------------------------------------------------------------------

async def refused_recently(session: AsyncSession, *, client: str, now: datetime) -> int:
    """Refused sign-ins from this client (a hash of its address) within ``ATTEMPT_WINDOW``."""
    query = select(func.count()).select_from(WebSignInAttempt).where(
        WebSignInAttempt.client == client, col(WebSignInAttempt.at) > now - ATTEMPT_WINDOW)
    return (await session.exec(query)).one()


async def prune(session: AsyncSession, *, now: datetime) -> int:
    """Forget what is no longer needed (the scheduler's retention job, hourly): refused attempts
    past their window, sessions idle for ``SESSION_IDLE``, links expired for ``LINKS_KEPT``.
    The number of rows deleted."""
    deleted = 0
    for statement in (
        delete(WebSignInAttempt).where(col(WebSignInAttempt.at) <= now - ATTEMPT_WINDOW),
        delete(WebSession).where(col(WebSession.last_seen_at) <= now - SESSION_IDLE),
        delete(WebLink).where(col(WebLink.expires_at) <= now - LINKS_KEPT),
    ):
        deleted += (await session.exec(statement)).rowcount  # type: ignore[call-overload]
    return deleted


async def record_refusal(session: AsyncSession, *, client: str, now: datetime) -> None:
    """Note a refused sign-in; attempts older than the window are forgotten (everyone's)."""
    await session.exec(delete(WebSignInAttempt).where(col(WebSignInAttempt.at) <= now - ATTEMPT_WINDOW))  # type: ignore[call-overload]
    session.add(WebSignInAttempt(client=client, at=now))
