"""Group statistics: members, self vs assisted completions, programme completion, ranking,
this week's change."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.app import App
from storage.models import LessonProgress, ResidentGroup
from storage.stats import group_stats, members_progress, ranking
from tests.support import Chat, join, pass_lesson


async def test_counts_rates_and_ranking(ward: App, clock) -> None:  # type: ignore[no-untyped-def]
    lessons = list(ward.lessons)[:2]
    ids = [lesson.id for lesson in lessons]
    a = Chat(ward.conversation, user="a", name="An")
    b = Chat(ward.conversation, user="b", name="Bình")
    c = Chat(ward.conversation, user="c", name="Chi")
    await join(a, group_code="DEMO-TDP01")
    await join(b, group_code="DEMO-TDP01")
    await join(c, group_code="DEMO-TDP02")
    for lesson in lessons:
        await pass_lesson(a, lesson)
    await pass_lesson(b, lessons[0])
    clock.advance(days=8)
    await pass_lesson(c, lessons[0])
    await pass_lesson(c, lessons[1])
    async with ward.sessions() as session, session.begin():
        # Bình's second lesson was done in person with a leader.
        row = LessonProgress(person_id=2, lesson_id=ids[1], lesson_version=1, status="completed", score=None,
                             attempts=0, started_at=clock.now(), completed_at=clock.now(), updated_at=clock.now(),
                             assisted_by=1)
        session.add(row)
    async with ward.sessions() as session:
        stats = await group_stats(session, lesson_ids=ids, since=clock.now() - timedelta(days=7), by_lesson=True)
        groups = {g.code: g for g in stats}
        one, two = groups["DEMO-TDP01"], groups["DEMO-TDP02"]
        assert (one.members, one.started, one.finished) == (2, 2, 2)
        assert one.lessons[ids[1]].completed_self == 1 and one.lessons[ids[1]].completed_assisted == 1
        assert (one.rate, one.assisted, one.completions) == (100.0, 1, 4)
        assert (two.members, two.finished, two.rate) == (1, 1, 100.0)
        assert one.rate_before == 50.0 and one.change == 50.0  # An had finished a week ago, Bình had not
        assert two.change == 100.0
        assert groups["DEMO-TDP03"].members == 0 and groups["DEMO-TDP03"].rate == 0.0
        assert [g.code for g in ranking(stats)][:2] == ["DEMO-TDP01", "DEMO-TDP02"]  # more completions
        group_one = (await session.exec(select(ResidentGroup).where(ResidentGroup.code == "DEMO-TDP01"))).one()
        members = await members_progress(session, group_id=group_one.id, lesson_ids=ids)
    assert [(m.display_name, m.completed, m.assisted) for m in members] == [("An", 2, 0), ("Bình", 2, 1)]


def test_groups_without_members_never_rank_above_groups_with_members() -> None:
    from storage.stats import GroupStats

    empty_low_target = GroupStats(1, "A-EMPTY", "Trống", 1, target_percent=10)
    nobody_finished = GroupStats(2, "B-ZERO", "Chưa ai xong", 1, target_percent=90, members=5)
    some_finished = GroupStats(3, "C-SOME", "Có người xong", 1, target_percent=80, members=4, finished=1)
    assert [s.code for s in ranking([empty_low_target, nobody_finished, some_finished])] == [
        "C-SOME", "B-ZERO", "A-EMPTY"]


async def test_leader_counts_leave_out_leaders_who_erased_their_data(ward: App, clock) -> None:  # type: ignore[no-untyped-def]
    from storage.models import Person, Role, RoleKind, Ward
    from storage.stats import leader_counts

    async with ward.sessions() as session, session.begin():
        groups = (await session.exec(select(ResidentGroup).order_by(ResidentGroup.code))).all()
        for n, group in enumerate(groups[:2]):
            person = Person(display_name=f"Tổ trưởng {n}", group_id=group.id, created_at=clock.now(),
                            deleted_at=clock.now() if n else None)  # the second erased their data
            session.add(person)
            await session.flush()
            session.add(Role(person_id=person.id, kind=RoleKind.LEADER, group_id=group.id, granted_by="test",
                             granted_at=clock.now()))
        ward_id = (await session.exec(select(Ward.id))).first()
    async with ward.sessions() as session:
        assert await leader_counts(session, ward_id=ward_id) == (1, 1)
