"""A fake Zalo Bot Platform server for tests, over HTTP on 127.0.0.1.

It follows the wire format in ``../shared/reference/zalo.md`` §1 and the fake-server spec
§4: ``POST /bot<token>/<method>`` with a JSON or a form body; answers
``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": N, "description": …}``.
Whether Zalo sends an error code as the HTTP status too is an open question, so both are
possible: ``errors_in_status`` (default True) answers HTTP N, False answers HTTP 200.

``getUpdates`` hands out **one** queued update (wrapped) or, after ``timeout`` seconds
(0 allowed), 408; with a webhook set it answers 409. ``sendMessage`` checks 1 ≤ len(text)
≤ 2,000. Every request is recorded; errors are injected with :meth:`fail_next` and
:meth:`rate_limit`. :meth:`post_webhook` plays Zalo delivering an event to a webhook.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

MAX_TEXT = 2000
BOT_ID = "bot1"


@dataclass
class Call:
    """One request as the server saw it (unknown token and failed ones too)."""

    method: str
    params: dict[str, Any]
    status: int  # the HTTP status answered
    ok: bool
    content_type: str = ""


@dataclass
class Sent:
    """A message the bot sent: text, or a photo URL with its caption."""

    chat_id: str
    text: str = ""
    photo: str | None = None
    message_id: str = field(default_factory=lambda: secrets.token_hex(10))


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


class FakeZaloBot:
    """The fake server. Use ``async with FakeZaloBot() as zalo:``; ``zalo.url`` is the base."""

    def __init__(self, token: str = "12345689:zalo-test-secret-token") -> None:
        self.token, self.url = token, ""
        self.errors_in_status = True
        self.max_poll_timeout = 30.0
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.webhook: dict[str, Any] = {"url": "", "secret_token": "", "updated_at": 0}
        self.handed_out = 0  # updates answered by getUpdates so far
        self.waiting_polls = 0  # getUpdates calls waiting for an update right now
        self._queue: deque[dict[str, Any]] = deque()
        self._failures: dict[str, deque[ApiError]] = defaultdict(deque)
        self._rate: tuple[float, int | None] | None = None
        self._window: deque[float] = deque()
        self._message_ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.files: dict[str, bytes] = {}  # what /files/<name> serves (the CDN of users' photos)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeZaloBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what users do -----------------------------------------------------------------

    def event(self, user_id: str, event_name: str, *, display_name: str | None = "Lan Nguyễn",
              message_id: str | None = None, is_bot: bool = False, name_field: str = "display_name",
              chat_type: str = "PRIVATE", **content: Any) -> dict[str, Any]:
        """An event as Zalo builds it (not wrapped, not queued)."""
        sender: dict[str, Any] = {"id": user_id, "is_bot": is_bot}
        if display_name is not None:
            sender[name_field] = display_name
        message = {"from": sender, "chat": {"id": user_id, "chat_type": chat_type},
                   "message_id": message_id or f"{next(self._message_ids):020x}",
                   "date": int(time.time() * 1000), **content}
        return {"event_name": event_name, "message": message}

    def text_event(self, user_id: str, text: str, **kwargs: Any) -> dict[str, Any]:
        return self.event(user_id, "message.text.received", text=text, **kwargs)

    def push(self, event: dict[str, Any]) -> dict[str, Any]:
        """Queue an event for getUpdates; returns it (to push it again as a repeat)."""
        self._queue.append(event)
        self._notify()
        return event

    def push_text(self, user_id: str, text: str, **kwargs: Any) -> dict[str, Any]:
        return self.push(self.text_event(user_id, text, **kwargs))

    def push_sticker(self, user_id: str) -> dict[str, Any]:
        return self.push(self.event(user_id, "message.sticker.received", sticker="d063f44dc80821567819",
                                    url="https://zalo.example/sticker.webp"))

    def push_image(self, user_id: str, *, data: bytes | None = None, caption: str = "") -> dict[str, Any]:
        """A photo from the user; with ``data``, its ``photo_url`` serves those bytes (as Zalo's
        CDN would), else it points nowhere reachable."""
        url = "https://zalo.example/p.jpg"
        if data is not None:
            name = f"p{next(self._message_ids)}.jpg"
            self.files[name] = data
            url = f"{self.url}/files/{name}"
        return self.push(self.event(user_id, "message.image.received", photo_url=url, caption=caption))

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        return web.Response(status=404) if data is None else web.Response(body=data, content_type="image/jpeg")

    def push_unsupported(self, user_id: str) -> dict[str, Any]:
        return self.push(self.event(user_id, "message.unsupported.received"))

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- inspection -------------------------------------------------------------------

    def chat(self, chat_id: str) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def last_text(self, chat_id: str) -> str:
        messages = self.chat(chat_id)
        return messages[-1].text if messages else ""

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` is truthy: re-checked after every request and push, and
        at least every 10 ms (it may watch the bot's state as well as this server's)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                last = "\n".join(f"  {c.status} {c.method} {c.params}" for c in self.calls[-10:])
                raise TimeoutError(f"condition not met within {timeout}s; last calls:\n{last}")
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.01))
            except TimeoutError:
                pass

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # -- fault injection ----------------------------------------------------------------

    def fail_next(self, method: str, code: int, description: str = "error", *, retry_after: int | None = None,
                  times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer this error."""
        self._failures[method].extend(ApiError(code, description, retry_after) for _ in range(times))

    def rate_limit(self, per_second: float | None, *, retry_after: int | None = None) -> None:
        """send* calls beyond ``per_second`` in a sliding second answer 429; None = off."""
        self._rate = (per_second, retry_after) if per_second else None
        self._window.clear()

    def _inject(self, method: str) -> None:
        if self._failures[method]:
            raise self._failures[method].popleft()
        if self._rate and method.startswith("send"):
            now = time.monotonic()
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= self._rate[0]:
                raise ApiError(429, "Quota exceeded", self._rate[1])
            self._window.append(now)

    # -- HTTP ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        status, body = 500, {"ok": False, "error_code": 500, "description": "fake bug"}
        try:
            params = await self._params(request)
            if request.method != "POST":
                raise ApiError(400, "Bad request: use POST")
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            handler = getattr(self, f"_api_{method}", None)  # names are case-sensitive
            if handler is None:
                raise ApiError(404, "Not found")
            self._inject(method)
            result = await handler(params)
            status, body = 200, ({"ok": True} if result is None else {"ok": True, "result": result})
        except ApiError as error:
            status, body = (error.code if self.errors_in_status else 200), error.envelope()
        finally:
            self.calls.append(Call(method, params, status, bool(body.get("ok")), request.content_type))
            self._notify()
        return web.json_response(body, status=status)

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                raise ApiError(400, "Bad request: invalid JSON") from None
            return data if isinstance(data, dict) else {}
        if request.method == "POST":
            return dict(await request.post())  # form: every value a string
        return dict(request.query)

    # -- methods ------------------------------------------------------------------------

    async def _api_getMe(self, p: dict[str, Any]) -> Any:
        return {"id": BOT_ID, "account_name": "bot.test", "account_type": "BASIC", "can_join_groups": False}

    async def _api_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook["url"]:
            raise ApiError(409, "Conflict: webhook is set, use deleteWebhook first")
        try:
            timeout = min(max(float(p.get("timeout", 30)), 0.0), self.max_poll_timeout)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad request: timeout") from None
        deadline = time.monotonic() + timeout
        self.waiting_polls += 1
        self._notify()
        try:
            while not self._queue and not self._closing and (left := deadline - time.monotonic()) > 0:
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    break
        finally:
            self.waiting_polls -= 1
        if not self._queue:
            raise ApiError(408, "Request timeout")
        self.handed_out += 1
        return self._queue.popleft()

    def _chat_id(self, p: dict[str, Any]) -> str:
        chat_id = p.get("chat_id")
        if chat_id in (None, ""):
            raise ApiError(400, "Bad request: chat_id is required")
        return str(chat_id)

    @staticmethod
    def _check_text(value: Any, name: str, *, required: bool) -> str:
        text = "" if value is None else str(value)
        if (required or value is not None) and not 1 <= len(text) <= MAX_TEXT:
            raise ApiError(400, f"Bad request: {name} must be 1-{MAX_TEXT} characters")
        return text

    def _store(self, sent: Sent) -> dict[str, Any]:
        self.sent.append(sent)
        return {"message_id": sent.message_id, "date": int(time.time() * 1000)}

    async def _api_sendMessage(self, p: dict[str, Any]) -> Any:
        chat_id = self._chat_id(p)
        return self._store(Sent(chat_id, text=self._check_text(p.get("text"), "text", required=True)))

    async def _api_sendPhoto(self, p: dict[str, Any]) -> Any:
        chat_id = self._chat_id(p)
        if not str(p.get("photo") or "").startswith(("http://", "https://")):
            raise ApiError(400, "Bad request: photo must be a URL")
        caption = self._check_text(p.get("caption"), "caption", required=False)
        return self._store(Sent(chat_id, text=caption, photo=str(p["photo"])))

    async def _api_sendSticker(self, p: dict[str, Any]) -> Any:
        chat_id = self._chat_id(p)
        if not p.get("sticker"):
            raise ApiError(400, "Bad request: sticker is required")
        return self._store(Sent(chat_id, text=f"[sticker {p['sticker']}]"))

    async def _api_sendChatAction(self, p: dict[str, Any]) -> Any:
        self._chat_id(p)
        return None  # {"ok": true} without a result

    async def _api_setWebhook(self, p: dict[str, Any]) -> Any:
        url, secret = str(p.get("url") or ""), str(p.get("secret_token") or "")
        if not url.startswith("https://"):
            raise ApiError(400, "Bad request: url must be HTTPS")
        if not 8 <= len(secret) <= 256:
            raise ApiError(400, "Bad request: secret_token must be 8-256 characters")
        self.webhook = {"url": url, "secret_token": secret, "updated_at": int(time.time() * 1000)}
        return {"url": url, "updated_at": self.webhook["updated_at"]}

    async def _api_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = {"url": "", "secret_token": "", "updated_at": int(time.time() * 1000)}
        return {"url": "", "updated_at": self.webhook["updated_at"]}

    async def _api_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        return {"url": self.webhook["url"], "updated_at": self.webhook["updated_at"]}  # never the secret


async def post_webhook(url: str, event: dict[str, Any], *, secret: str | None, wrapped: bool = True) -> int:
    """Deliver ``event`` to a bot's webhook as Zalo would: wrapped (``{ok, result}``) or
    flat, with the ``X-Bot-Api-Secret-Token`` header (None = no header). Returns the status."""
    body = {"ok": True, "result": event} if wrapped else event
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Bot-Api-Secret-Token"] = secret
    async with aiohttp.ClientSession() as session, session.post(url, data=json.dumps(body), headers=headers) as r:
        await r.read()
        return r.status
