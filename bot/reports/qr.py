"""Join QR codes for the notice board: the group's deep link as a QR code (error
correction M, so a smudged or folded print still scans), the group's name under it."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pil import PilImage

from bot.links import PARAM
from bot.reports.fonts import SANS, SANS_BOLD, fit_font, shorten
from bot.reports.wording import translator

BOX, QUIET_MODULES = 16, 4  # pixels per module; the quiet zone scanners need


def join_qr_png(link: str, *, caption: str | None = None) -> bytes:
    """A PNG QR code of ``link``; with a caption, two lines under it: the caption and how to join."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX, border=QUIET_MODULES,
                         image_factory=PilImage)
    code.add_data(link)
    code.make(fit=True)
    symbol = code.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    if caption is None:
        image = symbol
    else:
        width = symbol.width
        image = Image.new("RGB", (width, symbol.height + 130), "white")
        image.paste(symbol, (0, 0))
        draw = ImageDraw.Draw(image)
        room = width - 40
        # Below the symbol and its quiet zone: text inside the quiet zone hinders scanning.
        font = fit_font(draw, caption, SANS_BOLD, width=room, size=44, smallest=22)
        draw.text((width // 2, symbol.height), shorten(draw, caption, font, width=room), font=font,
                  fill="black", anchor="ma")
        hint = translator()("qr.hint")
        small = fit_font(draw, hint, SANS, width=room, size=24, smallest=16)
        draw.text((width // 2, symbol.height + 70), hint, font=small, fill="#333333", anchor="ma")
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
        path.write_bytes(join_qr_png(link, caption=name))
        written.append(path)
    return written
