"""Finding one's group by typing, on every channel (issue 10 §4 and the group parts of §3).

The demo ward plus three groups that make the searches of the issue meaningful ("Tổ dân phố 9",
"Tổ dân phố 12", "Thôn 2"). Each typed search runs on the terminal chat, Telegram and Zalo
(fixture ``driver``) in the group question of someone joining: one clear group is asked to
confirm ("Bạn thuộc Tổ dân phố 9, Phường Mẫu. Đúng không ạ?") and confirming joins it; several
are listed (at most five, the ward named); nothing found shows the whole list again.

A typed number means the group's number, not a line of the menu: on the numbered channels that
holds once the group list is shown with letters (the engine's change, issue 10 §1).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.app import App
from bot.group_import import import_groups, parse_groups_csv
from tests.conftest import START
from tests.contract.drivers import Driver, TelegramDriver, numbered_options
from tests.contract.journeys import NAME, join_group, outcome

EXTRA = """ward_code,ward_name,group_code,group_name,kind
DEMO,Phường Mẫu,DEMO-T9,Tổ dân phố 9,tổ dân phố
DEMO,Phường Mẫu,DEMO-T12,Tổ dân phố 12,tổ dân phố
DEMO,Phường Mẫu,DEMO-TH2,Thôn 2,thôn
"""
WARD = "Phường Mẫu"


@pytest.fixture
async def groups(ward: App) -> App:
    rows, errors = parse_groups_csv(EXTRA)
    assert not errors
    async with ward.sessions() as session, session.begin():
        await import_groups(session, rows=rows, actor="test", now=START)
    return ward


def options(d: Driver) -> list[str]:
    """The labels of the options the bot offers now, as this channel shows them."""
    if isinstance(d, TelegramDriver):
        return [label for label, _ in d.tg.buttons(d.user)]
    return numbered_options(d.last_text())


async def reach_group_question(d: Driver) -> None:
    """/start without a join link, consent, the name: the list of the ward's groups."""
    await d.send("/start")
    await d.choose("Đồng ý")
    if d.display_name:
        await d.choose("Đúng rồi")
    else:
        await d.send(NAME)
    assert f"Bạn thuộc tổ dân phố/thôn nào của {WARD}?" in d.last_text()


@dataclass(frozen=True)
class Found:
    """What a typed search should bring: ``confirm`` one group (its name, its code), ``listed``
    groups in this order, or nothing (``not_found`` / ``vague``: the whole list again)."""

    confirm: tuple[str, str] | None = None
    listed: tuple[str, ...] = ()
    note: str | None = None


TDP9 = ("Tổ dân phố 9", "DEMO-T9")
NOT_FOUND = "Mình chưa tìm thấy tổ nào có tên như vậy."
VAGUE = "Bạn gõ thêm số hoặc tên của tổ"

SEARCHES = {
    # The forms.
    "tổ 3": Found(confirm=("Tổ dân phố 3", "DEMO-TDP03")),
    "to 5": Found(confirm=("Tổ dân phố 5", "DEMO-TDP05")),
    "tổ dân phố số 9": Found(confirm=TDP9),
    "tdp 9": Found(confirm=TDP9),
    "thôn 2": Found(confirm=("Thôn 2", "DEMO-TH2")),  # "Tổ dân phố 2" is not a thôn
    # The number alone: the group's number, not a line of the menu ("2" is the second line, "9"
    # the "Trang sau ▶" of the first page: until the numbered channels show this list with
    # letters, "9" and "2" fail there; "12" is past the menu's end and passes everywhere).
    "9": Found(confirm=TDP9),
    "12": Found(confirm=("Tổ dân phố 12", "DEMO-T12")),
    "2": Found(listed=("Thôn 2", "Tổ dân phố 2")),
    # Small typos, other spellings (the ranking's own cases: tests/test_group_search.py).
    "to dan poh 9": Found(confirm=TDP9),
    "thuan phuc": Found(confirm=("Tổ dân phố Thuận Phước", "DEMO-TDP10")),
    "Hoà An": Found(confirm=("Tổ dân phố Hòa An", "DEMO-TDP09")),
    "bắc": Found(confirm=("Tổ dân phố Bắc Sơn", "DEMO-TDP08")),
    # The short code from the notice board, any case, with or without "g_".
    "g_demo-tdp05": Found(confirm=("Tổ dân phố 5", "DEMO-TDP05")),
    "DEMO-TDP05": Found(confirm=("Tổ dân phố 5", "DEMO-TDP05")),
    # Nothing to find.
    "tổ 40": Found(note=NOT_FOUND),
    "tổ dân phố": Found(note=VAGUE),
}


