"""The chart and the certificate: PNGs of the designed size, with their text really drawn
(the image changes exactly where the text goes) and every Vietnamese letter in the font
(no "Glyph … missing" warning; every character of the certificate in the DejaVu cmaps)."""

from __future__ import annotations

import logging
import unicodedata
import warnings
from collections.abc import Callable
from datetime import date
from io import BytesIO

import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops

from bot.reports import certificate
from bot.reports.certificate import certificate_png
from bot.reports.chart import GroupBar, GroupChart, group_chart_png
from bot.reports.fonts import SANS, SERIF, SERIF_BOLD, font_path
from bot.reports.wording import translator

TITLE = "Tỷ lệ hoàn thành chương trình theo tổ – Phường Mẫu (đến 23/11/2026)"
NAMES = ["Tổ dân phố 1", "Tổ dân phố Bắc Sơn", "Tổ dân phố Hòa An", "Khu phố Đông Thượng Ưng", "Ấp Phước Lộc Thọ"]
# Every lower- and upper-case Vietnamese letter with every tone.
VIETNAMESE = "aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ"


def _stats(names: list[str]) -> list[GroupBar]:
    return [GroupBar(name, 10.0 * min(2 * n, 10), 70 + n, 10.0 * min(2 * n, 10) >= 70 + n)
            for n, name in enumerate(names, 1)]


def completion_chart_png(bars: list[GroupBar], *, title: str) -> bytes:
    return group_chart_png(GroupChart(title, bars))


def _bars_start(image: Image.Image, top: int, bottom: int) -> int:
    """The leftmost column of a bar between rows top and bottom (the axes' left edge)."""
    colours = {(0x2E, 0x7D, 0x32), (0xEF, 0x6C, 0x00)}
    return min(x for x in range(image.width) for y in range(top, bottom, 2) if image.getpixel((x, y)) in colours)


