"""Scheduled broadcasts: the CLI, the audience, quiet hours, the tick that queues them,
the real scheduler, the delivery report per group, cancelling."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import App
from bot.cli import Deps, cli
from bot.delivery.quiet import QuietHours
from bot.reminders import ReminderPolicy
from bot.scheduling import JOB_DEFAULTS, Producers, build_scheduler, tick
from storage.broadcasts import create_broadcast
from storage.models import Broadcast, BroadcastStatus, Outbox, OutboxStatus
from storage.outbox import delivery_report
from tests.delivery.helpers import telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.support import Chat, ManualClock, join, pass_lesson

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = QuietHours(ZONE, time(21), time(7))


async def _cli(app: App, *args: str):  # type: ignore[no-untyped-def]
    """The real command, in a thread (it runs its own event loop), on the test database and
    the test's clock."""
    env = {"DATABASE_URL": app.settings.database_url, "QUIET_HOURS": "21:00-07:00"}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, obj=Deps(clock=app.clock))


def _local_day(clock: ManualClock, days: int) -> datetime:
    """Midnight in the ward, ``days`` after the clock's day."""
    return (clock.now().astimezone(ZONE) + timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)


async def _residents(ward: App) -> dict[str, Chat]:
    """Lan and Minh in Tổ dân phố 3 (Lan completed lesson 1), Hoa in Tổ dân phố 5."""
    chats = {}
    for user, group in (("lan", "DEMO-TDP03"), ("minh", "DEMO-TDP03"), ("hoa", "DEMO-TDP05")):
        chat = Chat(ward.conversation, channel="telegram", user=str(hash(user) % 10**9), name=user)
        await join(chat, group_code=group)
        chats[user] = chat
    await pass_lesson(chats["lan"], ward.lessons.first)
    return chats


async def _rows(app: App, broadcast_id: int) -> list[Outbox]:
    async with app.sessions() as session:
        return list((await session.exec(select(Outbox).where(Outbox.broadcast_id == broadcast_id))).all())


async def _stamp_schema(app: App) -> None:
    """The tests build tables with create_all; tell Alembic they are current."""
    from sqlalchemy import text

    from storage.migrate import head_revision

    async with app.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        await conn.execute(text("DELETE FROM alembic_version"))
        await conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head_revision()})


async def test_audiences_from_the_command_line(ward: App) -> None:
    await _residents(ward)
    await _stamp_schema(ward)
    everyone = await _cli(ward, "broadcast", "send", "--text", "Họp tổ tối nay", "--to", "all")
    assert everyone.exit_code == 0, everyone.output
    assert "cho 3 người" in everyone.output
    group = await _cli(ward, "broadcast", "send", "--text", "Tổ 3 học bài 2", "--to", "group:DEMO-TDP03")
    assert "cho 2 người" in group.output
    lesson = ward.lessons.first.id
    behind = await _cli(ward, "broadcast", "send", "--text", "Mời học bài 1", "--to", f"not-completed:{lesson}")
    assert "cho 2 người" in behind.output
    names = {}
    async with ward.sessions() as session:
        from storage.models import Identity, Person

        for row in (await session.exec(select(Outbox))).all():
            identity = await session.get(Identity, row.identity_id)
            person = await session.get(Person, identity.person_id)  # type: ignore[union-attr]
            names.setdefault(row.broadcast_id, set()).add(person.display_name)  # type: ignore[union-attr]
    assert names == {1: {"lan", "minh", "hoa"}, 2: {"lan", "minh"}, 3: {"minh", "hoa"}}


async def test_bad_requests_are_refused_clearly(ward: App) -> None:
    await _stamp_schema(ward)
    cases = [
        (["--text", "x", "--to", "group:NOPE"], "không có tổ NOPE"),
        (["--text", "x", "--to", "everyone"], "không hợp lệ"),
        (["--text", "x", "--to", "not-completed:b99"], "không có bài học 'b99'"),
        (["--text", "   ", "--to", "all"], "nội dung thông báo đang trống"),
        (["--text", "x", "--to", "all", "--at", "thứ hai"], "«thứ hai» còn thiếu giờ gửi"),
        (["--text", "x", "--to", "all", "--at", "31/02 8h"], "Ngày «31/02» không có trong lịch"),
        (["--text", "x", "--to", "all", "--at", "8h hôm qua"], "08:00 22/11/2026 đã qua rồi"),
        (["--text", "x", "--to", "all", "--image", "/nope.png"], "không tìm thấy ảnh"),
    ]
    for args, expected in cases:
        result = await _cli(ward, "broadcast", "send", *args)
        assert result.exit_code == 1 and expected in result.output, (args, result.output)
    async with ward.sessions() as session:
        assert (await session.exec(select(Broadcast))).all() == []


async def test_a_broadcast_at_22_00_waits_for_7_00(ward: App, clock: ManualClock) -> None:
    await _residents(ward)
    await _stamp_schema(ward)
    tomorrow = _local_day(clock, 1)
    at = f"{tomorrow:%Y-%m-%d} 22:00"
    result = await _cli(ward, "broadcast", "send", "--text", "Tin tối", "--to", "all", "--at", at)
    assert result.exit_code == 0, result.output
    assert f"gửi lúc 07:00 {tomorrow + timedelta(days=1):%d/%m/%Y}" in result.output, result.output
    # The same reader as the chat's: "10 giờ tối mai" is that time too.
    typed = await _cli(ward, "broadcast", "send", "--text", "Tin tối", "--to", "all", "--at", "10 giờ tối mai")
    assert f"gửi lúc 07:00 {tomorrow + timedelta(days=1):%d/%m/%Y}" in typed.output, typed.output


