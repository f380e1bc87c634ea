"""``PeriodFigures`` built by hand for the renderers' tests (no database): a ward of five groups
where it is known who stands out.

| group | members | finished (before) | target | adults | note |
|---|---|---|---|---|---|
| TDP01 Tổ dân phố Bắc Sơn | 10 | 8 (6) | 70 | 40 | at its target |
| TDP02 Tổ dân phố Hòa An | 10 | 6 (1) | 70 | — | below target, the largest gain (+50 points) |
| TDP03 Tổ dân phố Đông | 0 | 0 | 70 | 25 | no members |
| TDP04 Thôn Phước Lộc | 4 | 1 (1) | 50 | 30 | neither |
| TDP05 Khu phố Thượng | 5 | 4 (4) | 80 | — | at its target (80 %), no progress |

Leaders: Hải (TDP01) 3 assisted / 5 nudges / 2 answered; Lan (TDP02) 0 / 1 / 4; Minh (TDP04)
nudges only (9); an erased leader (TDP05) with 5 assisted. The rule selects TDP01 then TDP05
(both at target with 80 %; TDP01 gained more), then TDP02 (the largest gain), and leaders Hải
(assisted sessions first) then Lan.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from storage.figures import (
    AreaFigures, GroupFigures, LeaderFigures, LessonFigures, MonthFigures, PeriodFigures,
)
from storage.models import Broadcast, BroadcastStatus, Ward
from storage.outbox import DeliveryReport
from storage.report_data import WardBroadcast

START = datetime(2025, 12, 31, 17, tzinfo=UTC)  # 1/1/2026 00:00 in Hà Nội
END = datetime(2026, 6, 30, 16, 59, 59, tzinfo=UTC)  # 30/6/2026 23:59:59 in Hà Nội
LESSONS = ("b01-binh-dan-hoc-vu-so", "b02-cai-vneid-an-toan", "b03-vi-giay-to-vneid")


def _group(n: int, name: str, *, members: int, finished: int, before: int, target: int,
           adults: int | None, self_: int, assisted: int, new: int) -> GroupFigures:
    return GroupFigures(group_id=n, code=f"TDP{n:02}", name=name, target_percent=target, adults=adults,
                        members=members, participants=min(members, finished + 1), finished=finished,
                        new_participants=new, completed_self=self_, completed_assisted=assisted,
                        finished_in_period=finished - before, members_before=members, finished_before=before)


def sample_figures(*, scale: int = 1, start: datetime | None = START, end: datetime = END) -> PeriodFigures:
    """The table above; ``scale`` multiplies the period's activity (to make two periods differ)."""
    groups = [
        _group(1, "Tổ dân phố Bắc Sơn", members=10, finished=8, before=6, target=70, adults=40, self_=9 * scale,
               assisted=3, new=2),
        _group(2, "Tổ dân phố Hòa An", members=10, finished=6, before=1, target=70, adults=None, self_=14 * scale,
               assisted=1, new=5),
        _group(3, "Tổ dân phố Đông", members=0, finished=0, before=0, target=70, adults=25, self_=0, assisted=0,
               new=0),
        _group(4, "Thôn Phước Lộc", members=4, finished=1, before=1, target=50, adults=30, self_=1, assisted=0,
               new=1),
        _group(5, "Khu phố Thượng", members=5, finished=4, before=4, target=80, adults=None, self_=0, assisted=0,
               new=0),
    ]
    total = GroupFigures(
        group_id=0, code="", name="Phường Mẫu", target_percent=0, adults=None,
        members=sum(g.members for g in groups), participants=sum(g.participants for g in groups),
        finished=sum(g.finished for g in groups), new_participants=sum(g.new_participants for g in groups),
        completed_self=sum(g.completed_self for g in groups),
        completed_assisted=sum(g.completed_assisted for g in groups),
        finished_in_period=sum(g.finished_in_period for g in groups),
        members_before=sum(g.members_before for g in groups), finished_before=sum(g.finished_before for g in groups))
    months = [MonthFigures(month=date(2026, m, 1), new_participants=m % 3, completed_self=m * scale,
                           completed_assisted=m % 2, finished=m // 2, members_end=20 + m, finished_end=10 + m)
              for m in range(1, 7)]
    lessons = [LessonFigures(lesson_id=lesson, started=20 - n, completed_self=15 - n, completed_assisted=n,
                             period_self=(7 - n) * scale, period_assisted=n) for n, lesson in enumerate(LESSONS)]
    areas = [AreaFigures(competence="khai-thac-du-lieu", lesson_ids=(LESSONS[0], LESSONS[2]), started=38,
                         completed_self=28, completed_assisted=2, period_self=12 * scale, period_assisted=2),
             AreaFigures(competence="giao-tiep-hop-tac", lesson_ids=(LESSONS[1],), started=19, completed_self=14,
                         completed_assisted=1, period_self=6 * scale, period_assisted=1)]
    leaders = [LeaderFigures(person_id=7, name="Hải", groups=("Tổ dân phố Bắc Sơn",), assisted=3, nudges=5,
                             answered=2),
               LeaderFigures(person_id=8, name="Lan", groups=("Tổ dân phố Hòa An",), assisted=0, nudges=1, answered=4),
               LeaderFigures(person_id=9, name="Minh", groups=("Thôn Phước Lộc",), assisted=0, nudges=9, answered=0),
               LeaderFigures(person_id=10, name=None, groups=("Khu phố Thượng",), assisted=5, nudges=0, answered=0)]
    broadcast = Broadcast(id=4, author="cli", text="Tin của phường", audience={"kind": "all"},
                          scheduled_at=datetime(2026, 3, 2, 1, tzinfo=UTC), status=BroadcastStatus.QUEUED,
                          recipients=27)
    shown = WardBroadcast(broadcast, 27, DeliveryReport({"sent": 24, "blocked": 2, "failed": 1, "pending": 0}, {}))
    return PeriodFigures(
        ward=Ward(id=1, code="DEMO", name="Phường Mẫu"), start=start, end=end,
        previous_start=datetime(2025, 6, 30, 17, tzinfo=UTC) if start else None,
        previous_end=datetime(2025, 12, 31, 16, 59, 59, tzinfo=UTC) if start else None,
        curriculum=LESSONS, groups=groups, total=total, months=months, lessons=lessons, areas=areas,
        leaders=leaders, broadcasts=[shown])


def without_members(figures: PeriodFigures) -> PeriodFigures:
    """The same ward before anyone joined."""
    empty = [replace(g, members=0, participants=0, finished=0, members_before=0, finished_before=0,
                     finished_in_period=0) for g in figures.groups]
    return replace(figures, groups=empty, total=replace(figures.total, members=0, participants=0, finished=0,
                                                        members_before=0, finished_before=0))
