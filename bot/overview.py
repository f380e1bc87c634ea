"""The live numbers of a ward and of a group, as the chat and the web dashboard show them.

One reader for both: the admin's overview in the chat (``handlers.admin``), the leader's
dashboard (``handlers.leader``) and the web pages (``bot.dashboard``) call these functions, so a
number is the same on every screen. The definitions are ``storage.figures``'s; the counts come
from ``storage.stats`` and ``storage.members``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.curriculum import LessonLibrary
from storage.members import GroupCount, blocked_per_group, groups_without_leader, open_questions_per_group
from storage.models import ResidentGroup, Ward
from storage.stats import GroupStats, group_stats, leader_counts, ranking

WEEK = timedelta(days=7)  # "this week's change" compares with a week ago


async def live_stats(
    session: AsyncSession, *, lessons: LessonLibrary, zone: ZoneInfo, now: datetime,
    ward_id: int | None = None, group_ids: Sequence[int] | None = None, by_lesson: bool = False,
) -> list[GroupStats]:
    """``storage.stats.group_stats`` now, against the curriculum now and a week ago."""
    since = now - WEEK
    return await group_stats(session, lesson_ids=[lesson.id for lesson in lessons], since=since,
                             ward_id=ward_id, group_ids=group_ids, curriculum=lessons.curriculum_at(now, zone),
                             curriculum_before=lessons.curriculum_at(since, zone), by_lesson=by_lesson)


@dataclass(frozen=True)
class WardOverview:
    """The admin's overview of one ward."""

    ward: Ward
    groups: list[GroupStats]  # in code order
    lessons: int  # lessons of the curriculum now: "học xong" means all of them
    leaders: int  # people leading a group of the ward (not erased)
    led: int  # groups with a leader
    leaderless: Sequence[ResidentGroup]
    questions: list[GroupCount]  # unanswered help requests per group (groups with none left out)
    blocked: list[GroupCount]  # people who blocked the bot, per group

    @property
    def members(self) -> int:
        return sum(s.members for s in self.groups)

    @property
    def started(self) -> int:
        return sum(s.started for s in self.groups)

    @property
    def finished(self) -> int:
        return sum(s.finished for s in self.groups)

    @property
    def finished_this_week(self) -> int:
        return self.finished - sum(s.finished_before for s in self.groups)

    @property
    def rate(self) -> float:
        """Members who completed the programme, in percent (0 for a ward without members)."""
        return 100.0 * self.finished / self.members if self.members else 0.0

    @property
    def adults(self) -> int | None:
        """The ward's adult population, once every group's is set (else a coverage would mislead)."""
        if not self.groups or any(s.adults is None for s in self.groups):
            return None
        return sum(s.adults or 0 for s in self.groups) or None

    @property
    def coverage(self) -> float | None:
        return 100.0 * self.finished / self.adults if self.adults else None

    @property
    def target_percent(self) -> int:
        """The groups' targets weighted by their members (``storage.figures``'s ward target)."""
        if self.members:
            return round(sum(s.target_percent * s.members for s in self.groups) / self.members)
        return round(sum(s.target_percent for s in self.groups) / len(self.groups)) if self.groups else 0

    @property
    def completed_self(self) -> int:
        return sum(s.completed_self for s in self.groups)

    @property
    def completed_assisted(self) -> int:
        return sum(s.completed_assisted for s in self.groups)

    @property
    def targets_met(self) -> int:
        return sum(1 for s in self.groups if s.meets_target)

    @property
    def open_questions(self) -> int:
        return sum(g.count for g in self.questions)

    @property
    def ranked(self) -> list[GroupStats]:
        return ranking(self.groups)

    @property
    def needing_attention(self) -> list[Attention]:
        """Groups with an unanswered question, under their target (with members) or without a
        leader: questions first, then the furthest under target, then the code."""
        questions = {q.group_id: q.count for q in self.questions}
        leaderless = {g.id for g in self.leaderless}
        found = [
            Attention(stats=s, questions=questions.get(s.group_id, 0),
                      below_target=bool(s.members) and not s.meets_target, leaderless=s.group_id in leaderless)
            for s in self.groups
        ]
        return sorted((a for a in found if a.questions or a.below_target or a.leaderless),
                      key=lambda a: (-a.questions, not a.below_target, a.stats.rate - a.stats.target_percent,
                                     a.stats.code))


@dataclass(frozen=True)
class Attention:
    """Why a group needs the ward's attention."""

    stats: GroupStats
    questions: int  # unanswered help requests
    below_target: bool  # has members and is under its target
    leaderless: bool  # no leader uses the bot


async def read_ward_overview(
    session: AsyncSession, *, ward: Ward, lessons: LessonLibrary, zone: ZoneInfo, now: datetime,
) -> WardOverview:
    assert ward.id is not None
    stats = await live_stats(session, lessons=lessons, zone=zone, now=now, ward_id=ward.id)
    leaders, led = await leader_counts(session, ward_id=ward.id)  # erased leaders are not counted
    return WardOverview(
        ward=ward, groups=stats, lessons=len(lessons.curriculum_at(now, zone)), leaders=leaders, led=led,
        leaderless=await groups_without_leader(session, ward_id=ward.id),
        questions=await open_questions_per_group(session, ward_id=ward.id),
        blocked=await blocked_per_group(session, ward_id=ward.id),
    )
