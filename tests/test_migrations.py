"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import create_engine
from storage.migrate import head_revision, schema_is_current, upgrade


async def test_upgrade_to_head_matches_the_models(any_db_url: str) -> None:
    await asyncio.to_thread(upgrade, any_db_url)  # Alembic runs its own event loop
    engine = create_engine(any_db_url)
    try:
        def diff(connection):  # type: ignore[no-untyped-def]
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)

        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
        assert differences == []
        assert await schema_is_current(engine)
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent_and_a_fresh_database_is_not_current(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        assert not await schema_is_current(engine)
        await asyncio.to_thread(upgrade, sqlite_url)
        await asyncio.to_thread(upgrade, sqlite_url)
        assert await schema_is_current(engine)
        assert head_revision() == "0013"
    finally:
        await engine.dispose()


async def test_0006_keeps_delivery_outcomes_when_the_recipient_erases(any_db_url: str) -> None:
    """Rows queued before 0006 get their recipient's group; after it, deleting an identity keeps
    its outbox rows as anonymous outcomes (identity NULL, group kept) instead of deleting them."""
    from sqlalchemy import text

    await asyncio.to_thread(upgrade, any_db_url, "0005")
    engine = create_engine(any_db_url)
    at = "2026-11-30 08:00:00+00:00"
    try:
        async with engine.begin() as connection:
            run = connection.execute
            await run(text("INSERT INTO ward (id, code, name) VALUES (1, 'w', 'Phường Thử')"))
            await run(text("INSERT INTO resident_group (id, code, ward_id, name, kind, target_percent) "
                           "VALUES (7, 'to1', 1, 'Tổ 1', 'to-dan-pho', 80)"))
            await run(text("INSERT INTO person (id, group_id, display_name, locale, reminder_hour, reminders_on, "
                           f"reminders_unanswered, created_at) VALUES (3, 7, 'Hoa', 'vi', 19, true, 0, '{at}')"))
            await run(text("INSERT INTO identity (id, person_id, channel, external_id, created_at) "
                           f"VALUES (5, 3, 'telegram', '42', '{at}')"))
            await run(text("INSERT INTO outbox (kind, identity_id, channel, payload, due_at, status, attempts, "
                           "claim, dedupe_key, created_at) VALUES ('broadcast', 5, 'telegram', '{}', "
                           f"'{at}', 'sent', 1, 1, 'b:1:3', '{at}')"))
        await asyncio.to_thread(upgrade, any_db_url)
        async with engine.begin() as connection:
            assert (await connection.execute(text("SELECT group_id, identity_id FROM outbox"))).one() == (7, 5)
            assert (await connection.execute(text("SELECT adults FROM resident_group"))).scalar() is None
            await connection.execute(text("DELETE FROM identity WHERE id = 5"))
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT group_id, identity_id, status FROM outbox"))).all()
        assert [tuple(r) for r in rows] == [(7, None, "sent")]
    finally:
        await engine.dispose()


async def _at_0009_with_channels(url: str, *, wards: int) -> None:
    """A deployment made before channel accounts: identities on Telegram and Zalo, an outbox
    row and a handled event."""
    from sqlalchemy import text

    await asyncio.to_thread(upgrade, url, "0009")
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            run = connection.execute
            for n in range(1, wards + 1):
                await run(text(f"INSERT INTO ward (id, code, name) VALUES ({n}, 'w{n}', 'Phường {n}')"))
            await run(text("INSERT INTO identity (id, channel, external_id, created_at) VALUES "
                           "(1, 'telegram', '42', '2026-03-01 08:00:00+00:00'), "
                           "(2, 'zalo', 'abc', '2026-05-01 08:00:00+00:00'), "
                           "(3, 'telegram', '43', '2026-04-01 08:00:00+00:00')"))
            await run(text("INSERT INTO outbox (kind, identity_id, channel, payload, due_at, status, attempts, "
                           "claim, dedupe_key, created_at) VALUES ('reminder', 2, 'zalo', '{}', "
                           "'2026-05-02 08:00:00+00:00', 'sent', 1, 1, 'r:2', '2026-04-20 08:00:00+00:00')"))
            await run(text("INSERT INTO handled_event (source, event_id, handled_at) "
                           "VALUES ('telegram', '9001', '2026-02-01 08:00:00+00:00')"))
    finally:
        await engine.dispose()


async def test_0010_puts_existing_data_on_default_accounts_of_the_only_ward(any_db_url: str) -> None:
    """Every channel in use becomes an account of its own kind, serving the only ward; no
    identity or outbox row is rewritten (their channel is the account's key)."""
    from datetime import UTC, datetime

    from sqlmodel import select
    from sqlmodel.ext.asyncio.session import AsyncSession

    from storage.accounts import list_accounts
    from storage.models import ChannelAccount, Identity

    await _at_0009_with_channels(any_db_url, wards=1)
    await asyncio.to_thread(upgrade, any_db_url)
    engine = create_engine(any_db_url)
    try:
        async with AsyncSession(engine) as session:
            accounts = (await session.exec(select(ChannelAccount).order_by(ChannelAccount.key))).all()
            assert [(a.key, a.kind, a.ward_id) for a in accounts] == [("telegram", "telegram", 1), ("zalo", "zalo", 1)]
            # Registered when first used: the handled event (Feb) before the first identity (Mar).
            assert accounts[0].created_at == datetime(2026, 2, 1, 8, tzinfo=UTC)
            assert accounts[1].created_at == datetime(2026, 4, 20, 8, tzinfo=UTC)
            rows = await list_accounts(session)
            assert [(r.key, r.ward_code, r.identities) for r in rows] == [("telegram", "w1", 2), ("zalo", "w1", 1)]
            channels = (await session.exec(select(Identity.channel).order_by(Identity.id))).all()
            assert channels == ["telegram", "zalo", "telegram"]
    finally:
        await engine.dispose()


async def test_0010_with_several_wards_keeps_the_accounts_serving_every_ward(sqlite_url: str) -> None:
    from sqlalchemy import text

    await _at_0009_with_channels(sqlite_url, wards=2)
    await asyncio.to_thread(upgrade, sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT key, ward_id FROM channel_account ORDER BY key"))).all()
        assert [tuple(r) for r in rows] == [("telegram", None), ("zalo", None)]
    finally:
        await engine.dispose()


async def test_0011_gives_whoever_may_be_reminded_a_moment_the_first_tick_reads(
        any_db_url: str, library, catalog) -> None:  # type: ignore[no-untyped-def]
    """The backfill is one UPDATE: whoever may be reminded (reminders on, consented, not erased, a
    lesson in progress) gets their last activity — already past, so the first tick reads them,
    checks the rules and moves them on to their hour's next window; everyone else gets NULL."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, select

    from bot.reminders import ReminderPolicy, plan_reminders
    from storage.db import session_factory
    from storage.types import UTCDateTime

    await asyncio.to_thread(upgrade, any_db_url, "0009")
    meta = MetaData()
    person = Table("person", meta, Column("id", Integer, primary_key=True), Column("locale", String),
                   Column("reminder_hour", Integer), Column("reminders_on", Boolean),
                   Column("reminders_unanswered", Integer), Column("consent_at", UTCDateTime),
                   Column("created_at", UTCDateTime), Column("last_active_at", UTCDateTime),
                   Column("deleted_at", UTCDateTime))
    progress = Table("lesson_progress", meta, Column("person_id", Integer), Column("lesson_id", String),
                     Column("lesson_version", Integer), Column("status", String), Column("attempts", Integer),
                     Column("started_at", UTCDateTime), Column("updated_at", UTCDateTime))
    created, active = datetime(2026, 11, 2, 1, tzinfo=UTC), datetime(2026, 11, 20, 4, 30, tzinfo=UTC)
    learner = {"reminders_on": True, "consent_at": created, "last_active_at": active, "deleted_at": None}
    people = {
        1: learner,
        2: {**learner, "last_active_at": None},  # consented, then never seen again: from its creation
        3: {**learner, "reminders_on": False},
        4: {**learner, "consent_at": None, "deleted_at": active},  # erased
        5: learner,  # no lesson in progress
    }
    engine = create_engine(any_db_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(person.insert(), [
                {"id": n, "locale": "vi", "reminder_hour": 19, "reminders_unanswered": 0, "created_at": created,
                 **values} for n, values in people.items()])
            lesson = library.first
            await connection.execute(progress.insert(), [
                {"person_id": n, "lesson_id": lesson.id, "lesson_version": 1, "attempts": 0,
                 "status": "completed" if n == 5 else "in_progress", "started_at": created, "updated_at": created}
                for n in people])
        await asyncio.to_thread(upgrade, any_db_url)
        read = Table("person", MetaData(), Column("id", Integer), Column("next_reminder_at", UTCDateTime))

        async def moments() -> dict[int, datetime | None]:
            async with engine.connect() as connection:
                return dict((await connection.execute(select(read.c.id, read.c.next_reminder_at))).all())

        assert await moments() == {1: active, 2: created, 3: None, 4: None, 5: None}

        zone = ZoneInfo("Asia/Ho_Chi_Minh")
        now = datetime(2026, 12, 2, 10, tzinfo=zone)  # the first tick after the upgrade, at 10:00
        queued = await plan_reminders(session_factory(engine), now=now, policy=ReminderPolicy(zone=zone),
                                      lessons=library, catalog=catalog)
        assert queued == 0  # 10:00 is nobody's hour
        evening = datetime(2026, 12, 2, 19, tzinfo=zone).astimezone(UTC)
        assert await moments() == {1: evening, 2: evening, 3: None, 4: None, 5: None}
    finally:
        await engine.dispose()
