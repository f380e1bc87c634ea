"""Join QR codes: they decode (with zxing-cpp, a decoder from PyPI) to exactly the group's
deep link, at error correction level M, with the caption drawn under the code, and the group's
short code ("g_…", what a resident types on Zalo) in large type under it."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageDraw

from bot.links import group_link
from bot.reports.fonts import pil_font
from bot.reports.qr import CODE_SMALLEST, Line, join_qr_png, poster_lines, write_group_qr_codes
from bot.reports.wording import translator

LINK = "https://t.me/hocvuso_test_bot?start=g_DEMO-TDP01"


def _decode(data: bytes) -> list[zxingcpp.Result]:
    return zxingcpp.read_barcodes(Image.open(BytesIO(data)).convert("RGB"))


def test_the_code_decodes_to_the_deep_link_at_level_m() -> None:
    for caption in (None, "Tổ dân phố Thuận Phước"):
        results = _decode(join_qr_png(LINK, caption=caption))
        assert [(r.text, r.format, r.ec_level) for r in results] == [(LINK, zxingcpp.BarcodeFormat.QRCode, "M")]


def test_the_caption_is_drawn_under_the_code() -> None:
    bare = Image.open(BytesIO(join_qr_png(LINK))).convert("RGB")
    captioned = Image.open(BytesIO(join_qr_png(LINK, caption="Tổ dân phố Thuận Phước"))).convert("RGB")
    assert captioned.width == bare.width and captioned.height > bare.height
    assert ImageChops.difference(captioned.crop((0, 0, *bare.size)), bare).getbbox() is None  # the code untouched
    under = captioned.crop((0, bare.height, captioned.width, captioned.height)).convert("L")
    assert sum(1 for p in under.get_flattened_data() if p < 100) > 1000
    other = Image.open(BytesIO(join_qr_png(LINK, caption="Thôn Đông"))).convert("RGB")
    assert ImageChops.difference(other, captioned).getbbox()[1] >= bare.height  # type: ignore[index]


def test_one_file_per_group_each_with_its_link(tmp_path: Path) -> None:
    groups = [(code, name, group_link(code, telegram_username="hocvuso_test_bot"))
              for code, name in (("DEMO-TDP01", "Tổ dân phố 1"), ("AP_2", "Ấp Phước Lộc"))]
    written = write_group_qr_codes(groups, tmp_path / "qr")
    assert written == [tmp_path / "qr" / "DEMO-TDP01.png", tmp_path / "qr" / "AP_2.png"]
    for path, (_, _, link) in zip(written, groups, strict=True):
        assert [r.text for r in _decode(path.read_bytes())] == [link]
    assert groups[1][2] == "https://t.me/hocvuso_test_bot?start=g_AP_2"


def test_a_code_that_cannot_be_a_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_group_qr_codes([("../up", "x", LINK)], tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- the short code under the QR code (typed on Zalo, which has no deep link) ----------------

ZALO_LINK = "/start g_DEMO-TDP01"


def _alone(line: Line, size: tuple[int, int]) -> Image.Image:
    """``line`` drawn by itself on a blank poster of ``size``, where the poster draws it."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((size[0] // 2, line.top), line.text, font=pil_font(line.font, line.size),
                               fill=line.fill, anchor="ma")
    return image


def _assert_drawn_as_laid_out(poster: Image.Image, lines: list[Line], *, top: int) -> None:
    """Every line is on the poster where the layout puts it, and nothing else is in its band:
    from under the QR code down, the pixels above the next line's top are each line's alone
    (so no mark of a line reaches into the QR code's quiet zone or into another line)."""
    bands = [top] + [line.top for line in lines[1:]] + [poster.height]
    for line, upper, lower in zip(lines, bands[:-1], bands[1:], strict=True):
        box = (0, upper, poster.width, lower)
        assert ImageChops.difference(poster.crop(box), _alone(line, poster.size).crop(box)).getbbox() is None, line.text


def _tallest_stroke(image: Image.Image) -> int:
    """The longest vertical run of dark pixels in any column: the height of a capital's stem."""
    grey = image.convert("L")
    best = 0
    for x in range(grey.width):
        run = 0
        for y in range(grey.height):
            run = run + 1 if grey.getpixel((x, y)) < 100 else 0
            best = max(best, run)
    return best


@pytest.mark.parametrize("link", [LINK, ZALO_LINK])
def test_the_short_code_is_printed_large_under_the_code(link: str) -> None:
    caption, code = "Tổ dân phố Thuận Phước", "g_DEMO-TDP01"
    poster = Image.open(BytesIO(join_qr_png(link, caption=caption, code=code))).convert("RGB")
    bare = Image.open(BytesIO(join_qr_png(link))).convert("RGB")
    assert [r.text for r in _decode(join_qr_png(link, caption=caption, code=code))] == [link]
    assert ImageChops.difference(poster.crop((0, 0, *bare.size)), bare).getbbox() is None  # the QR code untouched

    lines, width, height = poster_lines(caption, code, width=bare.width, top=bare.height)
    assert (width, height) == poster.size
    texts = [line.text for line in lines]
    hint, zalo = translator()("qr.hint"), translator()("qr.zalo_hint")
    assert texts == [caption, code, zalo, hint] and "Zalo" in zalo
    _assert_drawn_as_laid_out(poster, lines, top=bare.height)
    # Large: the code's capitals stand about 1/13 of the poster's width (at least 1/14: 1.35 cm
    # on an A4 print 19 cm wide, legible from 2 m), far above the caption's and the hints'.
    [big] = [line for line in lines if line.text == code]
    band = poster.crop((0, big.top, width, lines[lines.index(big) + 1].top))
    stem = _tallest_stroke(band)
    assert stem >= width / 14, (stem, width)
    assert big.size > max(line.size for line in lines if line is not big) * 1.2


def test_a_long_code_widens_the_poster_instead_of_shrinking_out_of_sight() -> None:
    code = "g_" + "AP_PHUOC_LOC_" + "X" * 19  # 34 characters: the longest a group code allows
    poster = Image.open(BytesIO(join_qr_png(ZALO_LINK, caption="Ấp Phước Lộc", code=code))).convert("RGB")
    bare = Image.open(BytesIO(join_qr_png(ZALO_LINK))).convert("RGB")
    lines, width, _ = poster_lines("Ấp Phước Lộc", code, width=bare.width, top=bare.height)
    assert poster.width == width > bare.width
    [big] = [line for line in lines if line.text == code]
    assert big.size == CODE_SMALLEST
    left = (width - bare.width) // 2  # the QR code centred, untouched
    assert ImageChops.difference(poster.crop((left, 0, left + bare.width, bare.height)), bare).getbbox() is None
    _assert_drawn_as_laid_out(poster, lines, top=bare.height)
    assert [r.text for r in _decode(join_qr_png(ZALO_LINK, caption="Ấp Phước Lộc", code=code))] == [ZALO_LINK]


def test_the_files_for_the_notice_board_carry_each_group_s_code(tmp_path: Path) -> None:
    link = group_link("AP_2", telegram_username="hocvuso_test_bot")
    [path] = write_group_qr_codes([("AP_2", "Ấp Phước Lộc", link)], tmp_path)
    assert path.read_bytes() == join_qr_png(link, caption="Ấp Phước Lộc", code="g_AP_2")
    assert path.read_bytes() != join_qr_png(link, caption="Ấp Phước Lộc", code="g_AP_3")
