"""A ward beyond 32,767 members: every number is computed with SQL aggregates, never with one
bind parameter per person (PostgreSQL refuses more than 32,767; SQLite's limit is near it too).

The residents are inserted with one INSERT … SELECT over a recursive CTE (fast on both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlmodel import select

from bot.app import App
from bot.digest import plan_digests
from storage.models import Identity, Outbox, Person, ResidentGroup, Role, RoleKind, Ward
from storage.report_data import residents_progress
from storage.stats import group_stats, members_progress, ranking
from storage.types import UTCDateTime
from tests.conftest import seed_demo_groups

RESIDENTS = 32_800  # past 32,767
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
WHEN = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
MONDAY_8 = datetime(2026, 11, 30, 8, tzinfo=ZONE).astimezone(UTC)


async def _big_group(app: App) -> tuple[int, int, list[str]]:
    """DEMO-TDP01 with a leader (no lessons, inactive) and RESIDENTS residents: every one
    completed lesson 1, the even ids lesson 2 as well. Returns (ward id, group id, lesson ids)."""
    await seed_demo_groups(app)
    lessons = [lesson.id for lesson in list(app.lessons)[:2]]
    async with app.sessions() as session, session.begin():
        group = (await session.exec(select(ResidentGroup).where(ResidentGroup.code == "DEMO-TDP01"))).one()
        leader = Person(display_name="Tổ trưởng", group_id=group.id, consent_at=WHEN, consent_version="1",
                        created_at=WHEN)
        session.add(leader)
        await session.flush()
        session.add(Identity(person_id=leader.id, channel="telegram", external_id="leader", created_at=WHEN))
        session.add(Role(person_id=leader.id, kind=RoleKind.LEADER, group_id=group.id, granted_by="test",  # type: ignore[arg-type]
                         granted_at=WHEN))
        when = bindparam("when", WHEN, type_=UTCDateTime)
        yes = bindparam("yes", True)
        connection = await session.connection()
        await connection.execute(text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
            "INSERT INTO person (display_name, group_id, locale, consent_at, consent_version, reminder_hour, "
            "reminders_on, reminders_unanswered, created_at) "
            "SELECT 'Cư dân ' || i, :group, 'vi', :when, '1', 19, :yes, 0, :when FROM n"
        ).bindparams(when, yes), {"count": RESIDENTS, "group": group.id})
        for lesson, parity in ((lessons[0], None), (lessons[1], 0)):
            await connection.execute(text(
                "INSERT INTO lesson_progress (person_id, lesson_id, lesson_version, status, attempts, card, "
                "started_at, completed_at, updated_at) "
                "SELECT id, :lesson, 1, 'completed', 1, 0, :when, :when, :when FROM person "
                "WHERE group_id = :group AND id <> :leader" + ("" if parity is None else " AND id % 2 = 0")
            ).bindparams(when), {"lesson": lesson, "group": group.id, "leader": leader.id})
        assert leader.id == 1
        return group.ward_id, group.id, lessons  # type: ignore[return-value]


async def test_every_number_of_a_ward_past_32767_members(any_app: App) -> None:
    ward_id, group_id, lessons = await _big_group(any_app)
    finished = len([i for i in range(2, RESIDENTS + 2) if i % 2 == 0])
    async with any_app.sessions() as session:
        stats = await group_stats(session, lesson_ids=lessons, since=MONDAY_8 - timedelta(days=7), ward_id=ward_id,
                                  by_lesson=True)
        big = next(s for s in stats if s.group_id == group_id)
        assert (big.members, big.started, big.finished, big.finished_before) == (RESIDENTS + 1, RESIDENTS, finished,
                                                                               finished)
        assert big.lessons[lessons[0]].completed_self == RESIDENTS and big.lessons[lessons[1]].started == finished
        until = await group_stats(session, lesson_ids=lessons, since=WHEN - timedelta(days=1),
                                  until=WHEN - timedelta(hours=1), ward_id=ward_id)
        assert next(s for s in until if s.group_id == group_id).members == 0
        assert ranking(stats)[0].group_id == group_id
        members = await members_progress(session, group_id=group_id, lesson_ids=lessons)
        assert len(members) == RESIDENTS + 1 and sum(m.completed == 2 for m in members) == finished
        residents = await residents_progress(session, ward_id=ward_id, lesson_ids=lessons, end=MONDAY_8)
        assert len(residents) == RESIDENTS + 1 and sum(len(r.marks) == 2 for r in residents) == finished
    async with any_app.sessions() as session, session.begin():
        assert await plan_digests(session, now=MONDAY_8, zone=ZONE, lessons=any_app.lessons,
                                  catalog=any_app.catalog) == 1
    async with any_app.sessions() as session:
        [digest] = (await session.exec(select(Outbox).where(Outbox.kind == "digest"))).all()
        assert (await session.get(Ward, ward_id)) is not None
    behind = RESIDENTS  # none did all the lessons; the leader, behind too, is not counted in his own digest
    assert f"{RESIDENTS + 1} thành viên" in digest.payload["text"]
    assert f"Cần nhắc: {behind} người" in digest.payload["text"]
