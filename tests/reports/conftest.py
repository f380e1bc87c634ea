"""A seeded ward for the report tests, built through the real conversation.

The clock starts on Monday 4 May 2026 (10:00 in Hà Nội); later activity happens on 3 August
2026, in the second half-year, where the clock stays (the CLI runs on the same clock). Three
lessons make the programme.

| group | who | what |
|---|---|---|
| DEMO-TDP01 | Hải (the leader) | nothing |
|            | An | L1, L2, L3 on his own (May) |
|            | Bình | L1 on her own, L2 assisted by Hải (5 May), L3 opened (May) |
| DEMO-TDP02 | Dũng | L1 (May), then deleted his data: an anonymous tombstone |
|            | Chi | L1, L2, L3 on her own (August) |
| DEMO-TDP03 | Em | added by Hải by name (no phone); L1–L3 assisted by Hải (August) |
| KHAC-01 (another ward) | Khoa | L1 (May) |

Broadcasts: #1 to everyone (May; sent / blocked / failed / sending one each), #2 to KHAC-01
only (May), #3 to those who have not completed L1 (August, all pending).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.app import App
from bot.curriculum import LessonLibrary
from bot.group_import import import_groups, parse_groups_csv
from bot.broadcasting import message_for
from storage.broadcasts import create_broadcast, queue_broadcast
from storage.models import LessonProgress, Outbox, Person, ResidentGroup
from tests.support import Chat, ManualClock, join, pass_lesson

MAY = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)  # Monday 10:00 local
AUGUST = datetime(2026, 8, 3, 3, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MAY)


@dataclass
class Seed:
    app: App
    lessons: LessonLibrary  # the three-lesson programme
    people: dict[str, int]  # name → person id (Dũng's tombstone included)
    broadcasts: dict[str, int]


async def _assist(app: App, *, person: int, lesson: str, leader: int, at: datetime) -> None:
    async with app.sessions() as session, session.begin():
        session.add(LessonProgress(person_id=person, lesson_id=lesson, lesson_version=1, status="completed",
                                   attempts=0, started_at=at, completed_at=at, updated_at=at, assisted_by=leader))


async def _person(app: App, name: str) -> int:
    async with app.sessions() as session:
        return (await session.exec(select(Person.id).where(Person.display_name == name))).one()  # type: ignore[return-value]


async def _broadcast(app: App, audience: dict, at: datetime, statuses: list[str] | None = None) -> int:  # type: ignore[type-arg]
    async with app.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="cli", text="Tin của phường", audience=audience,
                                           scheduled_at=at, now=at)
        await queue_broadcast(session, broadcast_id=broadcast.id, now=at,  # type: ignore[arg-type]
                              message=message_for(app.catalog))
        rows = (await session.exec(select(Outbox).where(Outbox.broadcast_id == broadcast.id)
                                   .order_by(Outbox.id))).all()  # type: ignore[arg-type]
        for row, status in zip(rows, statuses or [], strict=False):
            row.status = status  # type: ignore[assignment]
            session.add(row)
        return broadcast.id  # type: ignore[return-value]


@pytest.fixture
async def seeded(ward: App, clock: ManualClock) -> Seed:
    app = ward
    lessons = LessonLibrary(list(app.lessons)[:3])
    l1, l2, l3 = lessons
    rows, errors = parse_groups_csv("ward_code,ward_name,group_code,group_name\nKHAC,Xã Khác,KHAC-01,Thôn 1\n")
    assert not errors
    async with app.sessions() as session, session.begin():
        await import_groups(session, rows=rows, actor="test", now=clock.now())
    chats = {name: Chat(app.conversation, user=name, name=name)
             for name in ("Hải", "An", "Bình", "Dũng", "Chi", "Khoa")}
    for name, group in (("Hải", "DEMO-TDP01"), ("An", "DEMO-TDP01"), ("Bình", "DEMO-TDP01"),
                        ("Dũng", "DEMO-TDP02"), ("Khoa", "KHAC-01")):
        await join(chats[name], group_code=group)
    for lesson in lessons:
        await pass_lesson(chats["An"], lesson)
    await pass_lesson(chats["Bình"], l1)
    await chats["Bình"].action(f"lesson:{l3.id}")  # opened, not finished
    await pass_lesson(chats["Dũng"], l1)
    await pass_lesson(chats["Khoa"], l1)
    people = {name: await _person(app, name) for name in ("Hải", "An", "Bình", "Dũng", "Khoa")}
    await chats["Dũng"].send("/xoadulieu")
    await chats["Dũng"].press("Xóa dữ liệu")
    broadcasts = {
        "all": await _broadcast(app, {"kind": "all"}, clock.now(), ["sent", "blocked", "failed", "sending"]),
        "other ward": await _broadcast(app, {"kind": "groups", "codes": ["KHAC-01"]}, clock.now()),
    }
    clock.advance(days=1)
    await _assist(app, person=people["Bình"], lesson=l2.id, leader=people["Hải"], at=clock.now())

    clock.advance(seconds=(AUGUST - clock.now()).total_seconds())
    await join(chats["Chi"], group_code="DEMO-TDP02")
    for lesson in lessons:
        await pass_lesson(chats["Chi"], lesson)
    people["Chi"] = await _person(app, "Chi")
    async with app.sessions() as session, session.begin():
        group = (await session.exec(select(ResidentGroup).where(ResidentGroup.code == "DEMO-TDP03"))).one()
        em = Person(display_name="Em", group_id=group.id, created_at=clock.now(), added_by=people["Hải"])
        session.add(em)
        await session.flush()
        people["Em"] = em.id  # type: ignore[assignment]
    for n, lesson in enumerate(lessons):
        await _assist(app, person=people["Em"], lesson=lesson.id, leader=people["Hải"],
                      at=clock.now() + timedelta(minutes=n))
    broadcasts["behind"] = await _broadcast(app, {"kind": "not_completed", "lesson": l1.id}, clock.now())
    return Seed(app, lessons, people, broadcasts)
