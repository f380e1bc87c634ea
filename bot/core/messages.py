"""What a user sends and what the bot answers, independent of any channel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update from a user, as an adapter understood it.

    Exactly one of ``text``, ``action`` or ``attachment`` is normally set. ``action`` is
    the payload of a pressed option (untrusted: it is parsed and authorised again).
    ``attachment`` names a kind the bot does not read (``sticker``, ``photo``, ``voice``…).
    ``media``: where the adapter could fetch a photo the user sent (a file it downloaded, with
    its caption in ``text``), for the steps that take one (a broadcast's picture); the engine
    deletes the file afterwards unless a handler kept it.
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
    media: Path | None = None

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


@dataclass(frozen=True, slots=True)
class Menu:
    """Text with options: buttons on Telegram, numbered lines on Zalo and the terminal."""

    text: str
    options: tuple[Option, ...]
    columns: int = 1
    replace: bool = False


@dataclass(frozen=True, slots=True)
class Image:
    path: Path
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    path: Path
    caption: str = ""


Reply = Text | Menu | Image | Document


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