async def test_the_tick_queues_a_broadcast_when_due_once(ward: App, clock: ManualClock) -> None:
    await _residents(ward)
    async with ward.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="test", text="Ngày hội", audience={"kind": "all"},
                                           scheduled_at=clock.now().replace(hour=5), now=clock.now())  # 12:00 local
    producers = Producers(sessions=ward.sessions, clock=clock, lessons=ward.lessons, catalog=ward.catalog,
                          policy=ReminderPolicy(zone=ZONE))
    assert (await tick(producers))["broadcast_rows"] == 0  # 10:00: not yet
    clock.advance(hours=2)
    assert (await tick(producers))["broadcast_rows"] == 3
    assert (await tick(producers))["broadcast_rows"] == 0  # queued once
    assert len(await _rows(ward, broadcast.id)) == 3  # type: ignore[arg-type]


@pytest.mark.parametrize("years", [0, 70])
async def test_the_real_scheduler_runs_the_tick(ward: App, clock: ManualClock, years: int) -> None:
    """APScheduler times its jobs on the wall clock; the first tick comes at once even when the
    producers' clock is far from it (70 years ahead)."""
    await _residents(ward)
    clock.advance(days=365 * years)
    async with ward.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="test", text="Ngay", audience={"kind": "all"},
                                           scheduled_at=clock.now(), now=clock.now())
    queued = asyncio.Event()
    producers = Producers(sessions=ward.sessions, clock=clock, lessons=ward.lessons, catalog=ward.catalog,
                          policy=ReminderPolicy(zone=ZONE), on_queued=queued.set)
    scheduler = build_scheduler(producers, zone=ZONE, tick_seconds=60)
    scheduler.start()
    try:
        job = scheduler.get_job("outbox-tick")
        assert job is not None and (job.coalesce, job.max_instances, job.misfire_grace_time) == (
            JOB_DEFAULTS["coalesce"], JOB_DEFAULTS["max_instances"], JOB_DEFAULTS["misfire_grace_time"])
        await asyncio.wait_for(queued.wait(), 10)  # the first run is immediate
    finally:
        scheduler.shutdown(wait=False)
    assert len(await _rows(ward, broadcast.id)) == 3  # type: ignore[arg-type]


async def test_delivery_report_per_group_and_cancel(ward: App, clock: ManualClock) -> None:
    chats = await _residents(ward)
    await _stamp_schema(ward)
    result = await _cli(ward, "broadcast", "send", "--text", "Thông báo của phường", "--to", "all")
    assert result.exit_code == 0, result.output
    at = f"{_local_day(clock, 45):%Y-%m-%d} 09:00"
    later = await _cli(ward, "broadcast", "send", "--text", "Sau", "--to", "all", "--at", at)
    assert "Đã lên lịch thông báo #2 cho 3 người (tính đến bây giờ)" in later.output
    async with FakeTelegram() as tg:
        for chat in chats.values():
            tg.add_user(int(chat.user))
        tg.blocked_users.add(int(chats["hoa"].user))
        sender = telegram_sender(ward.sessions, tg, clock=clock)
        task = asyncio.create_task(sender.run())
        try:
            await tg.wait_for(lambda t: t.sent_count(int(chats["lan"].user)) and t.sent_count(int(chats["minh"].user)))
            while any(r.status in (OutboxStatus.PENDING, OutboxStatus.SENDING) for r in await _rows(ward, 1)):
                await asyncio.sleep(0.05)
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
    async with ward.sessions() as session:
        report = await delivery_report(session, broadcast_id=1)
    assert report.totals == {"sent": 2, "blocked": 1, "failed": 0, "pending": 0}
    assert report.by_group == {
        "Tổ dân phố 3 (DEMO-TDP03)": {"sent": 2, "blocked": 0, "failed": 0, "pending": 0},
        "Tổ dân phố 5 (DEMO-TDP05)": {"sent": 0, "blocked": 1, "failed": 0, "pending": 0},
    }
    status = await _cli(ward, "broadcast", "status", "1")
    assert "📬 Thông báo #1 — gửi tất cả người dân của phường" in status.output
    assert "✅ Đã gửi xong: đã gửi 2 · lỗi 0 · bị chặn 1" in status.output  # a status that ends
    assert "Tổng: đã gửi 2 · bị chặn 1 · lỗi 0 · đang chờ 0" in status.output
    assert "Tổ dân phố 5 (DEMO-TDP05): đã gửi 0 · bị chặn 1" in status.output
    cancelled = await _cli(ward, "broadcast", "cancel", "2")
    assert cancelled.exit_code == 0 and "Đã hủy thông báo #2" in cancelled.output
    async with ward.sessions() as session:
        assert (await session.get(Broadcast, 2)).status == BroadcastStatus.CANCELLED  # type: ignore[union-attr]
    assert (await _cli(ward, "broadcast", "status", "99")).exit_code == 1
