"""Each resident's next reminder moment (``person.next_reminder_at``), on both databases: set on
activity and on a change of the reminder settings, moved on when a reminder is planned, NULL when
reminders are off, paused after the unanswered limit or the person erased; a tick reads only the
people whose moment has come (when nobody's has, one statement that finds nothing), in batches,
with no bind parameter per person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, update
from sqlmodel import select

from bot.app import App
from bot.reminders import ReminderPolicy, plan_reminders, record_reminder_sent
from storage import outbox
from storage.models import Identity, Outbox, Person
from tests.conftest import seed_demo_groups
from tests.support import Chat, ManualClock, join, sqlite_plans

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
POLICY = ReminderPolicy(zone=ZONE, inactive_days=2, max_unanswered=3)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2026 in Hà Nội, as UTC (the 23rd is the Monday the clock starts on)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def _learner(app: App, user: str) -> Chat:
    chat = Chat(app.conversation, channel="telegram", user=user)
    await join(chat)
    await chat.action(f"lesson:{app.lessons.first.id}")
    return chat


async def _moment(app: App, user: str) -> datetime | None:
    async with app.sessions() as session:
        return (await session.exec(
            select(Person.next_reminder_at).join(Identity, Identity.person_id == Person.id)  # type: ignore[arg-type]
            .where(Identity.external_id == user))).one()


async def _plan(app: App, clock: ManualClock, *, batch: int = 500, policy: ReminderPolicy = POLICY) -> int:
    return await plan_reminders(app.sessions, now=clock.now(), policy=policy, lessons=app.lessons,
                                catalog=app.catalog, batch=batch)


async def _send_all(app: App, clock: ManualClock) -> int:
    """What the sender does for each reminder it delivers."""
    async with app.sessions() as session, session.begin():
        rows = await outbox.claim_due(session, channel="telegram", now=clock.now(),
                                      lease_until=clock.now() + timedelta(minutes=1), limit=100)
        for row in rows:
            await outbox.mark_sent(session, outbox_id=row.id, claim=row.claim, now=clock.now())
            await record_reminder_sent(session, row, clock.now(), policy=POLICY)
    return len(rows)


async def test_the_moment_follows_activity_and_the_reminder_settings(any_app: App, clock: ManualClock) -> None:
    await seed_demo_groups(any_app)
    chat = await _learner(any_app, "7001")  # Monday 23rd, 10:00
    assert await _moment(any_app, "7001") == local(25, 19)  # two days later, at the default 19:00

    clock._now = local(23, 11)
    await chat.send("/nhacnho")
    await chat.press("07:00")
    assert await _moment(any_app, "7001") == local(26, 7)  # 25th 11:00 is past that day's 07:00–09:00

    clock._now = local(23, 20, 30)
    await chat.send("/nhacnho")
    await chat.press("19:00")
    assert await _moment(any_app, "7001") == local(25, 20, 30)  # inside the 19:00 window's catch-up

    await chat.send("/dung")
    assert await _moment(any_app, "7001") is None
    clock._now = local(24, 8)
    await chat.send("/batdau")
    assert await _moment(any_app, "7001") == local(26, 19)

    await chat.send("/xoadulieu")
    await chat.action("erase:yes")
    async with any_app.sessions() as session:
        erased = (await session.exec(select(Person).where(Person.deleted_at.is_not(None)))).one()  # type: ignore[union-attr]
    assert erased.next_reminder_at is None


async def test_planning_and_sending_move_the_moment_on(any_app: App, clock: ManualClock) -> None:
    await seed_demo_groups(any_app)
    chat = await _learner(any_app, "7002")
    clock._now = local(25, 19, 5)
    assert await _plan(any_app, clock) == 1
    assert await _moment(any_app, "7002") == local(26, 19)  # planned: tomorrow's window
    clock._now = local(25, 19, 6)
    assert await _plan(any_app, clock) == 0
    assert await _send_all(any_app, clock) == 1
    assert await _moment(any_app, "7002") == local(26, 19)

    for day in (26, 27):  # the second and the third reminder, unanswered
        clock._now = local(day, 19, 5)
        assert await _plan(any_app, clock) == 1
        assert await _send_all(any_app, clock) == 1
    assert await _moment(any_app, "7002") is None  # the third unanswered: paused until she writes

    clock._now = local(28, 20)
    await chat.send("chào")
    assert await _moment(any_app, "7002") == local(30, 20)  # inactive two days again, in the window


async def test_a_tick_reads_only_who_is_due_in_batches_with_no_bind_per_person(
        any_app: App, clock: ManualClock) -> None:
    await seed_demo_groups(any_app)
    for n in range(5):
        await _learner(any_app, f"71{n}")
    idle = Chat(any_app.conversation, channel="telegram", user="7200")
    await join(idle)  # no lesson in progress: nothing to remind her of
    await _learner(any_app, "7300")
    async with any_app.sessions() as session, session.begin():
        await session.exec(update(Identity).where(Identity.external_id == "7300")  # type: ignore[call-overload]
                           .values(blocked_at=clock.now()))
    statements: list[tuple[str, int]] = []

    def seen(_conn, _cursor, statement, parameters, _context, many) -> None:  # type: ignore[no-untyped-def]
        if "person" in statement:
            statements.append((statement, len(parameters[0] if many else parameters)))

    event.listen(any_app.engine.sync_engine, "before_cursor_execute", seen)
    try:
        clock._now = local(24, 19, 5)  # a day too early for everyone
        assert await _plan(any_app, clock, batch=2) == 0
        assert len(statements) == 1 and statements[0][0].lstrip().startswith("SELECT")

        statements.clear()
        clock._now = local(25, 19, 5)
        assert await _plan(any_app, clock, batch=2) == 5
    finally:
        event.remove(any_app.engine.sync_engine, "before_cursor_execute", seen)
    updates = [binds for sql, binds in statements if sql.lstrip().startswith("UPDATE")]
    assert len(updates) == 4  # seven people, two a batch
    assert max(binds for _, binds in statements) < 64  # a bind per hour of the day at most, none per person
    async with any_app.sessions() as session:
        rows = (await session.exec(select(Outbox).where(Outbox.kind == "reminder"))).all()
    assert len(rows) == len({r.identity_id for r in rows}) == 5
    assert [await _moment(any_app, f"71{n}") for n in range(5)] == [local(26, 19)] * 5
    assert await _moment(any_app, "7200") is None  # read once, then never again
    assert await _moment(any_app, "7300") == local(26, 19)  # blocked today; may unblock by tomorrow
    statements.clear()
    assert await _plan(any_app, clock, batch=2) == 0


async def test_the_rules_are_checked_for_those_read(any_app: App, clock: ManualClock) -> None:
    """A moment computed with two inactive days, planned with three (REMINDER_INACTIVE_DAYS
    raised): read at 19:00 on the 25th, not due, moved on a day; reminded on the 26th."""
    await seed_demo_groups(any_app)
    await _learner(any_app, "7400")
    longer = ReminderPolicy(zone=ZONE, inactive_days=3, max_unanswered=3)
    clock._now = local(25, 19, 5)
    assert await _plan(any_app, clock, policy=longer) == 0
    assert await _moment(any_app, "7400") == local(26, 19)
    clock._now = local(26, 19, 5)
    assert await _plan(any_app, clock, policy=longer) == 1


async def test_the_tick_walks_the_next_reminder_index(app: App, clock: ManualClock) -> None:
    """SQLite's plan: the tick's read and its UPDATE search ``ix_person_next_reminder`` by
    moment — no scan of the people, no sort — whether nobody is due or a wave is."""
    await seed_demo_groups(app)
    for n in range(3):
        await _learner(app, f"75{n}")

    async def tick() -> None:
        await _plan(app, clock, batch=2)

    # Nobody due: one read. The wave of three, two a batch: read, their accounts, their outbox rows
    # (which name `about_person_id`), UPDATE; twice.
    for moment, expected in ((local(24, 10), 1), (local(25, 19, 5), 8)):
        clock._now = moment
        plans = await sqlite_plans(app, tick, touching="person")
        assert len(plans) == expected
        for statement, plan in plans:
            if not statement.lstrip().startswith(("SELECT person.", "UPDATE person")):
                continue  # the reachable accounts of the batch: identities, by person
            # The read walks the index; the UPDATE finds the batch by the same walk (its LIST
            # SUBQUERY), then each row by id. No scan of the people, no sort of them (a lesson's
            # subquery sorts the few rows of one person).
            walk = "INDEX ix_person_next_reminder (next_reminder_at"
            assert any(step.startswith("SEARCH person") and walk in step for step in plan), plan
            assert not any(step.startswith("SCAN person") for step in plan), plan
            own = plan[:next((i for i, step in enumerate(plan) if "CORRELATED" in step), len(plan))]
            assert not any("TEMP B-TREE" in step for step in own), plan
