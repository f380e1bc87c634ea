"""Fonts for the images: DejaVu Sans/Serif as bundled with matplotlib (every Vietnamese
letter with its tone marks is in them, and no system font has to be installed)."""

from __future__ import annotations

import threading
from pathlib import Path

import matplotlib
from PIL import ImageDraw, ImageFont

SANS = "DejaVuSans.ttf"
SANS_BOLD = "DejaVuSans-Bold.ttf"
SERIF = "DejaVuSerif.ttf"
SERIF_BOLD = "DejaVuSerif-Bold.ttf"


def font_path(name: str) -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


_loaded = threading.local()


def pil_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A loaded font, kept per thread: a FreeType face must not be used by two threads at
    once, and the chat renders certificates and QR codes in worker threads."""
    fonts: dict[tuple[str, int], ImageFont.FreeTypeFont] = _loaded.__dict__.setdefault("fonts", {})
    if (name, size) not in fonts:
        fonts[name, size] = ImageFont.truetype(str(font_path(name)), size)
    return fonts[name, size]


def fit_font(draw: ImageDraw.ImageDraw, text: str, name: str, *, width: int, size: int,
             smallest: int) -> ImageFont.FreeTypeFont:
    """The largest size from ``size`` down to ``smallest`` at which ``text`` fits ``width``."""
    while size > smallest and draw.textlength(text, font=pil_font(name, size)) > width:
        size -= 2
    return pil_font(name, max(size, smallest))


def shorten(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, *, width: int) -> str:
    """``text`` cut with "…" so that it fits ``width`` (when even the smallest size is too big)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"
