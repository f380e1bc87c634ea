"""A resident's completion certificate (PNG, A5 landscape at about 200 dpi).

Worded as the ward's own programme — "Chương trình học kỹ năng số “Học vụ số” của <ward>" —
with no state emblem or national motto, and a line saying that it does not replace the
official "phổ cập kỹ năng số" confirmation on VNeID, so it cannot be mistaken for it.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from io import BytesIO

from PIL import Image, ImageDraw

from bot.reports.fonts import SANS, SERIF, SERIF_BOLD, fit_font, pil_font, shorten
from bot.reports.wording import day, translator

WIDTH, HEIGHT = 1600, 1130
TEXT_WIDTH = 1320  # inside the frame, with a margin
PAPER, INK, ACCENT, GOLD, GREY = "#fffdf6", "#1f2933", "#8b1a1a", "#c9a227", "#5f6b76"


def _clean(text: str) -> str:
    # Typed names may arrive decomposed (e + combining marks): draw precomposed letters.
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _centred(draw: ImageDraw.ImageDraw, y: int, text: str, font_name: str, *, size: int, smallest: int,
             fill: str) -> None:
    font = fit_font(draw, text, font_name, width=TEXT_WIDTH, size=size, smallest=smallest)
    draw.text((WIDTH // 2, y), shorten(draw, text, font, width=TEXT_WIDTH), font=font, fill=fill, anchor="ma")


def _wrapped(draw: ImageDraw.ImageDraw, y: int, text: str, *, size: int, fill: str) -> None:
    font = pil_font(SANS, size)
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= TEXT_WIDTH:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    for n, line in enumerate(lines):
        draw.text((WIDTH // 2, y + n * int(size * 1.35)), line, font=font, fill=fill, anchor="ma")


def certificate_png(*, name: str, group: str, ward: str, completed_on: date, lessons: int) -> bytes:
    t = translator()
    name, group, ward = _clean(name), _clean(group), _clean(ward)
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((28, 28, WIDTH - 29, HEIGHT - 29), outline=ACCENT, width=10)
    draw.rectangle((52, 52, WIDTH - 53, HEIGHT - 53), outline=GOLD, width=3)
    _centred(draw, 110, t("certificate.programme", ward=ward), SANS, size=34, smallest=22, fill=INK)
    _centred(draw, 210, t("certificate.title"), SERIF_BOLD, size=76, smallest=48, fill=ACCENT)
    _centred(draw, 340, t("certificate.certifies"), SANS, size=34, smallest=34, fill=GREY)
    _centred(draw, 420, name, SERIF_BOLD, size=96, smallest=40, fill=INK)
    _centred(draw, 570, t("certificate.group", group=group), SANS, size=38, smallest=24, fill=INK)
    _centred(draw, 650, t("certificate.lessons", lessons=lessons), SANS, size=38, smallest=24, fill=INK)
    _centred(draw, 760, t("certificate.date", date=day(completed_on)), SERIF, size=34, smallest=24, fill=INK)
    draw.line((WIDTH // 2 - 220, 850, WIDTH // 2 + 220, 850), fill=GOLD, width=3)
    _wrapped(draw, 960, t("certificate.disclaimer", ward=ward), size=24, fill=GREY)
    buffer = BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
