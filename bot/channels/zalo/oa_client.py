"""Zalo Official Account Open API: consultation messages and the OAuth v4 token pair.

Every OA call carries a bare ``access_token`` header. The access token lives about a day
(some report an hour: we trust the ``expires_in`` each refresh returns) and is renewed
with a **single-use, rotating** refresh token: only one refresher may exchange it at a time
(otherwise two rotate the same token, one loses, and an OA admin has to consent again in a
browser), and the new pair must reach the database, or the next start has nothing that works.

So the pair lives in the database (``channel_token``, row ``zalo_oa:<oa id>``) and a refresh
is *leased*: a short transaction takes the row's lease (``refreshing_until``,
``refresh_owner``) and reads the refresh token; the HTTP exchange runs with no transaction
open; another short transaction stores the new pair, guarded by the lease, retried while the
database is busy or unreachable. Others (an asyncio lock in this process, the lease across
processes, on SQLite and PostgreSQL alike) wait for the new pair instead of refreshing too.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.core.conversation import Clock
from storage.channel_tokens import ensure_token, read_token, release_lease, store_pair, take_lease
from storage.db import SessionFactory
from storage.models import ChannelToken

log = logging.getLogger(__name__)

TOKEN_REJECTED = {-216, -220}  # invalid / expired access token: refresh once, retry once
REFRESH_MARGIN = timedelta(minutes=5)  # renew this long before the announced expiry
DEFAULT_LIFETIME = 3600  # seconds, if an answer ever lacks expires_in
DATABASE_ERRORS = (SQLAlchemyError, OSError)  # busy, locked, connection dropped, pool timeout


@dataclass(frozen=True)
class Patience:
    """How long a refresh leases, waits and retries. The waits are counted in the pauses
    taken (seconds), not measured with a clock."""

    lease: timedelta = timedelta(minutes=2)  # > the exchange's HTTP timeout + a normal store
    poll: float = 0.25  # between two looks at another refresher's progress
    wait: float = 30.0  # pauses in all before giving up on it (a transient error: retried later)
    retry_first: float = 0.1  # first pause before storing the new pair again
    retry_cap: float = 5.0
    store: float = 60.0  # pauses in all before saying loudly that the new pair is not stored


class ZaloOAError(Exception):
    """A failed OA or OAuth call. ``code`` is Zalo's ``error`` (negative), the HTTP status
    for an HTTP error, or 0 when there was no answer. The message holds no token."""

    def __init__(self, operation: str, code: int, message: str) -> None:
        super().__init__(f"Zalo OA {operation}: {code} {message}".rstrip())
        self.operation = operation
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        return self.code == 0 or self.code >= 500


@dataclass(frozen=True)
class _Pair:
    access_token: str
    expires_at: datetime


@dataclass
class _Unsaved:
    """A pair Zalo gave us that the database has not taken yet: its refresh token is the only
    one that works now, and this process is the only one that knows it."""

    owner: str  # the lease it was obtained under
    previous: str | None  # the refresh token the row held then (consumed since)
    access_token: str
    refresh_token: str
    expires_at: datetime


def _database_reason(exc: BaseException) -> str:
    # The driver's own message ("database is locked"), never SQLAlchemy's, which quotes the
    # statement's parameters: the tokens.
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    return f"{type(exc).__name__}: {orig}"[:200] if orig is not None else type(exc).__name__


def _refused(error: ZaloOAError) -> None:
    log.error("Zalo OA refused the refresh token (%s): an OA admin must grant access again", error)


async def _post(http: httpx.AsyncClient, operation: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = await http.post(url, **kwargs)
    except httpx.TimeoutException:
        raise ZaloOAError(operation, 0, "timeout") from None
    except httpx.HTTPError as exc:
        raise ZaloOAError(operation, 0, f"network error ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.is_success:
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
        raise ZaloOAError(operation, response.status_code, message or f"HTTP {response.status_code}")
    if not isinstance(body, dict):
        raise ZaloOAError(operation, response.status_code, "no JSON body")
    return body


class OATokens:
    """The OA access token: from memory, else the database, else a leased refresh."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        http: httpx.AsyncClient,
        oauth_url: str,
        oa_id: str,
        app_id: str,
        app_secret: str,
        seed_refresh_token: str | None,
        clock: Clock,
        patience: Patience = Patience(),
    ) -> None:
        self.name = f"zalo_oa:{oa_id}"[:32]
        self._sessions = sessions
        self._http = http
        self._url = oauth_url.rstrip("/") + "/v4/oa/access_token"
        self._app_id = app_id
        self._app_secret = app_secret
        self._seed = seed_refresh_token
        self._clock = clock
        self._patience = patience
        self._lock = asyncio.Lock()  # one refresher in this process
        self._save_lock = asyncio.Lock()  # one store of an unsaved pair at a time
        self._pair: _Pair | None = None
        self._unsaved: _Unsaved | None = None
        self._saver: asyncio.Task[None] | None = None
        self.refreshes = 0  # successful exchanges by this process
        self.waits = 0  # times a refresh found another refresher's lease running

    def _fresh(self, token: str | None, expires_at: datetime | None) -> bool:
        return bool(token) and expires_at is not None and self._clock.now() < expires_at - REFRESH_MARGIN

    def _replaces(self, row: ChannelToken | None, stale: str | None) -> _Pair | None:
        """The row's pair if it is fresh and not the one being replaced."""
        if row is None or row.access_token == stale or not self._fresh(row.access_token, row.expires_at):
            return None
        assert row.access_token is not None and row.expires_at is not None
        return _Pair(row.access_token, row.expires_at)

    @property
    def unsaved(self) -> bool:
        """A renewed pair is in memory only (the database could not be written yet)."""
        return self._unsaved is not None

    async def current(self) -> str:
        """A usable access token, refreshed early when it is about to expire."""
        pair = self._pair
        if pair is not None and self._fresh(pair.access_token, pair.expires_at):
            return pair.access_token
        row = await self._read()
        if (pair := self._replaces(row, None)) is not None:
            self._pair = pair
            return pair.access_token
        return await self.refresh(stale=row.access_token if row is not None else None)

    async def refresh(self, *, stale: str | None) -> str:
        """Exchange the refresh token for a new pair, unless someone already replaced
        ``stale`` (the token that was rejected or is expiring) with a fresh one.

        Under the refresh lease, with no transaction open during the exchange; the new pair
        is used at once and stored as soon as the database takes it (see ``Patience``)."""
        async with self._lock:
            pair = self._pair
            if pair is not None and pair.access_token != stale and self._fresh(pair.access_token, pair.expires_at):
                return pair.access_token  # another task of this process refreshed meanwhile
            if self._unsaved is not None:
                return await self._renew_unsaved(self._unsaved)
            leased = await self._lease(stale)
            if isinstance(leased, _Pair):
                self._pair = leased  # another process refreshed meanwhile
                return leased.access_token
            owner, stored = leased
            now = self._clock.now()  # before the exchange: the lifetime starts no earlier
            try:
                access, rotated, lifetime = await self._exchange_any(stored)
            except Exception as exc:
                await self._release(owner)
                if isinstance(exc, ZaloOAError) and not exc.transient:
                    # Refused: perhaps a refresher whose lease ran out while it could not
                    # store had consumed this token, and has stored its pair since.
                    if (pair := self._replaces(await self._read(), stale)) is not None:
                        self._pair = pair
                        return pair.access_token
                    _refused(exc)
                raise
            # In memory first: this process keeps working while the database is unavailable.
            expires_at = now + timedelta(seconds=lifetime)
            self._unsaved = _Unsaved(owner, stored, access, rotated, expires_at)
            self._pair = _Pair(access, expires_at)
            self.refreshes += 1
            log.info("Zalo OA access token renewed (valid %d s)", lifetime)
            await self._store_patiently()
            return access

    async def _read(self) -> ChannelToken | None:
        async with self._sessions() as session:
            return await read_token(session, name=self.name)

    async def _claim(self, owner: str, stale: str | None) -> tuple[str, str | None] | _Pair | None:
        """One short transaction: the row (created from the seed the first time), and the
        lease if nobody refreshed meanwhile and no other lease is running. Returns the
        refresh token to exchange, the pair someone else stored, or None (another's lease)."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            row = await read_token(session, name=self.name)
            if row is None:
                await ensure_token(session, name=self.name, seed_refresh_token=self._seed, now=now)
            elif (pair := self._replaces(row, stale)) is not None:
                return pair
            until = now + self._patience.lease
            if not await take_lease(session, name=self.name, owner=owner, now=now, until=until):
                return None
            # Read again under the lease: a refresher that finished between the first read and
            # the lease has stored a newer pair (and consumed the token read first).
            row = await read_token(session, name=self.name)
            assert row is not None
            if (pair := self._replaces(row, stale)) is not None:
                await release_lease(session, name=self.name, owner=owner)
                return pair
            return owner, row.refresh_token

    async def _lease(self, stale: str | None) -> tuple[str, str | None] | _Pair:
        """Take the refresh lease, or wait (bounded) for another refresher's new pair; a lease
        whose owner died runs out and is taken over."""
        owner = secrets.token_hex(8)
        waited = 0.0
        while True:
            claim = await self._claim(owner, stale)
            if claim is not None:
                return claim
            self.waits += 1
            while True:
                if waited >= self._patience.wait:
                    raise ZaloOAError("refresh", 0, "another process is still renewing the access token")
                await asyncio.sleep(self._patience.poll)
                waited += self._patience.poll
                row = await self._read()
                if (pair := self._replaces(row, stale)) is not None:
                    return pair
                until = row.refreshing_until if row is not None else None
                if until is None or until < self._clock.now():
                    break  # ended without a new pair, or ran out: try to take it

    async def _release(self, owner: str) -> None:
        try:
            async with self._sessions() as session, session.begin():
                await release_lease(session, name=self.name, owner=owner)
        except DATABASE_ERRORS as exc:  # the lease runs out by itself
            log.warning("Could not release the Zalo OA refresh lease (%s)", _database_reason(exc))

    async def _renew_unsaved(self, unsaved: _Unsaved) -> str:
        """Renew from the pair the database has not taken: its refresh token is the only one
        that works, and no other process knows it, so no lease is needed."""
        now = self._clock.now()
        consumed = unsaved.refresh_token
        try:
            access, rotated, lifetime = await self._exchange_any(consumed)
        except ZaloOAError as exc:
            if not exc.transient:
                _refused(exc)
            raise
        expires_at = now + timedelta(seconds=lifetime)
        if self._unsaved is unsaved:  # still pending: the saver stores the newest pair
            unsaved.access_token, unsaved.refresh_token, unsaved.expires_at = access, rotated, expires_at
        else:  # stored during the exchange: the database now holds the token just consumed
            self._unsaved = _Unsaved(unsaved.owner, consumed, access, rotated, expires_at)
        self._pair = _Pair(access, expires_at)
        self.refreshes += 1
        log.info("Zalo OA access token renewed (valid %d s)", lifetime)
        if self._saver is None or self._saver.done():
            await self._store_patiently()
        return access

    async def flush(self) -> bool:
        """Try once to store the pair the database has not taken yet. True if none is left."""
        async with self._save_lock:
            unsaved = self._unsaved
            if unsaved is None:
                return True
            stored_as = unsaved.refresh_token
            try:
                async with self._sessions() as session, session.begin():
                    stored = await store_pair(
                        session, name=self.name, owner=unsaved.owner, previous_refresh_token=unsaved.previous,
                        access_token=unsaved.access_token, refresh_token=stored_as,
                        expires_at=unsaved.expires_at, now=self._clock.now(),
                    )
            except DATABASE_ERRORS as exc:
                reason = _database_reason(exc)
                log.warning("Could not save the renewed Zalo OA token yet (%s); retrying", reason)
                return False
            if not stored:
                # Our lease ran out and another refresher stored a pair of its own (from the
                # operator's new seed token): that one is kept; ours is used until it expires.
                log.warning("Another process stored a newer Zalo OA token pair; this one is dropped")
                self._unsaved = None
            elif unsaved.refresh_token == stored_as:
                self._unsaved = None
            else:
                unsaved.previous = stored_as  # renewed again while this was being stored
            return self._unsaved is None

    async def _store_patiently(self) -> None:
        """Store the new pair, retrying with capped backoff; past the patience, say loudly
        what is at stake and keep trying in the background."""
        delay, slept = self._patience.retry_first, 0.0
        while not await self.flush():
            if slept >= self._patience.store:
                log.error(
                    "The Zalo OA refresh token was renewed but could not be saved to the database. The bot "
                    "keeps using it and keeps trying to save it. Make the database writable again (it is "
                    "locked or unreachable) and keep the bot running until the log says the token is saved: "
                    "if the bot stops before that, an OA admin must grant access again and the refresh "
                    "token obtained then must be put in ZALO_OA_REFRESH_TOKEN."
                )
                self._saver = asyncio.create_task(self._keep_saving(delay))
                return
            await asyncio.sleep(delay)
            slept += delay
            delay = min(delay * 2, self._patience.retry_cap)

    async def _keep_saving(self, delay: float) -> None:
        while not await self.flush():
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._patience.retry_cap)
        log.warning("The renewed Zalo OA refresh token is saved to the database now")

    async def aclose(self) -> None:
        """Stop the background saver after one last attempt to store an unsaved pair."""
        if self._saver is not None:
            self._saver.cancel()
            await asyncio.gather(self._saver, return_exceptions=True)
            self._saver = None
        if not await self.flush():
            log.error(
                "Stopping with the renewed Zalo OA refresh token not saved to the database: an OA admin "
                "must grant access again and the refresh token obtained then must be put in "
                "ZALO_OA_REFRESH_TOKEN."
            )

    async def _exchange_any(self, stored: str | None) -> tuple[str, str, int]:
        """Try the stored refresh token; if Zalo refuses it and the operator has set a
        different one (after consenting again), try that."""
        candidates = [t for t in (stored, self._seed) if t]
        if not candidates:
            raise ZaloOAError("refresh", -1, "no refresh token: set ZALO_OA_REFRESH_TOKEN")
        error: ZaloOAError | None = None
        for token in dict.fromkeys(candidates):
            try:
                return await self._exchange(token)
            except ZaloOAError as exc:
                if exc.transient:
                    raise
                error = exc
        assert error is not None
        raise error

    async def _exchange(self, refresh_token: str) -> tuple[str, str, int]:
        body = await _post(
            self._http,
            "refresh",
            self._url,
            headers={"secret_key": self._app_secret},
            data={"refresh_token": refresh_token, "app_id": self._app_id, "grant_type": "refresh_token"},
        )
        access, rotated = body.get("access_token"), body.get("refresh_token")
        if not access or not rotated:
            code = body.get("error")
            message = str(body.get("error_description") or body.get("error_name") or body.get("message") or "")
            raise ZaloOAError("refresh", int(code) if isinstance(code, int) else -1, message or "no token in answer")
        try:
            lifetime = int(float(str(body.get("expires_in"))))  # a string of seconds: "90000"
        except ValueError:
            lifetime = DEFAULT_LIFETIME
        return str(access), str(rotated), lifetime


class ZaloOAClient:
    """Consultation ("tin tư vấn") messages: ``POST {api}/v3.0/oa/message/cs``."""

    def __init__(self, *, api_url: str, tokens: OATokens, http: httpx.AsyncClient) -> None:
        self._url = api_url.rstrip("/") + "/v3.0/oa/message/cs"
        self.tokens = tokens
        self._http = http

    async def close(self) -> None:
        await self.tokens.aclose()
        await self._http.aclose()

    async def _post_cs(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await _post(self._http, "message/cs", self._url, headers={"access_token": token}, json=body)
        code = answer.get("error", 0)
        if code not in (0, "0", None):
            # Errors come back with HTTP 200 and a negative code in the body.
            raise ZaloOAError("message/cs", int(code), str(answer.get("message") or ""))
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    async def send_cs(self, user_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Send one message to ``user_id``; a rejected access token is renewed once and the
        message sent once more."""
        body = {"recipient": {"user_id": user_id}, "message": message}
        token = await self.tokens.current()
        try:
            return await self._post_cs(token, body)
        except ZaloOAError as exc:
            if exc.code not in TOKEN_REJECTED:
                raise
            log.info("Zalo OA access token rejected (%s); renewing it", exc.code)
        token = await self.tokens.refresh(stale=token)
        return await self._post_cs(token, body)
