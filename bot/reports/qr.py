"""Join QR codes for the notice board: the group's deep link as a QR code (error
correction M, so a smudged or folded print still scans) and, under it, the group's name, its
short code in large type ("g_TDP09": on Zalo, which has no deep link, a resident types it to the
bot) and how to join."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pil import PilImage

from bot.links import PARAM, group_param
from bot.reports.fonts import SANS, SANS_BOLD, fit_font, pil_font, shorten
from bot.reports.wording import translator

BOX, QUIET_MODULES = 16, 4  # pixels per module; the quiet zone scanners need
MARGIN = 20  # pixels left and right of the text
# The code's letters: as large as fits the poster's width, up to CODE_SIZE. A 12-character code
# ("g_DEMO-TDP01") gets capitals about 1/13 of the poster's width: 1.4 cm on an A4 print
# (19 cm wide), which eyes of 20/100 acuity read from 2 m (25 arc-minutes). A code too long
# for CODE_SMALLEST widens the poster instead of shrinking further.
CODE_SIZE, CODE_SMALLEST = 120, 48


@dataclass(frozen=True)
class Line:
    """One line of text under the QR code: centred, its top at ``top``."""

    text: str
    font: str
    size: int
    top: int
    fill: str = "black"


def poster_lines(caption: str, code: str | None, *, width: int, top: int) -> tuple[list[Line], int, int]:
    """The lines under a QR code ``width`` pixels wide whose text starts at ``top``: the
    caption, the code (large) and the Zalo hint when there is a code, then how to join. Returns
    them, the poster's width (wider than the code when a long code needs it) and its height."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    t = translator()
    lines: list[Line] = []
    y = top
    code_size = None
    if code is not None:
        code_font = fit_font(draw, code, SANS_BOLD, width=width - 2 * MARGIN, size=CODE_SIZE, smallest=CODE_SMALLEST)
        code_size = code_font.size
        width = max(width, round(draw.textlength(code, font=code_font)) + 2 * MARGIN)
    room = width - 2 * MARGIN
    y += 16  # the marks above a capital ("Ấp") reach over the font's ascent: keep them off the quiet zone
    caption_font = fit_font(draw, caption, SANS_BOLD, width=room, size=44, smallest=22)
    lines.append(Line(shorten(draw, caption, caption_font, width=room), SANS_BOLD, caption_font.size, y))
    y += 70
    if code is not None and code_size is not None:
        lines.append(Line(code, SANS_BOLD, code_size, y))
        y += round(code_size * 1.2) + 20  # clear of the descenders ("g_")
        zalo = t("qr.zalo_hint")
        lines.append(Line(zalo, SANS, fit_font(draw, zalo, SANS, width=room, size=26, smallest=16).size, y, "#333333"))
        y += 40
    hint = t("qr.hint")
    lines.append(Line(hint, SANS, fit_font(draw, hint, SANS, width=room, size=24, smallest=16).size, y, "#333333"))
    return lines, width, y + 60


def join_qr_png(link: str, *, caption: str | None = None, code: str | None = None) -> bytes:
    """A PNG QR code of ``link``; with a caption, lines under it: the caption, the short code
    ``code`` to type on Zalo ("g_TDP09") in large type if given, and how to join."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX, border=QUIET_MODULES,
                       image_factory=PilImage)
    qr.add_data(link)
    qr.make(fit=True)
    symbol = qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    if caption is None:
        image = symbol
    else:
        # Below the symbol and its quiet zone: text inside the quiet zone hinders scanning.
        lines, width, height = poster_lines(caption, code, width=symbol.width, top=symbol.height)
        image = Image.new("RGB", (width, height), "white")
        image.paste(symbol, ((width - symbol.width) // 2, 0))
        draw = ImageDraw.Draw(image)
        for line in lines:
            draw.text((width // 2, line.top), line.text, font=pil_font(line.font, line.size), fill=line.fill, anchor="ma")
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_group_qr_codes(groups: Sequence[tuple[str, str, str]], out_dir: Path) -> list[Path]:
    """One ``<group_code>.png`` per (group_code, group_name, link) in ``out_dir`` (created if
    missing); returns the files written, in the given order."""
    for code, _, _ in groups:
        if not PARAM.match(code):  # also keeps file names inside out_dir
            raise ValueError(f"group code {code!r} cannot name a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for code, name, link in groups:
        path = out_dir / f"{code}.png"
        path.write_bytes(join_qr_png(link, caption=name, code=group_param(code)))
        written.append(path)
    return written
