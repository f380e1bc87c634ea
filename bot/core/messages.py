"""What a user sends and what the bot answers, independent of any channel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update from a user, as an adapter understood it.

    Exactly one of ``text``, ``action`` or ``attachment`` is normally set. ``action`` is
    the payload of a pressed option (untrusted: it is parsed and authorised again).
    ``attachment`` names a kind the bot does not read (``sticker``, ``photo``, ``voice``…).
    ``fetch_media``: set by an adapter that can download a photo the user sent (its caption
    is in ``text``). Nothing is downloaded unless a handler that wants the picture (a
    broadcast's) calls it through :meth:`Context.fetch_media`: residents' photos — an ID
    card, a bank screen — are never written to disk.
    """

    channel: str
    external_id: str
    display_name: str | None = None
    locale: str | None = None
    text: str | None = None
    action: str | None = None
    start_param: str | None = None
    attachment: str | None = None
    update_id: str | None = None
    # A channel's own id of this event (``"12345"`` for a Telegram update, a Zalo message id),
    # unique within ``channel``. When set, the engine records it in the same transaction as
    # the update's effects, so the same event delivered again changes nothing. None (the
    # terminal) means "never delivered twice".
    event_id: str | None = None
    fetch_media: Callable[[], Awaitable[Path | None]] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.external_id)


@dataclass(frozen=True, slots=True)
class Option:
    """One choice. ``aliases`` are other words that pick it when typed (e.g. "có", "vâng"
    for a yes), compared without diacritics."""

    label: str
    action: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Text:
    """Plain text. ``replace``: where the channel can, it replaces the message whose
    option was just pressed (a lesson card turned in place) instead of adding one."""

    text: str
    replace: bool = False


class Marks(StrEnum):
    """How a menu's options are marked where they are shown as lines of text (Zalo, the
    terminal), and what a typed mark picks on every channel (``bot.core.choice``)."""

    NUMBERS = "numbers"  # "1. Học tiếp"
    LETTERS = "letters"  # "A. Tài khoản mức 2": the options' own words may hold numbers

    def of(self, index: int) -> str:
        """The mark of the option at ``index`` (0-based): "2" or "B"."""
        return chr(ord("A") + index) if self is Marks.LETTERS else str(index + 1)


@dataclass(frozen=True, slots=True)
class Menu:
    """Text with options: buttons on Telegram, numbered (or lettered) lines on Zalo and the
    terminal."""

    text: str
    options: tuple[Option, ...]
    columns: int = 1
    replace: bool = False
    marks: Marks = Marks.NUMBERS


@dataclass(frozen=True, slots=True)
class Image:
    path: Path
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    path: Path
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """A short acknowledgement of a press that changed nothing (a button pressed twice):
    Telegram shows it on the pressed button ("toast"); other channels as a line of text."""

    text: str


Reply = Text | Menu | Image | Document | Notice


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can render; the core adapts to it, an adapter never drops a reply."""

    buttons: bool
    edit: bool
    text_limit: int | None
    images: bool = True
    documents: bool = True

    @property
    def numbered_menus(self) -> bool:
        """Menus shown as numbered lines: a reply "2" picks the second option."""
        return not self.buttons
