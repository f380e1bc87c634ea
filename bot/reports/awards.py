"""Thi đua evidence: the groups and leaders the ward may propose for an award, with their
achievements written out, drawn from a period's figures (the year's, for the annual report).

The rule (the same words in docs/architecture.md §Reports):

- **A group stands out** when it has members and either its completion rate has reached its
  target (``rate ≥ target``) or it made the largest progress of the period (the most
  percentage points of rate gained against the previous period's end; every group tied at
  that largest gain, which must be above zero). Its achievements: the rate against the
  target, the progress, the people who finished the programme in the period, the lessons
  completed with a leader's help, and the questions its leaders answered.
  Order: groups at their target first, then by rate, then by progress, then by code.
- **A leader stands out** when, in the period, they recorded at least one assisted session or
  answered at least one resident's question (nudges alone are a button press: they count in
  the ordering and the sentence, not in the choice). Leaders who erased their data are left
  out (nobody to award). Order: assisted sessions, then questions answered, then nudges (most
  first), then name (diacritics folded), then id.

Nothing here reads the database: the same ``PeriodFigures`` draw the report, the workbook,
the charts and this list, so the proposal and the report never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.text import fold
from bot.reports.wording import number, percent, translator
from storage.figures import GroupFigures, LeaderFigures, PeriodFigures


@dataclass(frozen=True)
class GroupAward:
    group: GroupFigures
    at_target: bool
    most_progress: bool
    answered: int  # questions its leaders answered in the period
    achievements: str  # one sentence


@dataclass(frozen=True)
class LeaderAward:
    leader: LeaderFigures
    achievements: str


@dataclass(frozen=True)
class Awards:
    groups: list[GroupAward]
    leaders: list[LeaderAward]


def _answered_by_group(figures: PeriodFigures) -> dict[str, int]:
    """Questions answered by each group's leaders (a leader of two groups counts in both)."""
    answered: dict[str, int] = {}
    for leader in figures.leaders:
        for name in leader.groups:
            answered[name] = answered.get(name, 0) + leader.answered
    return answered


def _group_sentence(group: GroupFigures, *, answered: int) -> str:
    t = translator()
    assert group.rate is not None
    parts = [t("awards.group_rate", rate=percent(group.rate), target=group.target_percent,
               finished=number(group.finished), members=number(group.members))]
    if group.change is not None and group.change > 0:
        parts.append(t("awards.group_progress", points=f"{group.change:.1f}".replace(".", ",")))
    if group.finished_in_period:
        parts.append(t("awards.group_finished", count=number(group.finished_in_period)))
    if group.completed_assisted:
        parts.append(t("awards.group_assisted", count=number(group.completed_assisted)))
    if answered:
        parts.append(t("awards.group_answered", count=number(answered)))
    return "; ".join(parts) + "."


def _leader_sentence(leader: LeaderFigures) -> str:
    t = translator()
    parts = []
    if leader.assisted:
        parts.append(t("awards.leader_assisted", count=number(leader.assisted)))
    if leader.answered:
        parts.append(t("awards.leader_answered", count=number(leader.answered)))
    if leader.nudges:
        parts.append(t("awards.leader_nudges", count=number(leader.nudges)))
    sentence = "; ".join(parts)
    return sentence[:1].upper() + sentence[1:] + "."


def select_awards(figures: PeriodFigures) -> Awards:
    """The groups and leaders that stand out in ``figures``' period, by the rule above."""
    answered = _answered_by_group(figures)
    with_members = [g for g in figures.groups if g.members]
    gains = [g.change for g in with_members if g.change is not None and g.change > 0]
    best = max(gains, default=None)
    groups = []
    for group in with_members:
        most = best is not None and group.change == best
        if group.meets_target or most:
            groups.append(GroupAward(group, group.meets_target, most, answered.get(group.name, 0),
                                     _group_sentence(group, answered=answered.get(group.name, 0))))
    groups.sort(key=lambda a: (not a.at_target, -(a.group.rate or 0.0), -(a.group.change or 0.0), a.group.code))
    leaders = [LeaderAward(leader, _leader_sentence(leader)) for leader in figures.leaders
               if leader.name is not None and (leader.assisted or leader.answered)]
    # Names in alphabetical order as a Vietnamese reader expects ("Ánh" before "Bảo"): folded first.
    leaders.sort(key=lambda a: (-a.leader.assisted, -a.leader.answered, -a.leader.nudges, fold(a.leader.name or ""),
                                a.leader.name or "", a.leader.person_id))
    return Awards(groups, leaders)
