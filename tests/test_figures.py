"""The definitions behind every number (storage.figures): the curriculum as it stood at a
moment, a completion's date and kind surviving a re-pass, and the live statistics counting
the programme against the curriculum of their moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.app import App
from bot.curriculum import LessonLibrary
from storage.models import LessonProgress, ProgressStatus
from storage.stats import group_stats
from tests.conftest import _make_app
from tests.staff import group, person_of
from tests.support import Chat, ManualClock, join, pass_lesson

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def with_new_lesson(library: LessonLibrary, published: str) -> LessonLibrary:
    """The shipped lessons plus a 14th (a copy of the last) published on ``published``."""
    last = list(library)[-1]
    extra = last.model_copy(update={"id": "b14-bai-moi", "order": last.order + 10, "published": published})
    return LessonLibrary([*library, extra])


def bumped(library: LessonLibrary, lesson_id: str) -> LessonLibrary:
    """The same lessons, one of them at the next version."""
    return LessonLibrary([l.model_copy(update={"version": l.version + 1}) if l.id == lesson_id else l
                          for l in library])


def test_the_curriculum_at_a_moment_holds_the_lessons_published_by_its_local_date(library: LessonLibrary) -> None:
    grown = with_new_lesson(library, "2027-03-01")
    shipped = tuple(lesson.id for lesson in library)
    # 2027-02-28 17:00 UTC is already 1 March in Hà Nội: the local date decides.
    assert grown.curriculum_at(datetime(2027, 2, 28, 16, 59, tzinfo=UTC), HANOI) == shipped
    assert grown.curriculum_at(datetime(2027, 2, 28, 17, 0, tzinfo=UTC), HANOI) == (*shipped, "b14-bai-moi")
    assert library.curriculum_at(datetime(2000, 1, 1, tzinfo=UTC), HANOI) == shipped  # no date: from the start


async def test_a_re_pass_on_a_newer_version_keeps_the_first_completion_and_its_kind(
    app: App, clock: ManualClock, library: LessonLibrary, sqlite_url: str, tmp_path: Path,
) -> None:
    from tests.conftest import seed_demo_groups

    await seed_demo_groups(app)
    first, second = list(library)[:2]
    lan = Chat(app.conversation, user="lan", name="Lan")
    await join(lan)
    await pass_lesson(lan, first)
    person = await person_of(app, lan)
    completed_on = clock.now()
    async with app.sessions() as session, session.begin():
        # The second lesson was completed in person with a leader (person 99 stands for them).
        session.add(LessonProgress(person_id=person.id, lesson_id=second.id, lesson_version=second.version,
                                   status=ProgressStatus.COMPLETED, started_at=clock.now(), completed_at=clock.now(),
                                   updated_at=clock.now(), assisted_by=person.id))
    clock.advance(days=40)
    newer = await _make_app(sqlite_url, clock, bumped(bumped(library, first.id), second.id), tmp_path / "files2")
    try:
        again = Chat(newer.conversation, user="lan", name="Lan")
        await pass_lesson(again, newer.lessons.get(first.id))
        await pass_lesson(again, newer.lessons.get(second.id))
    finally:
        await newer.close()
    async with app.sessions() as session:
        rows = {r.lesson_id: r for r in (await session.exec(
            select(LessonProgress).where(LessonProgress.person_id == person.id))).all()}
    for lesson in (first, second):
        row = rows[lesson.id]
        assert row.lesson_version == lesson.version + 1  # the re-pass is recorded…
        assert row.completed_at == completed_on  # …but the completion keeps its first date
        assert row.status == ProgressStatus.COMPLETED
    assert rows[first.id].assisted_by is None
    assert rows[second.id].assisted_by == person.id  # an assisted first completion stays assisted


async def test_group_stats_count_the_programme_against_the_curriculum_of_their_moment(
    ward: App, clock: ManualClock, library: LessonLibrary,
) -> None:
    lan = Chat(ward.conversation, user="lan", name="Lan")
    await join(lan, group_code="DEMO-TDP01")
    for lesson in library:
        await pass_lesson(lan, lesson)
    finished_at = clock.now()
    grown = with_new_lesson(library, (finished_at + timedelta(days=10)).astimezone(HANOI).date().isoformat())
    tdp01 = await group(ward, "DEMO-TDP01")
    ids = [lesson.id for lesson in grown]

    async def stats_at(moment: datetime):  # type: ignore[no-untyped-def]
        since = moment - timedelta(days=7)
        async with ward.sessions() as session:
            [stats] = await group_stats(session, lesson_ids=ids, since=since, until=moment, group_ids=[tdp01.id], by_lesson=True,
                                        curriculum=grown.curriculum_at(moment, HANOI),
                                        curriculum_before=grown.curriculum_at(since, HANOI))
        return stats

    before = await stats_at(finished_at + timedelta(days=8))
    assert (before.members, before.finished, before.finished_before) == (1, 1, 1)  # 13 of 13, then and a week before
    after = await stats_at(finished_at + timedelta(days=12))
    assert (after.finished, after.finished_before) == (0, 1)  # the 14th lesson is now part of the programme
    assert after.lessons["b14-bai-moi"].started == 0


async def test_a_period_starts_at_its_first_moment_and_an_empty_ward_has_no_rate(
    ward: App, clock: ManualClock, library: LessonLibrary,
) -> None:
    """A completion at exactly ``start`` is in the period, not before it; the previous period
    ends a tick before ``start``; a group without members has no rate (None), not 0 %."""
    from storage.figures import TICK, read_period_figures
    from tests.staff import ward as ward_of

    lan = Chat(ward.conversation, user="lan", name="Lan")
    await join(lan, group_code="DEMO-TDP01")
    clock.advance(minutes=1)
    *first, last = list(library)
    for lesson in first:
        await pass_lesson(lan, lesson)
    clock.advance(minutes=1)
    await pass_lesson(lan, last)
    start = clock.now()  # her last lesson was completed at this very moment
    clock.advance(days=3)
    demo = await ward_of(ward)
    async with ward.sessions() as session:
        empty = await read_period_figures(session, ward_id=demo.id, lessons=library, start=None,
                                          end=start - timedelta(days=1), zone=HANOI)
        figures = await read_period_figures(session, ward_id=demo.id, lessons=library, start=start,
                                            end=clock.now(), zone=HANOI)
    assert empty.months == [] and empty.total.members == 0 and empty.total.rate is None
    assert all(g.rate is None and g.change is None for g in empty.groups)
    assert (figures.previous_start, figures.previous_end) == (start - timedelta(days=3), start - TICK)
    tdp01 = next(g for g in figures.groups if g.code == "DEMO-TDP01")
    assert (tdp01.members, tdp01.finished, tdp01.finished_in_period) == (1, 1, 1)
    assert (tdp01.members_before, tdp01.finished_before) == (1, 0)
    assert tdp01.completed_self == 1  # the last lesson, at ``start``; the others were before it
    assert [m.finished for m in figures.months] == [1] and figures.months[0].completed_self == 1