@pytest.mark.parametrize("typed", list(SEARCHES))
async def test_a_typed_search_finds_the_group(groups: App, driver: Driver, typed: str) -> None:
    found = SEARCHES[typed]
    await reach_group_question(driver)
    await driver.send(typed)
    text = driver.last_text()
    if found.confirm is not None:
        name, code = found.confirm
        assert f"Bạn thuộc {name}, {WARD}. Đúng không ạ?" in text
        await driver.choose("Đúng rồi")
        assert f"đã tham gia {name}, {WARD}" in driver.last_text()
        assert (await outcome(groups, driver))["group"] == code
    elif found.listed:
        assert f"Mình tìm thấy mấy tổ này ở {WARD}. Bạn thuộc tổ nào?" in text
        shown = options(driver)
        assert shown[: len(found.listed)] == list(found.listed)
        assert shown[len(found.listed)] == "📋 Xem cả danh sách tổ"
        await driver.choose(found.listed[-1])
        assert f"đã tham gia {found.listed[-1]}, {WARD}" in driver.last_text()
    else:
        assert found.note is not None and driver.said(found.note)
        assert f"Bạn thuộc tổ dân phố/thôn nào của {WARD}?" in text
        assert "Tổ dân phố 1" in options(driver)
        assert (await outcome(groups, driver))["group"] is None


async def test_a_new_resident_may_start_with_the_code_from_the_notice_board(groups: App, driver: Driver) -> None:
    """On Zalo there is no deep link: the first message is the code under the QR code."""
    await driver.send("G_DEMO-TDP05")
    assert "Bạn có đồng ý không?" in driver.last_text()
    await driver.choose("Đồng ý")
    if driver.display_name:
        await driver.choose("Đúng rồi")
    else:
        await driver.send(NAME)
    assert f"Bạn thuộc Tổ dân phố 5, {WARD}. Đúng không ạ?" in driver.last_text()
    await driver.choose("Đúng rồi")
    assert (await outcome(groups, driver))["group"] == "DEMO-TDP05"


async def test_the_code_typed_where_the_name_is_asked_is_not_a_name(groups: App, driver: Driver) -> None:
    await driver.send("/start")
    await driver.choose("Đồng ý")
    if driver.display_name:
        await driver.choose("Đổi tên")
    await driver.send("g_DEMO-TDP05")
    assert "Đó là mã của Tổ dân phố 5, không phải tên." in driver.last_text()
    await driver.send("Cô Lan")
    assert f"Bạn thuộc Tổ dân phố 5, {WARD}. Đúng không ạ?" in driver.last_text()
    await driver.choose("Đúng rồi")
    got = await outcome(groups, driver)
    assert (got["name"], got["group"]) == ("Cô Lan", "DEMO-TDP05")


async def test_doito_offers_to_keep_the_current_group(groups: App, driver: Driver) -> None:
    await join_group(driver)
    await driver.send("/doito")
    assert options(driver)[-1] == "✋ Giữ tổ hiện tại (Tổ dân phố 3)"
    await driver.choose("Giữ tổ hiện tại")
    assert f"Bạn vẫn ở Tổ dân phố 3, {WARD}." in driver.last_text()
    got = await outcome(groups, driver)
    assert (got["group"], got["step"]) == ("DEMO-TDP03", "menu")


async def test_doito_search_names_the_current_group_before_moving(groups: App, driver: Driver) -> None:
    await join_group(driver)
    await driver.send("/doito")
    await driver.send("to 5")
    assert f"Bạn đang ở Tổ dân phố 3. Chuyển sang Tổ dân phố 5, {WARD}?" in driver.last_text()
    assert options(driver) == ["🔄 Chuyển sang Tổ dân phố 5", "✋ Giữ tổ hiện tại (Tổ dân phố 3)", "Chọn tổ khác"]
    await driver.choose("Chuyển sang")
    assert f"Đã chuyển bạn sang Tổ dân phố 5, {WARD}." in driver.last_text()
    assert (await outcome(groups, driver))["group"] == "DEMO-TDP05"


async def test_a_search_list_offers_to_keep_the_current_group(groups: App, driver: Driver) -> None:
    await join_group(driver)
    await driver.send("/doito")
    await driver.send("hai")
    assert options(driver) == ["Thôn 2", "Tổ dân phố 2", "📋 Xem cả danh sách tổ", "✋ Giữ tổ hiện tại (Tổ dân phố 3)"]
    await driver.choose("Giữ tổ hiện tại")
    assert (await outcome(groups, driver))["group"] == "DEMO-TDP03"


async def test_a_second_group_link_names_the_current_group(groups: App, driver: Driver) -> None:
    await join_group(driver)
    await driver.send("/start g_DEMO-TDP05")
    assert f"Bạn đang ở Tổ dân phố 3. Chuyển sang Tổ dân phố 5, {WARD}?" in driver.last_text()
    await driver.choose("Giữ tổ hiện tại")
    assert f"Bạn vẫn ở Tổ dân phố 3, {WARD}." in driver.last_text()
    assert (await outcome(groups, driver))["group"] == "DEMO-TDP03"
    await driver.send("/start g_DEMO-TDP03")  # the group she is in: nothing to ask
    assert "Chuyển sang" not in driver.last_text()


async def test_doiten_can_be_left_with_thoi(groups: App, driver: Driver) -> None:
    await join_group(driver)
    await driver.send("/doiten")
    assert "Bạn muốn mình gọi bạn là gì?" in driver.last_text()
    await driver.choose("Thôi")
    assert f"Bạn vẫn giữ tên {NAME}." in driver.last_text()
    got = await outcome(groups, driver)
    assert (got["name"], got["step"]) == (NAME, "menu")