def _png(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def _changed(a: bytes, b: bytes) -> tuple[int, int, int, int]:
    box = ImageChops.difference(_png(a), _png(b)).getbbox()
    assert box is not None, "the text changed nothing: it was not drawn"
    return box


def _quietly(render: Callable[[], bytes], caplog: pytest.LogCaptureFixture) -> tuple[bytes, list[str]]:
    """Render, collecting matplotlib's missing-glyph warnings (warnings and log records)."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        data = render()
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    return data, [m for m in messages if "missing from font" in m]


def test_the_chart_is_a_phone_sized_png(caplog: pytest.LogCaptureFixture) -> None:
    data, missing = _quietly(lambda: completion_chart_png(_stats(NAMES * 2), title=TITLE), caplog)
    assert missing == []
    assert _png(data).size == (1000, 720)  # 10 groups: 2.2 in + 0.5 in each, at 100 dpi
    assert _png(completion_chart_png(_stats(NAMES[:1]), title=TITLE)).size == (1000, 270)
    assert _png(completion_chart_png([], title=TITLE)).size == (1000, 270)


def _plain(text: str) -> str:
    """The same letters without their marks (same widths in DejaVu, so the same layout)."""
    bare = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "D")


def test_the_chart_draws_its_title_and_labels_with_every_diacritic(caplog: pytest.LogCaptureFixture) -> None:
    labels = [VIETNAMESE[i:i + 24] for i in range(0, len(VIETNAMESE), 24)]
    labels += [label.upper() for label in labels]
    # The widest label, the same in both renders, fixes the layout (Ơ and Ư are wider than O, U).
    labels.append("M" * 30)
    data, missing = _quietly(lambda: completion_chart_png(_stats(labels), title=TITLE), caplog)
    assert missing == []
    width, height = _png(data).size
    # Only the marks differ from the same chart without them: the title band, the labels column.
    title = _changed(data, completion_chart_png(_stats(labels), title=_plain(TITLE)))
    assert title[3] < 50 and title[2] - title[0] > 500
    names = _changed(data, completion_chart_png(_stats([_plain(x) for x in labels]), title=TITLE))
    assert names[2] < _bars_start(_png(data), names[1], names[3]) and names[3] - names[1] > height * 0.5


def test_the_glyph_check_would_catch_a_missing_glyph(caplog: pytest.LogCaptureFixture) -> None:
    _, missing = _quietly(lambda: completion_chart_png(_stats(["漢字"]), title=TITLE), caplog)
    assert missing  # so an empty list above means every glyph was found


def _certificate(name: str = "Nguyễn Thị Hồng Nhung", **changes: object) -> bytes:
    values: dict[str, object] = {"group": "Tổ dân phố Thuận Phước", "ward": "Phường Mẫu",
                                 "completed_on": date(2026, 11, 23), "lessons": 13}
    return certificate_png(name=name, **{**values, **changes})  # type: ignore[arg-type]


def test_the_certificate_is_a5_landscape_with_the_name_drawn() -> None:
    data = _certificate()
    image = _png(data)
    assert image.size == (1600, 1130)
    left, top, right, bottom = _changed(data, _certificate(name=""))
    assert 380 < top and bottom < 560 and 100 < left and right < 1500  # the name's band, centred
    assert abs((left + right) / 2 - 800) < 10
    band = image.crop((left, top, right, bottom)).convert("L")
    assert sum(1 for p in band.get_flattened_data() if p < 100) > 5000  # dark ink, not a faint mark
    ward = _changed(data, _certificate(ward=""))
    assert ward[1] < 200 and ward[3] > 900  # the programme line at the top and the note at the bottom
    assert _changed(data, _certificate(completed_on=date(2027, 1, 2)))[1] > 700  # the date line


def test_a_long_name_shrinks_to_fit_inside_the_frame() -> None:
    long = "Tôn Nữ Hoàng Thị Phương Thảo Nguyễn Lê Trần Vũ Đặng Bùi Đỗ Hồ Ngô Dương Lý Ư"
    left, _, right, _ = _changed(_certificate(name=long), _certificate(name=""))
    assert 140 <= left and right <= 1460
    short = _changed(_certificate(name="Lan"), _certificate(name=""))
    assert short[3] - short[1] > 60  # a short name keeps the large size


def test_a_decomposed_name_draws_as_the_composed_one() -> None:
    name = "Nguyễn Thị Hồng Nhung"
    assert _certificate(name=unicodedata.normalize("NFD", name)) == _certificate(name=name)


def test_every_character_of_the_certificate_is_in_its_fonts() -> None:
    t = translator()
    texts = [t("certificate.programme", ward="Phường Mẫu"), t("certificate.title"), t("certificate.certifies"),
             t("certificate.group", group="Tổ dân phố Thuận Phước"), t("certificate.lessons", lessons=13),
             t("certificate.date", date="23/11/2026"), t("certificate.disclaimer", ward="Phường Mẫu"),
             VIETNAMESE, VIETNAMESE.upper()]
    needed = {ch for text in texts for ch in text if not ch.isspace()}
    for name in (SANS, SERIF, SERIF_BOLD):
        cmap = TTFont(font_path(name)).getBestCmap()
        assert {ch for ch in needed if ord(ch) not in cmap} == set(), name
    assert certificate.__doc__ and "VNeID" in t("certificate.disclaimer", ward="x")
    assert "không thay cho xác nhận phổ cập kỹ năng số trên VNeID" in t("certificate.disclaimer", ward="x")


def test_an_empty_group_is_labelled_not_drawn_as_a_zero_bar(caplog: pytest.LogCaptureFixture) -> None:
    empty = [GroupBar("Tổ dân phố Đông", None, 70, False)]
    data, missing = _quietly(lambda: group_chart_png(GroupChart(TITLE, empty)), caplog)
    assert missing == []
    image = _png(data)
    colours = {(0x2E, 0x7D, 0x32), (0xEF, 0x6C, 0x00)}
    coloured = [y for y in range(0, image.height, 2) for x in range(0, image.width, 2)
                if image.getpixel((x, y)) in colours]
    assert coloured and min(coloured) > image.height * 0.8  # only the legend's swatches, no bar
    # The label is drawn where a bar would start: it differs from the same chart with a 0 % group.
    zero = group_chart_png(GroupChart(TITLE, [GroupBar("Tổ dân phố Đông", 0.0, 70, False)]))
    box = _changed(data, zero)
    assert box[2] - box[0] > 100  # "chưa có thành viên" is wider than "0%"
