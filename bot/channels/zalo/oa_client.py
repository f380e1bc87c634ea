"""Zalo Official Account Open API: consultation messages and the OAuth v4 token pair.

Every OA call carries a bare ``access_token`` header. The access token lives about a day
(some report an hour: we trust the ``expires_in`` each refresh returns) and is renewed
with a **single-use, rotating** refresh token: the new pair must be stored before it is
used, and only one refresher may run at a time — otherwise two processes rotate the same
refresh token, one of them loses, and an OA admin has to consent again in a browser.
So the pair lives in the database (``channel_token``, row ``zalo_oa:<oa id>``), and a
refresh holds an asyncio lock (this process) and the row's ``FOR UPDATE`` lock (other
processes, on PostgreSQL) around the HTTP exchange and the commit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.core.conversation import Clock
from storage.channel_tokens import lock_token, read_token
from storage.db import SessionFactory

log = logging.getLogger(__name__)

TOKEN_REJECTED = {-216, -220}  # invalid / expired access token: refresh once, retry once
REFRESH_MARGIN = timedelta(minutes=5)  # renew this long before the announced expiry
DEFAULT_LIFETIME = 3600  # seconds, if an answer ever lacks expires_in


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
    """The OA access token: from memory, else the database, else a refresh."""

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
    ) -> None:
        self.name = f"zalo_oa:{oa_id}"[:32]
        self._sessions = sessions
        self._http = http
        self._url = oauth_url.rstrip("/") + "/v4/oa/access_token"
        self._app_id = app_id
        self._app_secret = app_secret
        self._seed = seed_refresh_token
        self._clock = clock
        self._lock = asyncio.Lock()
        self._pair: _Pair | None = None
        self.refreshes = 0  # successful exchanges by this process

    def _fresh(self, token: str | None, expires_at: datetime | None) -> bool:
        return bool(token) and expires_at is not None and self._clock.now() < expires_at - REFRESH_MARGIN

    async def current(self) -> str:
        """A usable access token, refreshed early when it is about to expire."""
        pair = self._pair
        if pair is not None and self._fresh(pair.access_token, pair.expires_at):
            return pair.access_token
        async with self._sessions() as session:
            row = await read_token(session, name=self.name)
        if row is not None and self._fresh(row.access_token, row.expires_at):
            assert row.access_token is not None and row.expires_at is not None
            self._pair = _Pair(row.access_token, row.expires_at)
            return row.access_token
        return await self.refresh(stale=row.access_token if row is not None else None)

    async def refresh(self, *, stale: str | None) -> str:
        """Exchange the refresh token for a new pair, unless someone already replaced
        ``stale`` (the token that was rejected or is expiring) with a fresh one."""
        async with self._lock:
            pair = self._pair
            if pair is not None and pair.access_token != stale and self._fresh(pair.access_token, pair.expires_at):
                return pair.access_token  # another task of this process refreshed meanwhile
            now = self._clock.now()
            async with self._sessions() as session, session.begin():
                row = await lock_token(session, name=self.name, seed_refresh_token=self._seed, now=now)
                if row.access_token != stale and self._fresh(row.access_token, row.expires_at):
                    assert row.access_token is not None and row.expires_at is not None
                    self._pair = _Pair(row.access_token, row.expires_at)  # another process did it
                    return row.access_token
                access, refresh, lifetime = await self._exchange_any(row.refresh_token)
                row.access_token, row.refresh_token = access, refresh
                row.expires_at = now + timedelta(seconds=lifetime)
                row.updated_at = now
                session.add(row)
                # Committed when this block ends, before the token is used or the lock freed.
            self._pair = _Pair(access, row.expires_at)
            self.refreshes += 1
            log.info("Zalo OA access token renewed (valid %d s)", lifetime)
            return access

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
        log.error("Zalo OA refused the refresh token (%s): an OA admin must grant access again", error)
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
