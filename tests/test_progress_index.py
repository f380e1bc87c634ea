"""The statistics of a ward read the progress rows from the covering index
``ix_progress_person_cover`` (migration 0007) instead of fetching each table row, a whole ward in
the person table's order (no sort of every progress row to group them: ``storage.planner``), and
the leaders' assisted completions from ``ix_progress_assisted`` (0008): SQLite's own plan of the
statements says so."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from bot.app import App
from bot.curriculum import LessonLibrary
from storage.figures import read_period_figures
from storage.models import ResidentGroup
from storage.report_data import residents_progress
from storage.stats import behind_counts, group_stats, members_progress
from tests.staff import make_leader
from tests.support import Chat, join, pass_lesson, sqlite_plans

INDEX = "ix_progress_person_cover"


async def test_statistics_read_progress_from_the_covering_index(ward: App, clock) -> None:  # type: ignore[no-untyped-def]
    lessons = list(ward.lessons)[:2]
    ids = [lesson.id for lesson in lessons]
    for user, name in (("a", "An"), ("b", "Bình")):
        chat = Chat(ward.conversation, user=user, name=name)
        await join(chat, group_code="DEMO-TDP01")
        await pass_lesson(chat, lessons[0])
    found: dict[str, Any] = {}

    async def statistics() -> None:
        async with ward.sessions() as session:
            group = (await session.exec(select(ResidentGroup).where(ResidentGroup.code == "DEMO-TDP01"))).one()
            assert group.id is not None
            now = clock.now()
            [found["stats"]] = await group_stats(session, lesson_ids=ids, since=now - timedelta(days=7),
                                                 group_ids=[group.id], by_lesson=True)
            await group_stats(session, lesson_ids=ids, since=now - timedelta(days=7), until=now,
                              ward_id=group.ward_id)
            found["members"] = await members_progress(session, group_id=group.id, lesson_ids=ids)
            await behind_counts(session, group_ids=[group.id], lesson_ids=ids, inactive_since=now)
            found["residents"] = await residents_progress(session, ward_id=group.ward_id, lesson_ids=ids, end=now)

    plans = await sqlite_plans(ward, statistics, touching="lesson_progress")
    stats, members, residents = found["stats"], found["members"], found["residents"]
    # The numbers themselves (the index changes how, not what, is read).
    assert stats.members == 2 and stats.lessons[ids[0]].completed_self == 2
    assert [m.completed for m in members] == [1, 1]
    assert sorted(r.name for r in residents if r.marks) == ["An", "Bình"]

    assert len(plans) >= 7  # two per group_stats, one each for the others, two for behind_counts
    for statement, steps in plans:
        progress = [step for step in steps if "lesson_progress" in step]
        assert progress, steps
        assert all(f"COVERING INDEX {INDEX}" in step for step in progress), (statement, steps)
    async with ward.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM sqlite_master WHERE name = :n"),
                                         {"n": INDEX})).scalar() == 1

async def test_a_ward_is_read_in_the_person_tables_order_and_assisted_rows_from_their_index(
    ward: App, clock,  # type: ignore[no-untyped-def]
) -> None:
    first_two = list(ward.lessons)[:2]
    lessons, ids = LessonLibrary(first_two), [lesson.id for lesson in first_two]
    chat = Chat(ward.conversation, user="a", name="An")
    await join(chat, group_code="DEMO-TDP01")
    await pass_lesson(chat, first_two[0])
    await make_leader(ward, chat, "DEMO-TDP01")  # the report counts each leader's assisted completions
    now = clock.now()
    async with ward.sessions() as session:
        group = (await session.exec(select(ResidentGroup).where(ResidentGroup.code == "DEMO-TDP01"))).one()
    ward_id = group.ward_id

    async def overview_and_report() -> None:
        async with ward.sessions() as session:
            await group_stats(session, lesson_ids=ids, since=now - timedelta(days=7), ward_id=ward_id)
            await read_period_figures(session, ward_id=ward_id, lessons=lessons, start=now - timedelta(days=30),
                                      end=now, zone=ward.settings.zone)
            await residents_progress(session, ward_id=ward_id, lesson_ids=ids, end=now)

    plans = await sqlite_plans(ward, overview_and_report, touching="lesson_progress")
    leaders = [steps for statement, steps in plans if "assisted_by IN" in statement]
    assert leaders and all(any("ix_progress_assisted" in step for step in steps) for steps in leaders), leaders
    per_person = [(statement, steps) for statement, steps in plans if "GROUP BY person.id" in statement]
    assert len(per_person) >= 3  # the overview's, the report's people and the residents' rows
    for statement, steps in per_person:
        assert "SCAN person" in steps, (statement, steps)  # the table's order: each person's rows come together
        assert any(f"COVERING INDEX {INDEX}" in step for step in steps), (statement, steps)
