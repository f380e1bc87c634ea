"""A fake Zalo Official Account API (Open API v3 + OAuth v4) for tests, on 127.0.0.1.

Follows ``../shared/reference/zalo.md`` §2 and §4:

- ``POST /v3.0/oa/message/cs`` needs the ``access_token`` header; every error comes back
  with **HTTP 200** and a negative ``error``: an unknown or expired token → -216, a user
  outside the 7-day window → -230, text over 2,000 characters → -201, more than 5
  buttons → -201. Success: ``{"error": 0, "message": "Success", "data": {message_id, user_id}}``.
- ``POST /v4/oa/access_token`` (form: refresh_token, app_id, grant_type=refresh_token;
  header ``secret_key``) rotates the pair: the refresh token just used stops working.
  ``expires_in`` is a string, as Zalo sends it. A missing ``secret_key`` gives 404.
- :meth:`post_event` plays Zalo delivering a webhook event signed with
  ``sha256(app_id + raw body + timestamp + OA secret key)`` (``mac=`` prefix optional),
  or with a wrong or missing signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

MAX_TEXT = 2000
MAX_BUTTONS = 5
BUTTON_TYPES = {"oa.query.show", "oa.query.hide", "oa.open.url", "oa.open.phone", "oa.open.sms"}


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    error: int  # the ``error`` answered (0 = success; an HTTP status for 404s)


class FakeZaloOA:
    def __init__(self, *, oa_id: str = "388613280878808645", app_id: str = "360846524940903967",
                 app_secret: str = "app-secret-for-oauth", secret_key: str = "oa-secret-key-for-webhooks",
                 refresh_token: str = "refresh-0", expires_in: str = "90000") -> None:
        self.oa_id, self.app_id, self.app_secret, self.secret_key = oa_id, app_id, app_secret, secret_key
        self.refresh_token = refresh_token  # the one refresh token that works now
        self.expires_in = expires_in
        self.url = ""
        self.calls: list[Call] = []
        self.sent: list[dict[str, Any]] = []  # successful cs bodies
        self.valid_tokens: set[str] = set()
        self.refreshes = 0
        self.outside_window: set[str] = set()  # users Zalo considers outside the 7-day window
        self.exchange_started = asyncio.Event()  # set when a refresh request arrives
        self.hold_exchange: asyncio.Event | None = None  # when set, a refresh waits for it
        self._failures: dict[str, deque[int]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._cs)
        app.router.add_post("/v4/oa/access_token", self._access_token)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeZaloOA:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- control ------------------------------------------------------------------------

    def issue_token(self) -> str:
        """A valid access token, as if obtained earlier (to seed a test's database)."""
        token = f"access-{secrets.token_hex(6)}"
        self.valid_tokens.add(token)
        return token

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (-216)."""
        self.valid_tokens.clear()

    def fail_next(self, code: int, times: int = 1) -> None:
        """The next ``times`` cs calls answer ``{"error": code}`` (an HTTP status ≥ 500 as such)."""
        self._failures["cs"].extend([code] * times)

    def to(self, user_id: str) -> list[dict[str, Any]]:
        return [b["message"] for b in self.sent if b["recipient"]["user_id"] == user_id]

    def texts(self, user_id: str) -> list[str]:
        return [m.get("text", "") for m in self.to(user_id)]

    def buttons(self, user_id: str) -> list[dict[str, Any]]:
        """The buttons of the latest message to ``user_id`` that has some."""
        for message in reversed(self.to(user_id)):
            payload = (message.get("attachment") or {}).get("payload") or {}
            if payload.get("buttons"):
                return payload["buttons"]
        return []

    def cs_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/message/cs")]

    def exchanges(self) -> list[tuple[str | None, int]]:
        """Each answered refresh request: the refresh token presented, and the ``error``."""
        return [(c.body.get("refresh_token"), c.error) for c in self.calls if c.path.endswith("/access_token")]

    # -- HTTP ---------------------------------------------------------------------------

    def _answer(self, request: web.Request, body: dict[str, Any], error: int, payload: dict[str, Any]) -> web.Response:
        self.calls.append(Call(request.path, dict(request.headers), body, error))
        return web.json_response(payload)

    async def _cs(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if self._failures["cs"]:
            code = self._failures["cs"].popleft()
            if code >= 500:
                self.calls.append(Call(request.path, dict(request.headers), body, code))
                return web.json_response({"message": "server error"}, status=code)
            return self._answer(request, body, code, {"error": code, "message": "injected"})
        error, message = self._check_cs(request.headers.get("access_token"), body)
        if error:
            return self._answer(request, body, error, {"error": error, "message": message})
        self.sent.append(body)
        data = {"message_id": secrets.token_hex(16), "user_id": body["recipient"]["user_id"]}
        return self._answer(request, body, 0, {"error": 0, "message": "Success", "data": data})

    def _check_cs(self, token: str | None, body: Any) -> tuple[int, str]:
        if not token or token not in self.valid_tokens:
            return -216, "Access token is invalid"
        user = ((body or {}).get("recipient") or {}).get("user_id") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        if not user or not isinstance(message, dict):
            return -201, "recipient or message is invalid"
        if user in self.outside_window:
            return -230, "User has not interacted with the OA in the past 7 days"
        text = message.get("text")
        if text is not None and not 1 <= len(str(text)) <= MAX_TEXT:
            return -201, "text is invalid"
        if text is None and "attachment" not in message:
            return -201, "message is invalid"
        buttons = ((message.get("attachment") or {}).get("payload") or {}).get("buttons")
        if buttons is not None:
            if not 1 <= len(buttons) <= MAX_BUTTONS:
                return -201, "buttons is invalid"
            for b in buttons:
                if b.get("type") not in BUTTON_TYPES or not b.get("title") or b.get("payload") in (None, ""):
                    return -201, "button is invalid"
        return 0, ""

    async def _access_token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        secret = request.headers.get("secret_key")
        if secret is None:
            self.calls.append(Call(request.path, dict(request.headers), form, 404))
            return web.Response(status=404, text="empty api")
        self.exchange_started.set()
        if self.hold_exchange is not None:
            await self.hold_exchange.wait()
        if secret != self.app_secret or form.get("app_id") != self.app_id:
            return self._answer(request, form, -14002, {"error": -14002, "error_name": "Invalid app"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return self._answer(request, form, -14014,
                                {"error": -14014, "error_name": "Invalid refresh token",
                                 "error_description": "Refresh token is invalid or was used"})
        self.refreshes += 1
        self.refresh_token = f"refresh-{self.refreshes}-{secrets.token_hex(4)}"
        access = self.issue_token()
        payload = {"access_token": access, "refresh_token": self.refresh_token, "expires_in": self.expires_in}
        return self._answer(request, form, 0, payload)

    # -- webhook events -----------------------------------------------------------------

    def _base(self, event_name: str, timestamp: str | None) -> dict[str, Any]:
        return {"app_id": self.app_id, "oa_id": self.oa_id, "event_name": event_name,
                "timestamp": timestamp or str(int(time.time() * 1000)), "user_id_by_app": "552177279717587730"}

    def text_event(self, user_id: str, text: str, *, msg_id: str | None = None,
                   timestamp: str | None = None) -> dict[str, Any]:
        return {**self._base("user_send_text", timestamp), "sender": {"id": user_id},
                "recipient": {"id": self.oa_id},
                "message": {"text": text, "msg_id": msg_id or f"msg{next(self._ids):016x}"}}

    def attachment_event(self, user_id: str, kind: str = "sticker") -> dict[str, Any]:
        return {**self._base(f"user_send_{kind}", None), "sender": {"id": user_id}, "recipient": {"id": self.oa_id},
                "message": {"msg_id": f"msg{next(self._ids):016x}",
                            "attachments": [{"type": kind, "payload": {"url": "https://zalo.example/a"}}]}}

    def follow_event(self, user_id: str, name: str = "follow") -> dict[str, Any]:
        return {**self._base(name, None), "follower": {"id": user_id}, "source": "oa_profile"}

    def echo_event(self, user_id: str, text: str) -> dict[str, Any]:
        """The OA's own message, echoed back (sender and recipient swapped)."""
        return {**self._base("oa_send_text", None), "sender": {"id": self.oa_id}, "recipient": {"id": user_id},
                "message": {"text": text, "msg_id": f"msg{next(self._ids):016x}"}}

    def sign(self, raw: bytes, *, first: str | None = None, secret: str | None = None) -> str:
        timestamp = str(json.loads(raw)["timestamp"])
        material = (first or self.app_id).encode() + raw + timestamp.encode() + (secret or self.secret_key).encode()
        return hashlib.sha256(material).hexdigest()

    async def post_event(self, url: str, event: dict[str, Any], *, signature: str = "right",
                         mac_prefix: bool = True, first: str | None = None) -> int:
        """POST ``event`` to ``url``. ``signature``: "right", "wrong" (made with another
        secret) or "missing"; ``first``: the id the signature starts with (default app_id)."""
        raw = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if signature != "missing":
            mac = self.sign(raw, first=first, secret=None if signature == "right" else "not-the-secret")
            headers["X-ZEvent-Signature"] = f"mac={mac}" if mac_prefix else mac
        async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers=headers) as response:
            await response.read()
            return response.status
