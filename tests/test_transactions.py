"""Transactions are short (issue 9 §5): no download, no file rendering inside the update's
database transaction, so on SQLite — one writer at a time — nobody waits behind a photo being
fetched or a report being drawn; and a burst of residents joining at once all get in.

"Inside a transaction" is observed the way another resident would: can a second connection
take SQLite's write lock at that moment, without waiting?
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.app import App
from bot.core.messages import Document, Image
from storage.models import Person
from tests.staff import make_admin
from tests.support import Chat, join, pass_lesson


def _write_lock_is_free(app: App) -> bool:
    """Whether another connection can take the write lock right now (no waiting)."""
    connection = sqlite3.connect(make_url(app.settings.database_url).database or "", timeout=0,
                                 isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


async def test_a_broadcast_photo_is_downloaded_before_the_transaction(ward: App) -> None:
    admin = Chat(ward.conversation, user="9000", name="Cán bộ Hà")
    await join(admin)
    await make_admin(ward, admin)
    await admin.send("/quantri")
    await admin.press("Soạn thông báo")
    free_during_download: list[bool] = []
    photo = ward.conversation.services.files_dir / "in" / "tg-photo.jpg"

    async def download() -> Path:
        free_during_download.append(_write_lock_is_free(ward))
        photo.parent.mkdir(parents=True, exist_ok=True)
        PILImage.new("RGB", (40, 30), "blue").save(photo, format="JPEG")
        return photo

    await admin._handle(attachment="photo", fetch_media=download, text="Ngày hội")
    assert free_during_download == [True]
    assert "mời bà con học bài" in admin.last_text  # the photo was taken: the draft goes on


async def test_certificate_and_report_are_drawn_after_the_transaction(
    ward: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.reports.certificate
    import bot.reports.exports

    free: dict[str, list[bool]] = {"certificate": [], "drawing": []}
    certificate_png, in_drawing_process = bot.reports.certificate.certificate_png, bot.reports.exports.in_drawing_process

    def certificate(**fields):  # type: ignore[no-untyped-def]
        free["certificate"].append(_write_lock_is_free(ward))
        return certificate_png(**fields)

    async def drawing(function, *args, **kwargs):  # type: ignore[no-untyped-def]
        free["drawing"].append(_write_lock_is_free(ward))  # the report's files go to the drawing process
        return await in_drawing_process(function, *args, **kwargs)

    monkeypatch.setattr(bot.reports.certificate, "certificate_png", certificate)
    monkeypatch.setattr(bot.reports.exports, "in_drawing_process", drawing)
    lan = Chat(ward.conversation, user="31", name="Lan")
    await join(lan)
    replies = []
    for lesson in ward.lessons:
        replies = await pass_lesson(lan, lesson)
    assert any(isinstance(r, Image) for r in replies), "the certificate came with the last lesson"
    admin = Chat(ward.conversation, user="32", name="Hà")
    await join(admin)
    await make_admin(ward, admin)
    await admin.send("/quantri")
    await admin.press("Báo cáo")
    replies = await admin.press("Tháng này")
    assert any(isinstance(r, Document) for r in replies) and any(isinstance(r, Image) for r in replies)
    assert free == {"certificate": [True], "drawing": [True, True]}  # the documents, then the workbook


async def test_a_burst_of_residents_joining_at_once_all_get_in(ward: App) -> None:
    """Many /start and consent presses at the same moment: the per-update transactions queue
    for SQLite's write lock (BEGIN IMMEDIATE), a busy database is retried, nobody is left
    half-joined or gets an apology."""
    ward.conversation.reraise = False  # as in production: an error would become an apology
    people = [Chat(ward.conversation, user=f"b{n}", name=f"Cư dân {n}") for n in range(150)]
    await asyncio.gather(*(chat.send("/start g_DEMO-TDP02") for chat in people))
    await asyncio.gather(*(chat.press("Đồng ý") for chat in people))
    await asyncio.gather(*(chat.press("Đúng rồi") for chat in people))
    await asyncio.gather(*(chat.press("Đúng rồi") for chat in people))
    assert not [c.user for c in people if "trục trặc" in c.texts()]
    async with ward.sessions() as session:
        joined = (await session.exec(select(Person).where(Person.group_id.is_not(None)))).all()  # type: ignore[union-attr]
    assert len(joined) == len(people)
