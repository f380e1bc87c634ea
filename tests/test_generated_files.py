"""Files written for replies (reports, charts, certificates, QR codes) are kept for a day,
measured on the conversation's clock, and deleted when a later one is written."""

from __future__ import annotations

from pathlib import Path

from bot.app import App
from bot.core.messages import Document, Image, Reply
from tests.staff import make_admin
from tests.support import Chat, ManualClock, join


def _files(replies: list[Reply]) -> list[Path]:
    return [r.path for r in replies if isinstance(r, Document | Image)]


async def test_files_for_replies_are_kept_a_day_on_the_conversation_clock(ward: App, clock: ManualClock) -> None:
    admin = Chat(ward.conversation, user="900", name="Cán bộ Hà")
    await join(admin)
    await make_admin(ward, admin)

    async def report() -> list[Path]:
        await admin.send("/quantri")
        await admin.press("Báo cáo")
        files = _files(await admin.press("6 tháng"))
        assert len(files) == 6 and all(f.exists() for f in files)  # report, workbook, annex, three charts
        return files

    first = await report()
    clock.advance(hours=23)
    second = await report()
    assert all(f.exists() for f in first)  # 23 hours old: kept
    clock.advance(hours=2)
    third = await report()
    assert not any(f.exists() for f in first)  # 25 hours old: deleted
    assert all(f.exists() for f in second + third)
