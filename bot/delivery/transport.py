"""The port between the outbox sender and a channel: deliver one message, say what happened.

Each channel adapter provides a ``Transport``; the sender owns pacing, retries and the
bookkeeping, so a channel only maps its API's answers onto a :class:`Delivery`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.core.messages import Capabilities, Menu, Option, Text
from bot.core.text import split_text

# The longest text a photo carries as its caption (Telegram's limit, kept on every channel so
# that a message looks the same everywhere and the composer's preview can show it).
CAPTION_MAX = 1024


@dataclass(frozen=True)
class OutboundMessage:
    """What an outbox row says: text, optional options (buttons / numbered lines), an image.

    ``numbered``: on a channel without buttons, whether the options may be shown as numbered
    lines. The sender turns it off when the resident is in the middle of something (a quiz, a
    name to type): the options are then shown as words to type, so a typed "2" keeps meaning
    what the conversation asked. Channels with buttons ignore it.

    ``documents``: paths of files written for the message (a report-deadline reminder's
    workbook and chart), sent after the text by a transport whose channel takes documents
    (Telegram); the text says where else to find them.
    """

    text: str
    options: tuple[Option, ...] = ()
    image: str | None = None
    numbered: bool = True
    documents: tuple[str, ...] = ()

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": self.text}
        if self.options:
            payload["options"] = [
                [o.label, o.action, list(o.aliases)] if o.aliases else [o.label, o.action] for o in self.options
            ]
        if self.image:
            payload["image"] = self.image
        if self.documents:
            payload["documents"] = list(self.documents)
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> OutboundMessage:
        options = tuple(
            Option(str(o[0]), str(o[1]), tuple(str(a) for a in o[2]) if len(o) > 2 else ())
            for o in payload.get("options", [])
        )
        return cls(text=str(payload.get("text", "")), options=options, image=payload.get("image"),
                   documents=tuple(str(d) for d in payload.get("documents", [])))

    def as_reply(self) -> Text | Menu:
        return Menu(self.text, self.options) if self.options else Text(self.text)

    def calls(self, capabilities: Capabilities) -> int:
        """How many API calls a transport of a channel with these capabilities makes to send
        it — the photo (the text as its caption, or followed by it), the text in pieces of the
        channel's limit, the documents — so that the sender paces calls, not rows: a photo
        with a button is two messages to the channel's flood limit."""
        calls = 1 if self.image and capabilities.images else 0
        if not (self.image and capabilities.images and self.caption is not None):
            limit = capabilities.text_limit
            calls += len(split_text(self.text, limit)) if limit else 1
        return calls + (len(self.documents) if capabilities.documents else 0)

    @property
    def caption(self) -> str | None:
        """With an image: the text as the photo's caption — one message — when it has no
        options and is short enough; None when the photo goes first, alone, and the text (with
        its options) follows as a message of its own. Every transport sends images this way."""
        if self.image and not self.options and len(self.text) <= CAPTION_MAX:
            return self.text
        return None


class Result(StrEnum):
    SENT = "sent"  # the API accepted it
    RETRY_AFTER = "retry_after"  # rate limited: pause every send, requeue, no attempt counted
    BLOCKED = "blocked"  # the user blocked the bot: never again
    FAILED = "failed"  # a permanent error for this message (4xx): give up with the reason
    TRANSIENT = "transient"  # 5xx, timeout, network: retry later with backoff
    NOT_ALLOWED = "not_allowed"  # the channel's rules forbid it now (e.g. outside a Zalo OA window)


@dataclass(frozen=True)
class Recipient:
    """Who a row goes to, as the sender knows them."""

    external_id: str
    last_seen_at: datetime | None = None


@dataclass(frozen=True)
class Delivery:
    result: Result
    retry_after: float = 0.0
    reason: str = ""


SENT = Delivery(Result.SENT)


@dataclass(frozen=True)
class Pacing:
    """How fast a channel may be sent to (messages per second across chats, and the least
    interval between two messages to the same chat)."""

    per_second: float
    per_chat_interval: float = 1.0
    burst: int = 1


class Transport(Protocol):
    channel: str
    capabilities: Capabilities
    pacing: Pacing

    async def deliver(self, recipient: Recipient, message: OutboundMessage) -> Delivery: ...
