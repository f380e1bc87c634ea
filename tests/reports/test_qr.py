"""Join QR codes: they decode (with zxing-cpp, a decoder from PyPI) to exactly the group's
deep link, at error correction level M, with the caption drawn under the code."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageChops

from bot.links import group_link
from bot.reports.qr import join_qr_png, write_group_qr_codes

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
