"""A small httpx client for the Zalo Bot Platform (``POST {api}/bot{token}/{method}``, JSON).

We write our own instead of using ``python-zalo-bot``: that package is an alpha fork that
breaks inside a running event loop and never checks ``ok`` in the answer.

The bot token is part of the URL path, so this module never logs a URL, never lets a raw
httpx exception (which may quote the request) escape, and redacts the token from httpx's
own "HTTP Request: POST …" log line.
"""

from __future__ import annotations

from bot.core.text import is_plain_int

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)

RATE_LIMITED = 429
POLL_TIMEOUT = 408  # getUpdates answered "no update within the timeout": not an error


class _SecretRedactor(logging.Filter):
    """Replaces registered secrets in records of the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, None
        return True


_REDACTOR = _SecretRedactor()


def redact_in_httpx_logs(secret: str) -> None:
    """httpx logs every request URL at INFO; the Zalo bot token travels in that URL.

    A filter on the ``httpx`` logger applies to the records httpx creates, whatever
    handlers the application (or pytest's caplog) installs later.
    """
    if secret:
        _REDACTOR.secrets.add(secret)
        logging.getLogger("httpx").addFilter(_REDACTOR)  # idempotent for the same filter


class ZaloBotError(Exception):
    """A failed Bot API call. The message names the method and the error, never the URL.

    ``code`` is Zalo's ``error_code`` (else the HTTP status); 0 means no answer at all
    (network error or timeout).
    """

    def __init__(self, method: str, code: int, description: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"Zalo Bot API {method}: {code} {description}".rstrip())
        self.method = method
        self.code = code
        self.description = description
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth retrying later: no answer, a server error, or 403 (which Zalo's error table
        lists as "internal server error")."""
        return self.code == 0 or self.code >= 500 or self.code in (403, 408)


class ZaloBotClient:
    """The Bot API methods the adapter and the outbox transport use."""

    def __init__(
        self,
        *,
        token: str,
        api_url: str,
        timeout: float = 15.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Zalo bot token is required")
        self._token = token
        self._base = api_url.rstrip("/")
        self._timeout = timeout
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        redact_in_httpx_logs(token)

    async def close(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Call ``method``; return its ``result`` (None when the answer has none).

        Raises :class:`ZaloBotError` for an ``ok: false`` body (whatever the HTTP status),
        for an error status, for a body that is not JSON, and for network errors.
        """
        url = f"{self._base}/bot{self._token}/{method}"
        try:
            response = await self._http.post(url, json=params or {}, timeout=timeout or self._timeout)
        except httpx.TimeoutException:
            raise ZaloBotError(method, 0, "timeout") from None
        except httpx.HTTPError as exc:
            # Only the class name: an httpx message may quote the request URL (the token).
            raise ZaloBotError(method, 0, f"network error ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ZaloBotError(method, response.status_code, f"HTTP {response.status_code}, no JSON body")
        if body.get("ok") is True and response.is_success:
            return body.get("result")
        code = body.get("error_code")
        code = int(code) if isinstance(code, int | str) and is_plain_int(str(code).lstrip("-")) else response.status_code
        description = str(body.get("description") or "").replace(self._token, "***")[:200]
        retry_after = _retry_after(body)
        raise ZaloBotError(method, code, description, retry_after=retry_after)

    # -- methods ----------------------------------------------------------------------

    async def get_me(self) -> dict[str, Any]:
        return await self.call("getMe") or {}

    async def get_updates(self, *, timeout: float = 30) -> dict[str, Any] | None:
        """One update, or None when the long poll ended without one (408)."""
        try:
            result = await self.call("getUpdates", {"timeout": str(int(timeout))}, timeout=timeout + 10)
        except ZaloBotError as exc:
            if exc.code == POLL_TIMEOUT:
                return None
            raise
        # The method returns one update object; tolerate a list in case that ever changes.
        if isinstance(result, list):
            return result[0] if result else None
        return result if isinstance(result, dict) and result else None

    async def send_message(self, chat_id: str, text: str) -> dict[str, Any]:
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text}) or {}

    async def send_photo(self, chat_id: str, photo_url: str, caption: str = "") -> dict[str, Any]:
        params = {"chat_id": chat_id, "photo": photo_url}
        if caption:
            params["caption"] = caption
        return await self.call("sendPhoto", params) or {}

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> None:
        await self.call("sendChatAction", {"chat_id": chat_id, "action": action})

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """A file Zalo points to (a user's photo). The token is not in such URLs; errors say
        only the class of failure, never the URL."""
        try:
            async with self._http.stream("GET", url, timeout=self._timeout) as response:
                if not response.is_success:
                    raise ZaloBotError("download", response.status_code, "file not available")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise ZaloBotError("download", 413, f"file larger than {max_bytes} bytes")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise ZaloBotError("download", 0, f"network error ({type(exc).__name__})") from None

    async def set_webhook(self, url: str, secret_token: str) -> dict[str, Any]:
        return await self.call("setWebhook", {"url": url, "secret_token": secret_token}) or {}

    async def delete_webhook(self) -> dict[str, Any]:
        return await self.call("deleteWebhook") or {}

    async def get_webhook_info(self) -> dict[str, Any]:
        return await self.call("getWebhookInfo") or {}


def _retry_after(body: dict[str, Any]) -> float | None:
    """Zalo documents no retry hint; accept Telegram's ``parameters.retry_after`` (the Bot
    Platform is a Telegram look-alike) or a top-level ``retry_after`` if one ever appears."""
    for value in ((body.get("parameters") or {}).get("retry_after"), body.get("retry_after")):
        try:
            if value is not None and float(value) >= 0:
                return float(value)
        except (TypeError, ValueError):
            continue
    return None
