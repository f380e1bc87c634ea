"""How a reply becomes Zalo Bot Platform messages (no buttons, 2,000 characters, images by
URL). Shared by the adapter (answers) and the outbox transport (proactive messages)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.i18n import Translate
from bot.core.messages import Document, Image, Menu, Notice, Reply, Text
from bot.core.render import keyword_menu, numbered_menu
from bot.core.text import split_text
from bot.media import MediaStore

TEXT_LIMIT = 2000  # characters, for text and captions alike


@dataclass(frozen=True)
class Outgoing:
    """One Bot API send: a text message, or a photo by URL with an optional caption."""

    text: str = ""
    photo: str | None = None
    caption: str = ""


def texts(text: str) -> list[Outgoing]:
    return [Outgoing(text=piece) for piece in split_text(text, TEXT_LIMIT) if piece.strip()]


async def plan(reply: Reply, t: Translate, media: MediaStore | None, *, numbered: bool = True) -> list[Outgoing]:
    """The sends that render ``reply``. Nothing is dropped: what Zalo cannot show becomes a
    clear text (an image without a public URL, any document). A menu is numbered lines, or
    with ``numbered=False`` its options as words to type (a proactive message that must not
    change what a typed number means)."""
    if isinstance(reply, Menu):
        return texts(numbered_menu(reply, t) if numbered else keyword_menu(reply, t))
    if isinstance(reply, Text | Notice):
        return texts(reply.text)
    if isinstance(reply, Image):
        url = await media.url_for(reply.path) if media is not None else None
        if url is not None:
            return [Outgoing(photo=url, caption=reply.caption[:TEXT_LIMIT])]
        return texts("\n\n".join(part for part in (reply.caption, t("zalo.image_fallback")) if part))
    if isinstance(reply, Document):
        # The Bot Platform has no sendDocument: a link when we serve files, else a summary.
        url = await media.url_for(reply.path) if media is not None else None
        note = t("zalo.document_link", url=url) if url else t("zalo.document_summary")
        return texts("\n\n".join(part for part in (reply.caption, note) if part))
    raise TypeError(f"unknown reply {type(reply).__name__}")
