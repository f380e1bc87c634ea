"""A fake Telegram Bot API server for end-to-end tests and delivery benchmarks.

The real aiogram ``Bot``/``Dispatcher`` talk to :class:`FakeTelegram` over HTTP on
127.0.0.1, so handlers, filters, middlewares, FSM and the HTTP session all run for real.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from http import HTTPStatus
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

MAX_TEXT, MAX_CAPTION = 4096, 1024   # characters (code points) after entity parsing
MAX_CALLBACK_DATA = 64               # bytes of UTF-8, not characters
NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message")
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
COUNTED = {"sendMessage", "sendPhoto", "sendDocument"}   # what sent_count() counts

# Form values are always strings: aiogram json.dumps-es every non-string (dicts, lists,
# ints, bools). These keys are decoded; free-text keys are never touched ("true" stays text).
JSON_KEYS = {"reply_markup", "entities", "caption_entities", "commands", "allowed_updates",
             "scope", "link_preview_options", "reply_parameters", "media"}
INT_KEYS = {"chat_id", "message_id", "offset", "timeout", "limit", "user_id", "cache_time"}
TEXT_KEYS = {"text", "caption", "data", "callback_query_id", "url", "parse_mode", "action",
             "language_code", "inline_message_id"}
BUTTON_ACTIONS = {"callback_data", "url", "web_app", "login_url", "switch_inline_query",
                  "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
                  "copy_text", "callback_game", "pay"}
OPT_IN_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}
HTML_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
             "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
             "del": "strikethrough", "span": "spoiler", "tg-spoiler": "spoiler", "a": "text_link",
             "code": "code", "pre": "pre", "blockquote": "blockquote", "tg-emoji": "custom_emoji"}
# One token: a tag, a stray "<", or a character reference that Telegram decodes.
_HTML_TOKEN = re.compile(r"<(/?)([^\s>/]*)([^>]*)>|<|&(#[xX][0-9a-fA-F]+|#\d+|lt|gt|amp|quot);")


def _u16(s: str) -> int:
    """Entity offsets and lengths are counted in UTF-16 code units."""
    return len(s.encode("utf-16-le")) // 2


class ApiError(Exception):
    """An error answer, sent as Telegram's envelope with HTTP status == error_code."""

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
    """parse_mode=HTML as Telegram does it: (plain text, entities), or a 400 ApiError.

    Only Telegram's tags and the references &lt; &gt; &amp; &quot; &#N; are understood, so
    an unescaped name such as "<Lan>" is rejected here exactly as in production.
    """
    out: list[str] = []
    stack: list[tuple[str, int, str]] = []
    entities: list[dict[str, Any]] = []
    done = 0
    for token in _HTML_TOKEN.finditer(source):
        out.append(source[done:token.start()])
        done, at, pos = token.end(), len(source[:token.start()].encode()), _u16("".join(out))
        closing, name, attrs, ref = token.groups()
        name = (name or "").lower()
        if ref:
            out.append(chr(int(ref[2:], 16)) if ref[:2] in ("#x", "#X") else chr(int(ref[1:]))
                       if ref[0] == "#" else {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[ref])
        elif closing is None:
            raise bad(f"can't parse entities: Unclosed start tag at byte offset {at}")
        elif not closing:
            if name not in HTML_TAGS:
                raise bad(f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {at}')
            stack.append((name, pos, attrs))
        elif not stack or stack[-1][0] != name:
            expected = f'expected "</{stack[-1][0]}>", ' if stack else ""
            raise bad(f"can't parse entities: Unmatched end tag at byte offset {at}, "
                      f'{expected}found "</{name}>"')
        else:
            name, start, attrs = stack.pop()
            entity = {"type": HTML_TAGS[name], "offset": start, "length": pos - start}
            if href := re.search(r"""href\s*=\s*["']([^"']*)["']""", attrs):
                entity["url"] = href.group(1)
            entities += [entity] if pos > start else []
    if stack:
        raise bad(f'can\'t parse entities: Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out) + source[done:], sorted(entities, key=lambda e: (e["offset"], -e["length"]))


@dataclass
class Call:
    """One HTTP request as the server saw it (failed ones too; 499 = client went away)."""
    method: str              # canonical camelCase, e.g. "sendMessage"
    params: dict[str, Any]   # decoded: ints, bools, JSON objects, UploadedFile for files
    at: float                # time.monotonic() at arrival
    status: int
    content_type: str = ""


@dataclass
class UploadedFile:
    """A multipart file part; ``data`` is kept only up to FakeTelegram.keep_bytes."""
    filename: str | None
    content_type: str | None
    size: int
    data: bytes | None = None


@dataclass
class BotMessage:
    """A message the bot sent, as it is now (edits applied)."""
    message_id: int
    chat_id: int
    kind: str                          # "text" | "photo" | "document"
    text: str                          # the text, or the caption of a photo/document
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    date: int
    media: Any = None                  # PhotoSize list / Document dict as returned
    upload: Any = None                 # what the bot sent: UploadedFile, file_id or URL
    edited: int = 0                    # number of successful edits
    edit_date: int = 0

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard rows of (text, callback_data); callback_data is None for URL buttons."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [[(b["text"], b.get("callback_data")) for b in row] for row in rows]

    def to_api(self, bot_user: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {"message_id": self.message_id, "from": bot_user, "chat": chat,
                               "date": self.date}
        is_text = self.kind == "text"
        if self.text:
            msg["text" if is_text else "caption"] = self.text
        if self.entities:
            msg["entities" if is_text else "caption_entities"] = self.entities
        if not is_text:
            msg[self.kind] = self.media
        if self.edited:
            msg["edit_date"] = self.edit_date
        if self.reply_markup and "inline_keyboard" in self.reply_markup:  # reply keyboards aren't echoed
            msg["reply_markup"] = self.reply_markup
        return msg


class FakeTelegram:
    """An in-process HTTP server speaking the Telegram Bot API wire format.

    Requests: ``GET|POST /bot<token>/<method>``, method names case-insensitive, parameters
    in the query string, a JSON body, ``application/x-www-form-urlencoded`` or
    ``multipart/form-data``. aiogram's AiohttpSession posts a form, urlencoded unless a file
    is attached; a file travels in its own part and the field holds ``attach://<part>``
    (replaced here by an :class:`UploadedFile`). Non-string values arrive JSON-encoded and
    are decoded. Answers: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N,
    "description": "..."}`` (+ ``"parameters": {"retry_after": N}`` for 429) with HTTP status
    N; aiogram turns those into TelegramBadRequest/ForbiddenError/RetryAfter/ServerError.

    Only private chats exist: chat id == user id. A chat is known once its user pushed an
    update (or after :meth:`add_user`); sending anywhere else gives "chat not found".
    Message ids are per chat and shared by the user's and the bot's messages, as in Telegram.
    parse_mode=HTML is applied (and validated) like Telegram; Markdown modes are accepted
    but stored unparsed. ``getFile`` and downloads (``/file/bot<token>/<file_path>``) serve
    the bytes of photos pushed with ``push_photo(data=…)``; anything else is 400 / 404.
    """

    def __init__(self, token: str = "123456:TEST-TOKEN", *, bot_id: int = 123456,
                 bot_username: str = "hocvuso_test_bot") -> None:
        self.token, self.url = token, ""
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "Học vụ số",
                         "username": bot_username, "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False,
                         "can_connect_to_business": False, "has_main_web_app": False}
        self.calls: list[Call] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (scope, lang) -> list
        self.answered_callbacks: set[str] = set()
        self.callback_answers: dict[str, dict[str, Any]] = {}   # id -> answerCallbackQuery params
        self.blocked_users: set[int] = set()
        self.on_request: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None
        self.max_poll_timeout = 30.0
        self.keep_bytes = 64 * 1024
        self.waiting_pollers = 0                            # getUpdates calls waiting now
        self.accept_any_chat = False                        # True: any chat id exists (benchmarks)
        self.files: dict[str, bytes] = {}                   # file_id -> bytes (getFile, downloads)
        self.photo_ids: set[str] = set()                    # file ids of the photos the bot sent
        self.downloads: list[str] = []                      # file paths downloaded
        self._users: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, dict[int, BotMessage]] = defaultdict(dict)
        self._last_mid: dict[int, int] = defaultdict(int)
        self._sent: dict[int, int] = defaultdict(int)
        self._queries: dict[str, int] = {}                  # callback query id -> chat id
        self._updates: list[dict[str, Any]] = []            # unconfirmed, by update_id
        self._next_update_id, self._delivered_upto = 100_000_001, 0
        self._allowed: set[str] | None = None
        self._webhook, self._poll_generation = "", 0
        self.webhook_secret: str | None = None
        self.webhook_answers: list[int] = []                # HTTP status of each webhook delivery (0: none)
        self.webhook_delivery = True                        # False: the test delivers updates itself (take)
        self._deliverer: asyncio.Task[None] | None = None
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

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> str:
        """Listen on 127.0.0.1 (free port); return and remember the base URL."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        # handler_cancellation: when aiogram drops a long poll (stop_polling), the waiting
        # handler is cancelled instead of lingering until its timeout.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0,
                                     access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        self._closing = True                 # waiting long polls answer [] at once
        self._notify()
        if self._deliverer is not None:
            self._deliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._deliverer
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ user activity
    def add_user(self, user_id: int, *, first_name: str = "Lan", last_name: str | None = None,
                 username: str | None = None, language_code: str | None = "vi") -> dict[str, Any]:
        """Make the private chat known, as if the user had started the bot earlier."""
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "last_name": last_name,
                "username": username, "language_code": language_code}
        self._users[user_id] = {k: v for k, v in user.items() if v is not None}
        return self._users[user_id]

    def _user(self, user_id: int) -> dict[str, Any]:
        return self._users.get(user_id) or self.add_user(user_id)

    def _chat(self, chat_id: int) -> dict[str, Any]:
        user = self._user(chat_id)
        return {"id": chat_id, "type": "private",
                **{k: user[k] for k in ("first_name", "last_name", "username") if k in user}}

    def _user_message(self, user_id: int, **content: Any) -> dict[str, Any]:
        self._last_mid[user_id] += 1
        return {"message_id": self._last_mid[user_id], "from": self._user(user_id),
                "chat": self._chat(user_id), "date": int(time.time()), **content}

    def push_raw(self, update: dict[str, Any]) -> int:
        """Queue any update dict; assigns and returns its update_id."""
        update = {**update, "update_id": self._next_update_id}
        self._next_update_id += 1
        self._updates.append(update)
        self._notify()
        return update["update_id"]

    def take(self, update_id: int) -> dict[str, Any]:
        """Remove a pushed update from the queue and return it, as it would be posted to a
        webhook: the test delivers it itself (to one web replica or another)."""
        [update] = [u for u in self._updates if u["update_id"] == update_id]
        self._updates.remove(update)
        self._delivered_upto = max(self._delivered_upto, update_id)
        if (chat := _update_chat(update)) is not None:
            self._last_activity[chat] = time.monotonic()
        self._notify()
        return update

    def push_text(self, user_id: int, text: str, *, first_name: str = "Lan",
                  last_name: str | None = None, username: str | None = None,
                  language_code: str | None = "vi") -> int:
        """The user writes ``text``; a leading "/command" gets its bot_command entity."""
        self.add_user(user_id, first_name=first_name, last_name=last_name, username=username,
                      language_code=language_code)
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = _u16(text.split(maxsplit=1)[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.push_raw({"message": self._user_message(user_id, **content)})

    def push_sticker(self, user_id: int) -> int:
        sticker = {"file_id": f"CAACsticker{user_id}", "file_unique_id": f"AgADs{user_id}",
                   "type": "regular", "width": 512, "height": 512, "is_animated": False,
                   "is_video": False, "emoji": "👍"}
        return self.push_raw({"message": self._user_message(user_id, sticker=sticker)})

    def push_photo(self, user_id: int, caption: str | None = None, *, data: bytes | None = None) -> int:
        """A photo from the user; with ``data``, its largest size can be downloaded."""
        extra = {"caption": caption} if caption else {}
        photo = self._photo_sizes(f"u{user_id}_{self._next_update_id}")
        if data is not None:
            photo[-1]["file_size"] = len(data)
            self.files[photo[-1]["file_id"]] = data
        return self.push_raw({"message": self._user_message(user_id, photo=photo, **extra)})

    def push_voice(self, user_id: int, duration: int = 3) -> int:
        voice = {"file_id": f"AwACvoice{user_id}", "file_unique_id": f"AgADv{user_id}",
                 "duration": duration, "mime_type": "audio/ogg", "file_size": 4000 * duration}
        return self.push_raw({"message": self._user_message(user_id, voice=voice)})

    def push_callback(self, user_id: int, data: str, *, message_id: int | None = None,
                      forged: bool = False) -> int:
        """The user presses an inline button on a bot message (default: the latest one
        with a keyboard). AssertionError if there is no such message or ``data`` is not one
        of its buttons, unless ``forged=True`` (to test tampered or stale data on purpose)."""
        if message_id is None:
            with_kb = [m for m in self._messages[user_id].values() if any(m.buttons)]
            message = with_kb[-1] if with_kb else None
        else:
            message = self._messages[user_id].get(message_id)
        assert message or forged, f"no bot message with a keyboard ({message_id=}) in chat {user_id}"
        datas = [d for row in (message.buttons if message else []) for _, d in row]
        assert forged or data in datas, f"{data!r} is not a button of that message: {datas}"
        query_id = str(4_200_000_000_000_000 + self._next_update_id)
        self._queries[query_id] = user_id
        query = {"id": query_id, "from": self._user(user_id), "data": data,
                 "chat_instance": str(-7_000_000_000 - user_id)}
        if message:
            query["message"] = message.to_api(self.bot_user, self._chat(user_id))
        return self.push_raw({"callback_query": query})

    def push_my_chat_member(self, user_id: int, status: str = "kicked") -> int:
        """The user blocked ("kicked") or unblocked ("member") the bot; keeps blocked_users in step."""
        def member(s: str) -> dict[str, Any]:
            return {"status": s, "user": self.bot_user, **({"until_date": 0} if s == "kicked" else {})}
        (self.blocked_users.add if status == "kicked" else self.blocked_users.discard)(user_id)
        return self.push_raw({"my_chat_member": {
            "chat": self._chat(user_id), "from": self._user(user_id), "date": int(time.time()),
            "old_chat_member": member("member" if status == "kicked" else "kicked"),
            "new_chat_member": member(status)}})

    # ------------------------------------------------------------------ inspection
    def chat(self, user_id: int) -> list[BotMessage]:
        """The bot's messages in this chat, oldest first, as they are now (edits applied)."""
        return list(self._messages[user_id].values())

    def last_message(self, user_id: int) -> BotMessage | None:
        return next(reversed(self._messages[user_id].values()), None)

    def buttons(self, user_id: int) -> list[tuple[str, str | None]]:
        """Flat (text, callback_data) list of the latest bot message that has a keyboard."""
        for message in reversed(self.chat(user_id)):
            if any(message.buttons):
                return [button for row in message.buttons for button in row]
        return []

    def sent_count(self, chat_id: int) -> int:
        """Successful sendMessage/sendPhoto/sendDocument calls to this chat."""
        return self._sent[chat_id]

    def pending_updates(self) -> int:
        """Pushed updates that no getUpdates answer has handed out yet."""
        return sum(1 for u in self._updates if u["update_id"] > self._delivered_upto)

    def calls_to(self, method: str) -> list[Call]:
        method = _CANONICAL.get(method.lower(), method)
        return [c for c in self.calls if c.method == method]

    def dump_calls(self, last: int = 15) -> str:
        def short(v: Any) -> Any:
            return v[:60] + "…" if isinstance(v, str) and len(v) > 60 else v
        return "\n".join(f"  {c.status} {c.method} {({k: short(v) for k, v in c.params.items()})}"
                         for c in self.calls[-last:]) or "  (no calls)"

    async def wait_for(self, predicate: Callable[[FakeTelegram], Any], timeout: float = 5.0) -> None:
        """Wait until ``predicate(self)`` is truthy; re-checked after every request and push."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if (remaining := deadline - time.monotonic()) <= 0:
                raise TimeoutError(f"condition not met within {timeout}s; pending updates: "
                                   f"{self.pending_updates()}; last calls:\n{self.dump_calls()}")
            await self._wait_change(remaining)

    async def wait_idle(self, user_id: int, quiet: float = 0.2, timeout: float = 5.0) -> None:
        """Wait until the bot has finished reacting to what was pushed.

        Idle means: every pushed update was handed out by getUpdates, no request for this
        chat is being served, and for ``quiet`` seconds nothing happened in this chat (no
        request for it, none of its updates delivered). A handler that stays silent longer
        than ``quiet`` mid-work (slow I/O, sleeps) defeats this: raise ``quiet`` or use
        :meth:`wait_for` with a precise predicate. Raises TimeoutError with a call dump.
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
                                   f"{self.pending_updates()}, in flight: {self._inflight[user_id]};"
                                   f" is polling running?); last calls:\n{self.dump_calls()}")
            await self._wait_change(deadline - now if busy else min(left, deadline - now))

    def _notify(self) -> None:
        """Wake every waiter (long polls, wait_for, wait_idle): they re-check their condition."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_change(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ fault injection
    def fail_next(self, method: str, error_code: int, description: str,
                  retry_after: int | None = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` (any method, getUpdates too) get this error."""
        method = _CANONICAL.get(method.lower(), method)
        self._failures[method].extend(ApiError(error_code, description, retry_after)
                                      for _ in range(times))

    def rate_limit(self, per_second: float | None, retry_after: int = 1) -> None:
        """send* calls beyond ``per_second`` in a sliding 1 s window (all chats together)
        get 429 "Too Many Requests: retry after N"; None or 0 turns it off."""
        self._rate = (per_second, retry_after) if per_second else None
        self._rate_window.clear()

    def error_ratio(self, ratio: float, status: int = 502, seed: int = 0) -> None:
        """That share of send* calls fail with ``status`` (seeded, so reproducible); 0 = off."""
        self._error_ratio = (ratio, status, random.Random(seed)) if ratio > 0 else None

    def latency(self, min_s: float, max_s: float, seed: int = 0) -> None:
        """Every send* request first sleeps uniform(min_s, max_s) seconds; latency(0, 0) = off."""
        self._latency = (min_s, max_s, random.Random(seed)) if max_s > 0 else None

    def _inject_faults(self, method: str, params: dict[str, Any]) -> None:
        if self.on_request and (error := self.on_request(method, params)):
            raise ApiError(error["error_code"], error["description"],
                           (error.get("parameters") or {}).get("retry_after"))
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
            raise ApiError(status, HTTPStatus(status).phrase)

    # ------------------------------------------------------------------ HTTP plumbing
    async def _handle(self, request: web.Request) -> web.Response:
        at, name = time.monotonic(), request.match_info["method"]
        method = _CANONICAL.get(name.lower(), name)
        params: dict[str, Any] = {}
        status, body, chat = 499, None, None
        try:
            params = await self._read_params(request)
            chat = self._chat_of(method, params)
            if chat is not None:                  # wait_idle: this chat is busy
                self._inflight[chat] += 1
                self._last_activity[chat] = time.monotonic()
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if method.lower() not in _CANONICAL:
                raise ApiError(404, "Not Found")
            if self._latency and method.startswith("send"):
                await asyncio.sleep(self._latency[2].uniform(*self._latency[:2]))
            self._inject_faults(method, params)
            result = await getattr(self, f"_api_{method}")(params)
            status, body = 200, {"ok": True, "result": result}
            if method in COUNTED and chat is not None:
                self._sent[chat] += 1
        except ApiError as error:
            status, body = error.code, error.envelope()
        except Exception:
            status = 500                          # a bug in this fake: aiohttp logs it
            raise
        finally:                                  # runs on cancellation too (status 499)
            if chat is not None:
                self._inflight[chat] -= 1
                self._last_activity[chat] = time.monotonic()
            self.calls.append(Call(method, params, at, status, request.content_type))
            self._notify()
        return web.json_response(body, status=status)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad("can't parse JSON") from None
            params.update(body if isinstance(body, dict) else {})
        elif request.method == "POST" and request.content_type == "multipart/form-data":
            files: dict[str, UploadedFile] = {}
            async for part in await request.multipart():
                if part.filename is None:
                    params[part.name] = await part.text()
                    continue
                size, head = 0, bytearray()
                while chunk := await part.read_chunk():   # streamed: big uploads aren't kept
                    size += len(chunk)
                    head += chunk[:max(0, self.keep_bytes + 1 - len(head))]
                files[part.name] = UploadedFile(part.filename, part.headers.get("Content-Type"),
                                                size, bytes(head) if size <= self.keep_bytes else None)
            for key, value in list(params.items()):
                if isinstance(value, str) and value.startswith("attach://"):
                    params[key] = files.pop(value[len("attach://"):], value)
            params.update(files)                  # files posted directly under their field name
        elif request.method == "POST":
            params.update(await request.post())
        return {key: self._decode(key, value) for key, value in params.items()}

    @staticmethod
    def _decode(key: str, value: Any) -> Any:
        if not isinstance(value, str) or key in TEXT_KEYS:
            return value
        if key in JSON_KEYS:
            try:
                return json.loads(value)
            except ValueError:
                raise bad(f"can't parse {key} JSON object") from None
        if key in INT_KEYS and re.fullmatch(r"-?\d+", value):
            return int(value)
        return {"true": True, "false": False}.get(value, value)

    def _chat_of(self, method: str, params: dict[str, Any]) -> int | None:
        if method == "answerCallbackQuery":
            return self._queries.get(params.get("callback_query_id", ""))
        chat_id = params.get("chat_id")
        return chat_id if isinstance(chat_id, int) else None

    # ------------------------------------------------------------------ validation helpers
    def _target_chat(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise bad("chat_id is empty")
        if chat_id in self.blocked_users:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if isinstance(chat_id, int) and chat_id not in self._users and self.accept_any_chat:
            self.add_user(chat_id)  # a benchmark's many residents: every chat exists
        if not isinstance(chat_id, int) or chat_id not in self._users:
            raise bad("chat not found")
        return chat_id

    @staticmethod
    def _formatted(params: dict[str, Any], key: str, limit: int) -> tuple[str, list[dict[str, Any]]]:
        """Text or caption after parse_mode, checked against Telegram's length limit."""
        text, mode = params.get(key) or "", (params.get("parse_mode") or "").lower()
        entities = params.get("entities" if key == "text" else "caption_entities")
        if mode == "html" and not entities:      # explicit entities win over parse_mode
            text, entities = render_html(text)
        elif mode not in ("", "html", "markdown", "markdownv2"):
            raise bad(f"unsupported parse_mode {params['parse_mode']!r}")
        if key == "text" and not text.strip():
            raise bad("message text is empty")
        if len(text) > limit:
            raise bad("message is too long" if key == "text" else "message caption is too long")
        return text, entities or []

    @staticmethod
    def _markup(markup: Any) -> dict[str, Any] | None:
        """Validate reply_markup; return it, or None when there is no (inline) keyboard."""
        if markup is None:
            return None
        if not isinstance(markup, dict) or not {"inline_keyboard", "keyboard", "remove_keyboard",
                                                "force_reply"} & markup.keys():
            raise bad("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad("can't parse reply keyboard markup JSON object")
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad('can\'t parse inline keyboard button: Can\'t find field "text"')
            if not BUTTON_ACTIONS & button.keys():
                raise bad("can't parse inline keyboard button: "
                          "Text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if "callback_data" in button and (not isinstance(data, str) or not data
                                              or len(data.encode()) > MAX_CALLBACK_DATA):
                raise bad("BUTTON_DATA_INVALID")
            if "url" in button and not re.match(r"(https?|tg)://\S", str(button["url"])):
                raise bad("BUTTON_URL_INVALID")
        return markup if any(rows) else None

    def _store(self, chat_id: int, kind: str, text_entities: tuple[str, list[dict[str, Any]]],
               markup: dict[str, Any] | None, **media: Any) -> dict[str, Any]:
        self._last_mid[chat_id] += 1
        message = BotMessage(self._last_mid[chat_id], chat_id, kind, *text_entities, markup,
                             int(time.time()), **media)
        self._messages[chat_id][message.message_id] = message
        return message.to_api(self.bot_user, self._chat(chat_id))

    def _editable(self, params: dict[str, Any]) -> BotMessage:
        chat_id = self._target_chat(params)
        message = self._messages[chat_id].get(params.get("message_id"))  # type: ignore[arg-type]
        if message is None:
            raise bad("message to edit not found")
        return message

    def _edited(self, message: BotMessage) -> dict[str, Any]:
        message.edited, message.edit_date = message.edited + 1, int(time.time())
        return message.to_api(self.bot_user, self._chat(message.chat_id))

    @staticmethod
    def _photo_sizes(seed: str) -> list[dict[str, Any]]:
        return [{"file_id": f"AgACphoto{seed}_{w}", "file_unique_id": f"AQAD{seed}{w}",
                 "width": w, "height": w * 3 // 4, "file_size": w * 60} for w in (90, 800)]

    async def _download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        file_id = path.removeprefix("photos/").removesuffix(".jpg")
        if request.match_info["token"] != self.token or file_id not in self.files:
            return web.Response(status=404)
        self.downloads.append(path)
        return web.Response(body=self.files[file_id], content_type="image/jpeg")

    # ------------------------------------------------------------------ Bot API methods
    async def _api_getFile(self, p: dict[str, Any]) -> Any:
        file_id = p.get("file_id")
        if file_id not in self.files:
            raise bad("invalid file_id")
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(self.files[file_id]),
                "file_path": f"photos/{file_id}.jpg"}

    async def _api_getMe(self, p: dict[str, Any]) -> Any:
        return self.bot_user

    async def _api_close(self, p: dict[str, Any]) -> Any:
        return True

    _api_logOut = _api_close

    async def _api_getUpdates(self, p: dict[str, Any]) -> Any:
        """Long poll: answer at once if updates are pending, else wait up to
        min(timeout, max_poll_timeout) s and answer as soon as one is pushed."""
        # A newer getUpdates terminates an older one, as in production (two pollers = a bug).
        self._poll_generation += 1
        generation = self._poll_generation
        offset = p.get("offset")
        if isinstance(offset, int):              # confirm: forget everything before offset
            self._updates = (self._updates[offset:] if offset < 0 else
                             [u for u in self._updates if u["update_id"] >= offset])
        if "allowed_updates" in p:               # kept for later calls, like Telegram
            self._allowed = set(p["allowed_updates"] or []) or None
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        deadline = time.monotonic() + min(max(float(p.get("timeout") or 0), 0.0), self.max_poll_timeout)
        if self._webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        self.waiting_pollers += 1
        self._notify()
        try:
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                        "make sure that only one bot instance is running")
                for update in [u for u in self._updates if not self._wanted(u)]:
                    self._updates.remove(update)     # unwanted types vanish, as if fetched
                    self._delivered_upto = max(self._delivered_upto, update["update_id"])
                batch = self._updates[:limit]
                if batch or self._closing or time.monotonic() >= deadline:
                    break
                await self._wait_change(deadline - time.monotonic())
        finally:
            self.waiting_pollers -= 1
        for update in batch:
            self._delivered_upto = max(self._delivered_upto, update["update_id"])
            if (chat := _update_chat(update)) is not None:
                self._last_activity[chat] = time.monotonic()
        return batch

    def _wanted(self, update: dict[str, Any]) -> bool:
        kinds = update.keys() - {"update_id"}
        return bool(kinds & self._allowed) if self._allowed else not kinds & OPT_IN_UPDATES

    async def _api_setWebhook(self, p: dict[str, Any]) -> Any:
        """As Telegram: from now on each pending update is POSTed to ``url`` (JSON, with the
        ``secret_token`` in X-Telegram-Bot-Api-Secret-Token), one at a time in order, and
        forgotten once answered with a 2xx; anything else is delivered again a moment later.
        ``getUpdates`` is refused (409) while a webhook is set."""
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad("secret token contains unallowed characters")
        self._webhook, self.webhook_secret = p.get("url") or "", secret
        if "allowed_updates" in p:
            self._allowed = set(p["allowed_updates"] or []) or None
        if self._webhook and (self._deliverer is None or self._deliverer.done()):
            self._deliverer = asyncio.create_task(self._deliver())
        self._notify()
        return True

    async def _deliver(self) -> None:
        """The webhook pusher (see setWebhook); ``webhook_answers`` records every HTTP status."""
        import aiohttp

        async with aiohttp.ClientSession() as http:
            while self._webhook and not self._closing:
                wanted = [u for u in self._updates if self._wanted(u)] if self.webhook_delivery else []
                if not wanted:
                    await self._wait_change(1.0)
                    continue
                update, url = wanted[0], self._webhook
                headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret} if self.webhook_secret else {}
                try:
                    async with http.post(url, json=update, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=30)) as answer:
                        status = answer.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                self.webhook_answers.append(status)
                if 200 <= status < 300:
                    self._delivered_upto = max(self._delivered_upto, update["update_id"])
                    if update in self._updates:
                        self._updates.remove(update)
                    if (chat := _update_chat(update)) is not None:
                        self._last_activity[chat] = time.monotonic()
                    self._notify()
                else:
                    await asyncio.sleep(0.2)  # Telegram waits longer; the order is kept

    async def _api_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self._webhook, self.webhook_secret = "", None
        if p.get("drop_pending_updates") and self._updates:
            self._delivered_upto = max(self._delivered_upto, self._updates[-1]["update_id"])
            self._updates = []
        return True

    async def _api_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        return {"url": self._webhook, "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    @staticmethod
    def _scope_key(p: dict[str, Any]) -> tuple[str, str]:
        """("default", ""), ("all_private_chats", "vi"), ("chat:42", "") ... -> commands key."""
        scope = p.get("scope") or {}
        target = ":".join(str(scope[k]) for k in ("chat_id", "user_id") if k in scope)
        kind = scope.get("type", "default")
        return (f"{kind}:{target}" if target else kind), p.get("language_code") or ""

    async def _api_setMyCommands(self, p: dict[str, Any]) -> Any:
        if not isinstance(p.get("commands"), list):
            raise bad("can't parse commands JSON object")
        for c in p["commands"]:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
        self.commands[self._scope_key(p)] = p["commands"]
        return True

    async def _api_getMyCommands(self, p: dict[str, Any]) -> Any:
        return self.commands.get(self._scope_key(p), [])

    async def _api_deleteMyCommands(self, p: dict[str, Any]) -> Any:
        self.commands.pop(self._scope_key(p), None)
        return True

    async def _api_sendMessage(self, p: dict[str, Any]) -> Any:
        chat_id = self._target_chat(p)
        return self._store(chat_id, "text", self._formatted(p, "text", MAX_TEXT),
                           self._markup(p.get("reply_markup")))

    async def _api_sendPhoto(self, p: dict[str, Any]) -> Any:
        chat_id = self._target_chat(p)
        photo = p.get("photo")
        if not photo:
            raise bad("there is no photo in the request")
        caption = self._formatted(p, "caption", MAX_CAPTION)
        # A string is a URL, or the file_id of a photo this bot sent or received (as Telegram
        # checks: file ids are per bot); anything else is refused.
        if isinstance(photo, str) and not re.match(r"https?://", photo) and photo not in self.photo_ids \
                and photo not in self.files:
            raise bad("wrong file identifier/HTTP URL specified")
        sizes = self._photo_sizes(f"{chat_id}_{self._last_mid[chat_id] + 1}")
        self.photo_ids.update(size["file_id"] for size in sizes)
        return self._store(chat_id, "photo", caption, self._markup(p.get("reply_markup")), media=sizes, upload=photo)

    async def _api_sendDocument(self, p: dict[str, Any]) -> Any:
        chat_id = self._target_chat(p)
        if not (upload := p.get("document")):
            raise bad("there is no document in the request")
        n = f"{chat_id}_{self._last_mid[chat_id] + 1}"
        doc: dict[str, Any] = {"file_id": f"BQACdoc{n}", "file_unique_id": f"AgADd{n}"}
        if isinstance(upload, UploadedFile):
            doc.update(file_name=upload.filename, file_size=upload.size,
                       mime_type=upload.content_type or "application/octet-stream")
        return self._store(chat_id, "document", self._formatted(p, "caption", MAX_CAPTION),
                           self._markup(p.get("reply_markup")), media=doc, upload=upload)

    async def _api_sendChatAction(self, p: dict[str, Any]) -> Any:
        self._target_chat(p)
        return True

    async def _api_editMessageText(self, p: dict[str, Any]) -> Any:
        message = self._editable(p)
        if message.kind != "text":
            raise bad("there is no text in the message to edit")
        text, entities = self._formatted(p, "text", MAX_TEXT)
        # Omitting reply_markup in an edit removes the inline keyboard, as in production.
        markup = self._markup(p.get("reply_markup"))
        markup = markup if markup and "inline_keyboard" in markup else None
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise bad(NOT_MODIFIED)
        message.text, message.entities, message.reply_markup = text, entities, markup
        return self._edited(message)

    async def _api_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        message = self._editable(p)
        markup = self._markup(p.get("reply_markup"))
        markup = markup if markup and "inline_keyboard" in markup else None
        if markup == message.reply_markup:
            raise bad(NOT_MODIFIED)
        message.reply_markup = markup
        return self._edited(message)

    async def _api_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        query_id = p.get("callback_query_id")
        if query_id not in self._queries or query_id in self.answered_callbacks:
            raise bad(QUERY_INVALID)              # unknown, or answered already
        self.answered_callbacks.add(query_id)
        self.callback_answers[query_id] = p
        return True


# Canonical method names, looked up case-insensitively (Telegram ignores case).
_CANONICAL = {name[5:].lower(): name[5:] for name in vars(FakeTelegram) if name.startswith("_api_")}


def _update_chat(update: dict[str, Any]) -> int | None:
    """The private chat an update belongs to (for wait_idle's per-chat activity)."""
    for value in update.values():
        if isinstance(value, dict):
            chat = value.get("chat") or (value.get("message") or {}).get("chat") or {}
            return chat.get("id") or (value.get("from") or {}).get("id")
    return None
