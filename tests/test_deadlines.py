"""Report-deadline reminders (issue 11 §3, ``bot/deadlines.py``): 7 days before 05/11 at 08:00
in the ward, every ward admin — never a leader — gets one message naming the report and the
deadline, with the period's workbook and chart; run again, after a restart or the next day,
nothing more; caught up at night, it waits for the end of the quiet hours like any proactive
message, then goes out with its documents through the real sender and the fake Bot API."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.date import DateTrigger
from docx import Document
from openpyxl import load_workbook

from bot.app import App
from bot.deadlines import parse_deadlines
from bot.delivery.quiet import QuietHours
from bot.reminders import ReminderPolicy
from bot.scheduling import Producers, build_scheduler, send_deadline_reminders, tick
from storage.models import Outbox
from tests.delivery.helpers import telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.staff import make_admin, make_leader, person_of, rows
from tests.support import Chat, ManualClock, join

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = QuietHours(ZONE, time(21), time(7))
ADMIN, LEADER, RESIDENT = 9101, 9102, 9103


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def _staff(ward: App, clock: ManualClock) -> dict[str, Chat]:
    clock._now = local(10, 20, 10)
    chats = {}
    for name, user, code in (("admin", ADMIN, "DEMO-TDP01"), ("leader", LEADER, "DEMO-TDP03"),
                             ("resident", RESIDENT, "DEMO-TDP03")):
        chats[name] = Chat(ward.conversation, channel="telegram", user=str(user), name=f"Cán bộ {name}")
        await join(chats[name], group_code=code)
    await make_admin(ward, chats["admin"])
    await make_leader(ward, chats["leader"], "DEMO-TDP03")
    return chats


def _producers(ward: App, clock: ManualClock, files: Path, **kwargs) -> Producers:  # type: ignore[no-untyped-def]
    return Producers(sessions=ward.sessions, clock=clock, lessons=ward.lessons, catalog=ward.catalog,
                     policy=ReminderPolicy(zone=ZONE), deadlines=parse_deadlines("05/11=year,05/05=6m"),
                     remind_days=7, files_dir=files, **kwargs)


async def _reminders(ward: App) -> list[Outbox]:
    return [r for r in await rows(ward, Outbox) if r.kind == "deadline"]


async def test_seven_days_before_05_11_the_admin_gets_the_annual_report_once(
    ward: App, clock: ManualClock, tmp_path: Path
) -> None:
    chats = await _staff(ward, clock)
    queued = asyncio.Event()
    producers = _producers(ward, clock, tmp_path, on_queued=queued.set)
    scheduler = build_scheduler(producers, zone=ZONE, tick_seconds=3600)
    job = scheduler.get_job("report-deadlines")
    assert job is not None and job.func is send_deadline_reminders
    assert job.trigger.get_next_fire_time(None, local(10, 29, 7, 59)) == datetime(2026, 10, 29, 8, tzinfo=ZONE)

    clock._now = local(10, 29, 7, 59)  # the day, before the morning hour: nothing yet
    assert await send_deadline_reminders(producers) == 0
    clock._now = local(10, 29, 8)
    scheduler.start()
    try:  # the real scheduler runs the job (its trigger is on the wall clock: run it now)
        job.modify(next_run_time=DateTrigger(timezone=ZONE).run_date)
        await asyncio.wait_for(queued.wait(), 10)
    finally:
        scheduler.shutdown(wait=False)

    admin = await person_of(ward, chats["admin"])
    [row] = await _reminders(ward)
    assert row.dedupe_key == f"deadline:1:year:2026-11-05:{admin.id}" and row.due_at == local(10, 29, 8)
    text = row.payload["text"]
    assert "còn 7 ngày nữa đến hạn nộp báo cáo năm của Phường Mẫu (05/11/2026)" in text
    assert "từ 01/01/2026 đến 29/10/2026" in text
    report, workbook, annex, *charts = (Path(p) for p in row.payload["documents"])
    assert [f.suffix for f in (report, workbook, annex, *charts)] == [".docx", ".xlsx", ".docx", ".png", ".png", ".png"]
    assert workbook.parent == tmp_path / "out"
    assert "Phường Mẫu" in str(load_workbook(BytesIO(workbook.read_bytes())).worksheets[0]["A1"].value)
    assert any("BÁO CÁO" in p.text for p in Document(BytesIO(report.read_bytes())).paragraphs)
    assert any("KHEN THƯỞNG" in p.text.upper() for p in Document(BytesIO(annex.read_bytes())).paragraphs)
    assert all(chart.read_bytes().startswith(b"\x89PNG") for chart in charts)

    assert await send_deadline_reminders(producers) == 0  # not twice…
    producers.deadline_day = None
    assert (await tick(producers))["deadlines"] == 0  # …nor after a restart (the dedupe key)
    clock._now = local(10, 30, 8)
    assert await send_deadline_reminders(producers) == 0  # nor the next day
    clock._now = local(4, 28, 8)  # 7 days before 05/05: the half-year report, to the admin only
    assert await send_deadline_reminders(producers) == 1
    rows_now = await _reminders(ward)
    assert len(rows_now) == 2 and "báo cáo 6 tháng" in rows_now[1].payload["text"]
    assert "từ 01/01/2026 đến 28/04/2026" in rows_now[1].payload["text"]


@pytest.mark.parametrize("days", [7, 3])
async def test_at_night_the_reminder_waits_for_the_morning_then_brings_its_documents(
    ward: App, clock: ManualClock, tmp_path: Path, days: int
) -> None:
    await _staff(ward, clock)
    producers = _producers(ward, clock, tmp_path)
    producers.remind_days = days
    day = date(2026, 11, 5) - timedelta(days=days)
    clock._now = local(day.month, day.day, 22, 30)  # the process came back at night: the tick catches up
    assert (await tick(producers))["deadlines"] == 1
    assert "deadlines" not in await tick(producers)  # once a day per process
    async with FakeTelegram() as tg:
        for user in (ADMIN, LEADER, RESIDENT):
            tg.add_user(user)
        sender = telegram_sender(ward.sessions, tg, clock=clock, quiet=QUIET)
        task = asyncio.create_task(sender.run())
        try:
            rounds = sender.rounds
            while sender.rounds < rounds + 3:
                sender.wake()
                await asyncio.sleep(0.01)
            assert tg.sent_count(ADMIN) == 0  # the quiet hours
            clock._now = local(day.month, day.day + 1, 7)
            sender.wake()
            await tg.wait_for(lambda t: t.sent_count(ADMIN) == 7, timeout=30)  # a text and six files
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
    message, *documents = tg.chat(ADMIN)
    assert f"còn {days} ngày nữa đến hạn nộp báo cáo năm" in message.text
    assert [d.media["file_name"].rsplit(".", 1)[1] for d in documents] == ["docx", "xlsx", "docx", "png", "png", "png"]
    # The leader may get the Monday digest (02/11), never the reminder; the resident nothing of it.
    assert not any("hạn nộp" in (m.text or "") for m in [*tg.chat(LEADER), *tg.chat(RESIDENT)])


def test_the_deadlines_setting_is_checked_when_loaded() -> None:
    from bot.config import SettingsError, load_settings
    from bot.deadlines import Deadline
    from bot.reports.period import Span

    assert parse_deadlines(" 05/11=year , 05/05=6m ") == [Deadline(5, 11, Span.YEAR), Deadline(5, 5, Span.HALF_YEAR)]
    assert load_settings(_env_file=None).report_remind_days == 7
    for bad in ("05/11=month", "31/02=year", "5-11=year", "05/13=6m"):
        with pytest.raises(SettingsError, match="REPORT_DEADLINES"):
            load_settings(_env_file=None, report_deadlines=bad)
