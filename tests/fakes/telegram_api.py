"""A fake Telegram Bot API server for end-to-end tests and delivery benchmarks.

The real aiogram ``Bot``/``Dispatcher`` talk to :class:`FakeTelegram` over HTTP on
127.0.0.1, so handlers, filters, middlewares, FSM and the HTTP session all run for real.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

MAX_TEXT = 4096          # characters (code points), counted after entity parsing
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64   # bytes of UTF-8, not characters
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message")
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BLOCKED = "Forbidden: bot was blocked by the user"
_SERVER_ERRORS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                  504: "Gateway Timeout"}

_METHODS = ["getMe", "getUpdates", "deleteWebhook", "setWebhook", "getWebhookInfo", "setMyCommands",
            "getMyCommands", "deleteMyCommands", "sendMessage", "editMessageText",
            "editMessageReplyMarkup", "deleteMessage", "answerCallbackQuery", "sendPhoto",
            "sendDocument", "sendChatAction", "close", "logOut"]
_CANONICAL = {m.lower(): m for m in _METHODS}
_COUNTED = {"sendMessage", "sendPhoto", "sendDocument"}  # what sent_count() counts

# Form values are always strings; these keys carry JSON (aiogram json.dumps-es every
# dict/list) or integers. Free-text keys are never coerced, so a message "true" stays text.
_JSON_KEYS = {"reply_markup", "entities", "caption_entities", "commands", "allowed_updates", "scope",
              "link_preview_options", "reply_parameters", "media", "results"}
_INT_KEYS = {"chat_id", "message_id", "offset", "timeout", "limit", "user_id", "from_chat_id",
             "message_thread_id", "cache_time", "max_connections"}
_TEXT_KEYS = {"text", "caption", "data", "callback_query_id", "url", "description", "command",
              "language_code", "parse_mode", "action", "inline_message_id", "secret_token"}
_BUTTON_ACTIONS = {"callback_data", "url", "web_app", "login_url", "switch_inline_query",
                   "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
                   "copy_text", "callback_game", "pay"}
# getUpdates without allowed_updates: everything except these (Bot API docs).
_OPT_IN_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}
_HTML_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
              "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
              "del": "strikethrough", "span": "spoiler", "tg-spoiler": "spoiler", "a": "text_link",
              "code": "code", "pre": "pre", "blockquote": "blockquote", "tg-emoji": "custom_emoji"}
_TAG_RE = re.compile(r"<(/?)([^\s>/]*)([^>]*)>")
_CHAR_REF_RE = re.compile(r"&(#[xX][0-9a-fA-F]+|#\d+|lt|gt|amp|quot);")


def _u16(s: str) -> int:
    """Telegram entity offsets/lengths are in UTF-16 code units."""
    return len(s.encode("utf-16-le")) // 2


class ApiError(Exception):
    """An error answer; turned into Telegram's envelope with the same HTTP status."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code, self.description, self.retry_after = code, description, retry_after

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def render_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Apply parse_mode=HTML like Telegram: return (plain text, entities) or raise 400.

    Only the tags Telegram supports are accepted, and only &lt; &gt; &amp; &quot; and
    numeric references are decoded, so an unescaped user name such as "<Lan>" fails here
    exactly as it would in production.
    """
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, str]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(source):
        nxt = re.compile(r"[<&]").search(source, i)
        end = nxt.start() if nxt else len(source)
        if end > i:
            out.append(source[i:end])
            pos += _u16(source[i:end])
            i = end
            continue
        if source[i] == "&":
            ref = _CHAR_REF_RE.match(source, i)
            if ref:
                name = ref.group(1)
                ch = (chr(int(name[2:], 16)) if name[:2].lower() == "#x" else chr(int(name[1:]))
                      if name[0] == "#" else {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[name])
                i = ref.end()
            else:
                ch, i = "&", i + 1
            out.append(ch)
            pos += _u16(ch)
            continue
        at = len(source[:i].encode())
        tag = _TAG_RE.match(source, i)
        if not tag:
            raise bad(f"can't parse entities: Unclosed start tag at byte offset {at}")
        closing, name, attrs = tag.group(1), tag.group(2).lower(), tag.group(3)
        if not closing:
            if name not in _HTML_TAGS:
                raise bad(f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {at}')
            stack.append((name, pos, attrs))
        else:
            if not stack:
                raise bad(f"can't parse entities: Unexpected end tag at byte offset {at}")
            open_name, start, open_attrs = stack.pop()
            if name != open_name:
                raise bad(f"can't parse entities: Unmatched end tag at byte offset {at}, "
                          f'expected "</{open_name}>", found "</{name}>"')
            if pos > start:
                entity = {"type": _HTML_TAGS[open_name], "offset": start, "length": pos - start}
                href = re.search(r"""href\s*=\s*["']([^"']*)["']""", open_attrs)
                if open_name == "a" and href:
                    entity["url"] = href.group(1)
                entities.append(entity)
        i = tag.end()
    if stack:
        raise bad(f'can\'t parse entities: Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


@dataclass
class Call:
    """One HTTP request as the server saw it (failed ones too; 499 = client went away)."""
    method: str          # canonical camelCase, e.g. "sendMessage"
    params: dict[str, Any]
    at: float            # time.monotonic() when the request arrived
    status: int
    content_type: str = ""


@dataclass
class UploadedFile:
    """A multipart file part; bytes are kept only when small (see FakeTelegram.keep_bytes)."""
    filename: str | None
    content_type: str | None
    size: int
    data: bytes | None = None


@dataclass
class BotMessage:
    """A message the bot sent, as it is now (edits applied)."""
    message_id: int
    chat_id: int
    kind: str                       # "text" | "photo" | "document"
    text: str                       # the text, or the caption for media
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    date: int
    media: Any = None               # photo sizes list / document dict
    upload: Any = None              # the UploadedFile or file_id/URL string the bot sent
    edited: int = 0                 # how many successful edits
    edit_date: int = 0

    @property
    def caption(self) -> str:
        return self.text

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard rows as (text, callback_data); callback_data is None for URL buttons."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [[(b["text"], b.get("callback_data")) for b in row] for row in rows]

    def to_api(self, bot_user: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {"message_id": self.message_id, "from": bot_user, "chat": chat,
                               "date": self.date}
        if self.edited:
            msg["edit_date"] = self.edit_date
        key = "text" if self.kind == "text" else "caption"
        if self.text:
            msg[key] = self.text
        if self.entities:
            msg["entities" if key == "text" else "caption_entities"] = self.entities
        if self.kind != "text":
            msg[self.kind] = self.media
        if self.reply_markup and "inline_keyboard" in self.reply_markup:  # reply keyboards aren't echoed
            msg["reply_markup"] = self.reply_markup
        return msg


class FakeTelegram:
    """An in-process HTTP server speaking the Telegram Bot API wire format.

    Wire format: ``GET|POST /bot<token>/<method>`` (method names case-insensitive) with
    parameters in the query string, a JSON body, ``application/x-www-form-urlencoded`` or
    ``multipart/form-data``. aiogram's AiohttpSession posts a form: urlencoded when there is
    no file, multipart otherwise; each file goes in its own part and the field holds
    ``attach://<part>`` (replaced here by an :class:`UploadedFile`). Non-string values are
    JSON-encoded (``reply_markup``, ``entities``, numbers, ``true``/``false``) and are decoded
    here. Every answer is ``{"ok": true, "result": ...}`` or
    ``{"ok": false, "error_code": N, "description": "...", ["parameters": {"retry_after": N}]}``
    with HTTP status N, which is what aiogram maps to TelegramBadRequest/ForbiddenError/
    RetryAfter/ServerError.

    Only private chats exist: chat id == user id, and a chat is known once the user pushed
    an update (or after :meth:`add_user`); sending elsewhere gives "chat not found".
    Message ids are per chat and shared by the user's and the bot's messages, like Telegram.
    """

    def __init__(self, token: str = "123456:TEST-TOKEN", *, bot_id: int = 123456,
                 bot_username: str = "hocvuso_test_bot") -> None:
        self.token = token
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "Học vụ số",
                         "username": bot_username, "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False,
                         "can_connect_to_business": False, "has_main_web_app": False}
        self.url = ""
        self.calls: list[Call] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.answered_callbacks: set[str] = set()
        self.callback_answers: dict[str, dict[str, Any]] = {}   # id -> answerCallbackQuery params
        self.blocked_users: set[int] = set()
        self.on_request: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None
        self.max_poll_timeout = 30.0
        self.keep_bytes = 64 * 1024
        self._users: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, dict[int, BotMessage]] = defaultdict(dict)
        self._user_message_ids: dict[int, set[int]] = defaultdict(set)
        self._last_mid: dict[int, int] = defaultdict(int)
        self._sent: dict[int, int] = defaultdict(int)
        self._queries: dict[str, int] = {}             # callback_query id -> chat id
        self._updates: list[dict[str, Any]] = []       # unconfirmed, in update_id order
        self._next_update_id = 100_000_001
        self._delivered_upto = 0
        self._allowed: set[str] | None = None
        self._webhook = ""
        self._poll_generation = 0
        self.waiting_pollers = 0
        self._inflight: dict[int, int] = defaultdict(int)
        self._last_activity: dict[int, float] = defaultdict(float)
        self._failures: dict[str, deque[ApiError]] = defaultdict(deque)
        self._rate: tuple[float, int] | None = None
        self._rate_window: deque[float] = deque()
        self._error_ratio: tuple[float, int, random.Random] | None = None
        self._latency: tuple[float, float, random.Random] | None = None
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._file)
        # handler_cancellation: when aiogram cancels a long poll (stop_polling) the
        # server-side wait is cancelled too instead of lingering until its timeout.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0,
                                     access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._closing = True        # pending long polls return [] right away
        self._notify()
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- user activity
    def add_user(self, user_id: int, *, first_name: str = "Lan", last_name: str | None = None,
                 username: str | None = None, language_code: str | None = "vi") -> dict[str, Any]:
        """Make the private chat known (as if the user had /start-ed the bot earlier)."""
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        for key, value in (("last_name", last_name), ("username", username),
                           ("language_code", language_code)):
            if value is not None:
                user[key] = value
        self._users[user_id] = user
        return user

    def _user(self, user_id: int) -> dict[str, Any]:
        return self._users.get(user_id) or self.add_user(user_id)

    def _chat_obj(self, chat_id: int) -> dict[str, Any]:
        user = self._user(chat_id)
        chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        chat.update({k: user[k] for k in ("last_name", "username") if k in user})
        return chat

    def _user_message(self, user_id: int, **content: Any) -> dict[str, Any]:
        self._last_mid[user_id] += 1
        self._user_message_ids[user_id].add(self._last_mid[user_id])
        return {"message_id": self._last_mid[user_id], "from": self._user(user_id),
                "chat": self._chat_obj(user_id), "date": int(time.time()), **content}

    def push_raw(self, update: dict[str, Any]) -> int:
        """Queue any update dict; its update_id is assigned here and returned."""
        update = {**update, "update_id": self._next_update_id}
        self._next_update_id += 1
        self._updates.append(update)
        self._notify()
        return update["update_id"]

    def push_text(self, user_id: int, text: str, *, first_name: str = "Lan",
                  last_name: str | None = None, username: str | None = None,
                  language_code: str | None = "vi") -> int:
        self.add_user(user_id, first_name=first_name, last_name=last_name, username=username,
                      language_code=language_code)
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": _u16(command)}]
        return self.push_raw({"message": self._user_message(user_id, **content)})

    def push_sticker(self, user_id: int) -> int:
        sticker = {"file_id": f"CAACAgsticker{user_id}", "file_unique_id": f"AgADst{user_id}",
                   "type": "regular", "width": 512, "height": 512, "is_animated": False,
                   "is_video": False, "emoji": "👍"}
        return self.push_raw({"message": self._user_message(user_id, sticker=sticker)})

    def push_photo(self, user_id: int, caption: str | None = None) -> int:
        extra = {"caption": caption} if caption else {}
        return self.push_raw({"message": self._user_message(
            user_id, photo=self._photo_sizes(f"user{user_id}"), **extra)})

    def push_voice(self, user_id: int, duration: int = 3) -> int:
        voice = {"file_id": f"AwACAgvoice{user_id}", "file_unique_id": f"AgADvo{user_id}",
                 "duration": duration, "mime_type": "audio/ogg", "file_size": 4096 * duration}
        return self.push_raw({"message": self._user_message(user_id, voice=voice)})

    def push_callback(self, user_id: int, data: str, *, message_id: int | None = None,
                      forged: bool = False) -> int:
        """Press an inline button on a bot message (default: latest one with a keyboard).

        Raises AssertionError (a test bug) if there is no such message or ``data`` is not
        one of its buttons, unless ``forged=True`` (to test handling of tampered data).
        """
        if message_id is None:
            with_kb = [m for m in self._messages[user_id].values() if any(m.buttons)]
            assert with_kb or forged, f"chat {user_id} has no bot message with an inline keyboard"
            message = with_kb[-1] if with_kb else None
        else:
            message = self._messages[user_id].get(message_id)
            assert message or forged, f"bot sent no message {message_id} in chat {user_id}"
        datas = [d for row in (message.buttons if message else []) for _, d in row]
        assert forged or data in datas, f"{data!r} is not a button of that message: {datas}"
        query_id = str(4_200_000_000_000_000 + self._next_update_id)
        self._queries[query_id] = user_id
        query: dict[str, Any] = {"id": query_id, "from": self._user(user_id), "data": data,
                                 "chat_instance": str(-7_000_000_000 - user_id)}
        if message:
            query["message"] = message.to_api(self.bot_user, self._chat_obj(user_id))
        return self.push_raw({"callback_query": query})

    def push_my_chat_member(self, user_id: int, status: str = "kicked") -> int:
        """The user blocked ("kicked") or unblocked ("member") the bot; updates blocked_users."""
        def member(s: str) -> dict[str, Any]:
            return {"status": s, "user": self.bot_user, **({"until_date": 0} if s == "kicked" else {})}
        old = "member" if status == "kicked" else "kicked"
        (self.blocked_users.add if status == "kicked" else self.blocked_users.discard)(user_id)
        return self.push_raw({"my_chat_member": {
            "chat": self._chat_obj(user_id), "from": self._user(user_id), "date": int(time.time()),
            "old_chat_member": member(old), "new_chat_member": member(status)}})

    # ---------------------------------------------------------------- inspection
    def chat(self, user_id: int) -> list[BotMessage]:
        """The bot's messages in this chat, oldest first, as they are now (edits applied)."""
        return list(self._messages[user_id].values())

    def last_message(self, user_id: int) -> BotMessage | None:
        messages = self.chat(user_id)
        return messages[-1] if messages else None

    def buttons(self, user_id: int) -> list[tuple[str, str | None]]:
        """Flat (text, callback_data) list of the latest bot message that has a keyboard."""
        for message in reversed(self.chat(user_id)):
            if any(message.buttons):
                return [button for row in message.buttons for button in row]
        return []

    def sent_count(self, chat_id: int) -> int:
        return self._sent[chat_id]

    def pending_updates(self) -> int:
        """Pushed updates not yet handed out by getUpdates."""
        return sum(1 for u in self._updates if u["update_id"] > self._delivered_upto)

    def calls_to(self, method: str) -> list[Call]:
        method = _CANONICAL.get(method.lower(), method)
        return [c for c in self.calls if c.method == method]

    def dump_calls(self, last: int = 15) -> str:
        lines = []
        for c in self.calls[-last:]:
            shown = {k: (v[:60] + "…" if isinstance(v, str) and len(v) > 60 else v)
                     for k, v in c.params.items()}
            lines.append(f"  {c.status} {c.method} {shown}")
        return "\n".join(lines) or "  (no calls)"

    async def wait_for(self, predicate: Callable[[FakeTelegram], Any], timeout: float = 5.0) -> None:
        """Wait until ``predicate(self)`` is truthy; re-checked after every request/push."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s; pending updates: "
                                   f"{self.pending_updates()}; last calls:\n{self.dump_calls()}")
            await self._wait_change(remaining)

    async def wait_idle(self, user_id: int, quiet: float = 0.2, timeout: float = 5.0) -> None:
        """Wait until the bot has finished reacting to what was pushed.

        Idle means: every pushed update was handed out by getUpdates, no request for this
        chat is in progress, and for ``quiet`` seconds nothing happened for this chat (no
        request, no update of this chat delivered). A handler that stays silent for longer
        than ``quiet`` in the middle of its work (slow DB, sleeps) defeats this; prefer
        :meth:`wait_for` with a precise predicate when you know what to expect.
        """
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            busy = self.pending_updates() or self._inflight[user_id]
            left = quiet - (now - self._last_activity[user_id])
            if not busy and left <= 0:
                return
            if now >= deadline:
                raise TimeoutError(f"chat {user_id} not idle within {timeout}s (pending updates: "
                                   f"{self.pending_updates()}, in flight: {self._inflight[user_id]}; "
                                   f"is polling running?); last calls:\n{self.dump_calls()}")
            await self._wait_change(deadline - now if busy else min(left, deadline - now))

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_change(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    # ---------------------------------------------------------------- fault injection
    def fail_next(self, method: str, error_code: int, description: str,
                  retry_after: int | None = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` (any method) get this error."""
        method = _CANONICAL.get(method.lower(), method)
        for _ in range(times):
            self._failures[method].append(ApiError(error_code, description, retry_after))

    def rate_limit(self, per_second: float | None, retry_after: int = 1) -> None:
        """send* beyond ``per_second`` in a sliding 1 s window (all chats) get 429; None = off."""
        self._rate = (per_second, retry_after) if per_second else None
        self._rate_window.clear()

    def error_ratio(self, ratio: float, status: int = 502, seed: int = 0) -> None:
        """That share of send* calls fail with ``status`` (seeded, reproducible); 0 = off."""
        self._error_ratio = (ratio, status, random.Random(seed)) if ratio > 0 else None

    def latency(self, min_s: float, max_s: float, seed: int = 0) -> None:
        """Each send* request sleeps uniform(min_s, max_s) first; latency(0, 0) = off."""
        self._latency = (min_s, max_s, random.Random(seed)) if max_s > 0 else None

    def _faults(self, method: str, params: dict[str, Any]) -> None:
        if self.on_request and (override := self.on_request(method, params)) is not None:
            if override.get("ok"):
                raise _Override(override.get("result", True))
            raise ApiError(override["error_code"], override["description"],
                           (override.get("parameters") or {}).get("retry_after"))
        if self._failures[method]:
            raise self._failures[method].popleft()
        if not method.startswith("send"):
            return
        if self._rate:
            now = time.monotonic()
            while self._rate_window and now - self._rate_window[0] >= 1.0:
                self._rate_window.popleft()
            if len(self._rate_window) >= self._rate[0]:
                n = self._rate[1]
                raise ApiError(429, f"Too Many Requests: retry after {n}", retry_after=n)
            self._rate_window.append(now)
        if self._error_ratio and self._error_ratio[2].random() < self._error_ratio[0]:
            status = self._error_ratio[1]
            raise ApiError(status, _SERVER_ERRORS.get(status, "Internal Server Error"))

    # ---------------------------------------------------------------- HTTP plumbing
    async def _file(self, request: web.Request) -> web.Response:
        return web.json_response(ApiError(404, "Not Found").envelope(), status=404)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad("can't parse JSON") from None
            params.update(body if isinstance(body, dict) else {})
        elif request.content_type == "multipart/form-data":
            files: dict[str, UploadedFile] = {}
            async for part in await request.multipart():
                if part.filename is None:
                    params[part.name] = await part.text()
                    continue
                size, head = 0, bytearray()
                while chunk := await part.read_chunk():   # stream: never hold a giant upload
                    size += len(chunk)
                    if len(head) <= self.keep_bytes:
                        head += chunk
                files[part.name] = UploadedFile(part.filename, part.headers.get("Content-Type"),
                                                size, bytes(head) if size <= self.keep_bytes else None)
            for key, value in list(params.items()):
                if isinstance(value, str) and value.startswith("attach://"):
                    params[key] = files.pop(value[len("attach://"):], value)
            params.update(files)                 # a file sent directly under its field name
        else:
            params.update(await request.post())
        return {key: self._coerce(key, value) for key, value in params.items()}

    @staticmethod
    def _coerce(key: str, value: Any) -> Any:
        if not isinstance(value, str) or key in _TEXT_KEYS:
            return value
        if key in _JSON_KEYS:
            try:
                return json.loads(value)
            except ValueError:
                raise bad(f"can't parse {key} JSON object") from None
        if key in _INT_KEYS and re.fullmatch(r"-?\d+", value):
            return int(value)
        return {"true": True, "false": False}.get(value, value)

    def _chat_of(self, method: str, params: dict[str, Any]) -> int | None:
        if method == "answerCallbackQuery":
            return self._queries.get(params.get("callback_query_id", ""))
        chat_id = params.get("chat_id")
        return chat_id if isinstance(chat_id, int) else None

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        name = request.match_info["method"]
        method = _CANONICAL.get(name.lower(), name)
        params: dict[str, Any] = {}
        status, body, chat = 499, None, None
        try:
            params = await self._read_params(request)
            chat = self._chat_of(method, params)
            if chat is not None:
                self._inflight[chat] += 1
                self._touch(chat)
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if method.lower() not in _CANONICAL:
                raise ApiError(404, "Not Found")
            if self._latency and method.startswith("send"):
                await asyncio.sleep(self._latency[2].uniform(*self._latency[:2]))
            try:
                self._faults(method, params)
                result = await getattr(self, f"_api_{method}")(params)
            except _Override as override:
                result = override.result
            status, body = 200, {"ok": True, "result": result}
            if method in _COUNTED and chat is not None:
                self._sent[chat] += 1
        except ApiError as error:
            status, body = error.code, error.envelope()
        except Exception:
            status = 500                # a bug in this fake: let aiohttp log it loudly
            raise
        finally:
            if chat is not None:
                self._inflight[chat] -= 1
                self._touch(chat)
            self.calls.append(Call(method, params, at, status, request.content_type))
            self._notify()
        return web.json_response(body, status=status)

    def _touch(self, chat_id: int) -> None:
        self._last_activity[chat_id] = time.monotonic()

    # ---------------------------------------------------------------- validation helpers
    def _target_chat(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise bad("chat_id is empty")
        if chat_id in self.blocked_users:
            raise ApiError(403, BLOCKED)
        if not isinstance(chat_id, int) or chat_id not in self._users:
            raise bad("chat not found")
        return chat_id

    @staticmethod
    def _render(params: dict[str, Any], key: str) -> tuple[str, list[dict[str, Any]]]:
        text = params.get(key) or ""
        mode = (params.get("parse_mode") or "").lower()
        if params.get("entities" if key == "text" else "caption_entities"):
            return text, params["entities" if key == "text" else "caption_entities"]
        if mode == "html":
            return render_html(text)
        if mode not in ("", "markdown", "markdownv2"):   # Markdown is accepted but not parsed
            raise bad(f"unsupported parse_mode {params['parse_mode']!r}")
        return text, []

    def _text(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        text, entities = self._render(params, "text")
        if not text.strip():
            raise bad("message text is empty")
        if len(text) > MAX_TEXT:
            raise bad("message is too long")
        return text, entities

    def _caption(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        caption, entities = self._render(params, "caption")
        if len(caption) > MAX_CAPTION:
            raise bad("message caption is too long")
        return caption, entities

    @staticmethod
    def _markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
                raise bad("can't parse reply keyboard markup JSON object")
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad('can\'t parse inline keyboard button: Field "inline_keyboard" must be of type Array')
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad('can\'t parse inline keyboard button: Can\'t find field "text"')
            if not _BUTTON_ACTIONS & button.keys():
                raise bad("can't parse inline keyboard button: "
                          "Text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if "callback_data" in button and (
                    not isinstance(data, str) or not data or len(data.encode()) > MAX_CALLBACK_DATA):
                raise bad("BUTTON_DATA_INVALID")
            if "url" in button and not re.match(r"(https?|tg)://\S", str(button["url"])):
                raise bad("BUTTON_URL_INVALID")
        return markup if any(rows) else None

    def _store(self, chat_id: int, kind: str, text: str, entities: list[dict[str, Any]],
               markup: dict[str, Any] | None, **media: Any) -> dict[str, Any]:
        self._last_mid[chat_id] += 1
        message = BotMessage(self._last_mid[chat_id], chat_id, kind, text, entities, markup,
                             int(time.time()), **media)
        self._messages[chat_id][message.message_id] = message
        return message.to_api(self.bot_user, self._chat_obj(chat_id))

    def _editable(self, params: dict[str, Any]) -> BotMessage:
        if params.get("inline_message_id"):
            raise bad("MESSAGE_ID_INVALID")   # inline mode is not simulated
        chat_id = self._target_chat(params)
        message = self._messages[chat_id].get(params.get("message_id"))  # type: ignore[arg-type]
        if message is None:
            if params.get("message_id") in self._user_message_ids[chat_id]:
                raise bad("message can't be edited")
            raise bad("message to edit not found")
        return message

    @staticmethod
    def _inline(markup: dict[str, Any] | None) -> dict[str, Any] | None:
        return markup if markup and "inline_keyboard" in markup else None

    @staticmethod
    def _photo_sizes(seed: str) -> list[dict[str, Any]]:
        return [{"file_id": f"AgACAgph{seed}_{w}", "file_unique_id": f"AQAD{seed}{w}",
                 "width": w, "height": w * 3 // 4, "file_size": w * 60} for w in (90, 800)]

    # ---------------------------------------------------------------- Bot API methods
    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        if self._webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        # A newer getUpdates terminates an older one, as in production (two pollers = bug).
        self._poll_generation += 1
        generation = self._poll_generation
        offset = params.get("offset")
        if isinstance(offset, int) and offset < 0:
            self._updates = self._updates[offset:]
        elif isinstance(offset, int):
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if "allowed_updates" in params:
            self._allowed = set(params["allowed_updates"] or []) or None
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), self.max_poll_timeout)
        deadline = time.monotonic() + timeout
        self.waiting_pollers += 1
        self._notify()                  # lets tests wait_for(lambda t: t.waiting_pollers)
        try:
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                        "make sure that only one bot instance is running")
                # Telegram never sends unwanted types: they vanish as if fetched.
                for update in [u for u in self._updates if not self._wanted(u)]:
                    self._delivered_upto = max(self._delivered_upto, update["update_id"])
                    self._updates.remove(update)
                batch = self._updates[:limit]
                remaining = deadline - time.monotonic()
                if batch or self._closing or remaining <= 0:
                    break
                await self._wait_change(remaining)
        finally:
            self.waiting_pollers -= 1
        for update in batch:
            self._delivered_upto = max(self._delivered_upto, update["update_id"])
            if (chat := _update_chat(update)) is not None:
                self._touch(chat)
        return batch

    def _wanted(self, update: dict[str, Any]) -> bool:
        kinds = update.keys() - {"update_id"}
        return bool(kinds & self._allowed) if self._allowed else not kinds & _OPT_IN_UPDATES

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url") or ""
        if url and not url.startswith("https://"):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        self._webhook = url
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self._webhook = ""
        if params.get("drop_pending_updates"):
            self._delivered_upto = max([self._delivered_upto] +
                                       [u["update_id"] for u in self._updates])
            self._updates = []
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": self._webhook, "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        kind = scope.get("type", "default")
        target = scope.get("chat_id", "")
        target = f"{target}:{scope['user_id']}" if "user_id" in scope else target
        return (f"{kind}:{target}" if target != "" else kind), params.get("language_code") or ""

    async def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise bad("command description is empty" if not c.get("description")
                          else "BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._scope_key(params)] = commands
        return True

    async def _api_getMyCommands(self, params: dict[str, Any]) -> Any:
        return self.commands.get(self._scope_key(params), [])

    async def _api_deleteMyCommands(self, params: dict[str, Any]) -> Any:
        self.commands.pop(self._scope_key(params), None)
        return True

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = self._target_chat(params)
        text, entities = self._text(params)
        return self._store(chat_id, "text", text, entities, self._markup(params.get("reply_markup")))

    async def _api_sendPhoto(self, params: dict[str, Any]) -> Any:
        chat_id = self._target_chat(params)
        photo = params.get("photo")
        if not photo:
            raise bad("there is no photo in the request")
        caption, entities = self._caption(params)
        sizes = self._photo_sizes(f"{chat_id}_{self._last_mid[chat_id] + 1}")
        return self._store(chat_id, "photo", caption, entities,
                           self._markup(params.get("reply_markup")), media=sizes, upload=photo)

    async def _api_sendDocument(self, params: dict[str, Any]) -> Any:
        chat_id = self._target_chat(params)
        document = params.get("document")
        if not document:
            raise bad("there is no document in the request")
        caption, entities = self._caption(params)
        n = f"{chat_id}_{self._last_mid[chat_id] + 1}"
        doc: dict[str, Any] = {"file_id": f"BQACAgdoc{n}", "file_unique_id": f"AgADdoc{n}"}
        if isinstance(document, UploadedFile):
            doc.update(file_name=document.filename, mime_type=document.content_type or
                       "application/octet-stream", file_size=document.size)
        return self._store(chat_id, "document", caption, entities,
                           self._markup(params.get("reply_markup")), media=doc, upload=document)

    async def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        self._target_chat(params)
        if not params.get("action"):
            raise bad("action is empty")
        return True

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._editable(params)
        if message.kind != "text":
            raise bad("there is no text in the message to edit")
        text, entities = self._text(params)
        # Omitting reply_markup in an edit removes the inline keyboard, as in production.
        markup = self._inline(self._markup(params.get("reply_markup")))
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise bad(NOT_MODIFIED[len("Bad Request: "):])
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.edited, message.edit_date = message.edited + 1, int(time.time())
        return message.to_api(self.bot_user, self._chat_obj(message.chat_id))

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._editable(params)
        markup = self._inline(self._markup(params.get("reply_markup")))
        if markup == message.reply_markup:
            raise bad(NOT_MODIFIED[len("Bad Request: "):])
        message.reply_markup = markup
        message.edited, message.edit_date = message.edited + 1, int(time.time())
        return message.to_api(self.bot_user, self._chat_obj(message.chat_id))

    async def _api_deleteMessage(self, params: dict[str, Any]) -> Any:
        chat_id = self._target_chat(params)
        if self._messages[chat_id].pop(params.get("message_id"), None) is None:  # type: ignore[arg-type]
            raise bad("message to delete not found")
        return True

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        query_id = params.get("callback_query_id")
        if query_id not in self._queries or query_id in self.answered_callbacks:
            raise bad(QUERY_INVALID[len("Bad Request: "):])
        self.answered_callbacks.add(query_id)
        self.callback_answers[query_id] = params
        return True

    async def _api_close(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_logOut(self, params: dict[str, Any]) -> Any:
        return True


class _Override(Exception):
    """on_request returned a success envelope: answer it instead of running the method."""

    def __init__(self, result: Any) -> None:
        self.result = result


def _update_chat(update: dict[str, Any]) -> int | None:
    for key, value in update.items():
        if isinstance(value, dict):
            chat = value.get("chat") or (value.get("message") or {}).get("chat") or {}
            return chat.get("id") or (value.get("from") or {}).get("id")
    return None
