"""THE reconciliation test (issue 11 §1): a seeded ward with 18 months of random activity —
joins, lessons started and completed, retakes, re-passes on a newer lesson version, assisted
completions (some by a leader who later erases), erasures, group changes (one from another
ward), a 14th lesson published mid-way, nudges, answered questions, broadcasts with their
outcomes — and, for several periods, every figure of ``storage.figures.read_period_figures``
equal to an independent recount written here in plain Python over the rows the test
generated (``recount``), never by calling the code under test. At the final moment the chat's
live numbers (group statistics, ranking, the leader's dashboard, the admin's overview, the
digest) are checked against the same recount.

Built to grow: ``world`` (the generated rows) and ``recount(world, start, end)`` are module
level, and the ``seeded`` fixture writes the world into a fresh database and returns it, so
another artefact (a workbook sheet, the report document, the chart's data) is one more test
that reads it and compares with ``recount``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.app import App
from bot.core.i18n import Catalog
from bot.curriculum import LessonLibrary, load_library
from bot.curriculum.schema import Competence
from bot.digest import plan_digests
from handlers.onboarding import CONSENT_VERSION
from storage import audit
from storage.figures import (
    AreaFigures, GroupFigures, LeaderFigures, LessonFigures, MonthFigures, PeriodFigures, read_period_figures,
)
from storage.groups import upsert_group, upsert_ward
from storage.models import (
    Broadcast, BroadcastStatus, Identity, LessonProgress, Outbox, Person, ProgressStatus, RoleKind,
)
from storage.people import create_person, erase_person, get_or_create_identity
from storage.progress import record_result, start_lesson
from storage.roles import grant
from storage.stats import group_stats, ranking
from tests.conftest import START
from tests.support import Chat, dashboard_served, web_sign_in

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
END = START  # the final moment: the app's clock
BEGIN = datetime(2025, 5, 20, 2, 0, tzinfo=UTC)  # 18 months before
TICK = timedelta(microseconds=1)
NEW_LESSON, PUBLISHED = "b14-mua-sam-truc-tuyen", "2026-03-01"
BUMPED_LESSON, BUMPED_ON = "b02-cai-vneid-an-toan", datetime(2026, 2, 1, tzinfo=UTC)  # version + 1 from then
WARD, OTHER = ("REC", "Phường Đối Soát"), ("OTH", "Xã Bên Cạnh")
GROUPS = {  # code → (name, target %, adults)
    "REC-01": ("Tổ dân phố 1", 80, 40),
    "REC-02": ("Tổ dân phố 2", 70, 25),
    "REC-03": ("Thôn Đông", 90, None),
    "REC-04": ("Tổ dân phố 4 (mới lập)", 60, 30),  # nobody ever joins
    "OTH-01": ("Thôn Tây", 80, 50),
}
STATUSES = ("sent", "blocked", "failed", "pending")


def local(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=HANOI).astimezone(UTC)


PERIODS = {  # name → (start, end); the "last moment" of a local day is the next day minus a tick
    "month-2026-03": (local(2026, 3), local(2026, 4) - TICK),  # the month the 14th lesson came
    "month-2026-09": (local(2026, 9), local(2026, 10) - TICK),
    "half-2025-2": (local(2025, 7), local(2026, 1) - TICK),
    "half-2026-1": (local(2026, 1), local(2026, 7) - TICK),
    "year-2026": (local(2026, 1), END),
    "all": (None, END),
}


@pytest.fixture(scope="module")
def library() -> LessonLibrary:
    """The shipped lessons and a 14th published mid-way (the app under test runs with it)."""
    shipped = load_library()
    last = list(shipped)[-1]
    extra = last.model_copy(update={"id": NEW_LESSON, "order": last.order + 10, "published": PUBLISHED})
    return LessonLibrary([*shipped, extra])


# -- the generated rows ------------------------------------------------------------------

@dataclass(eq=False)
class Resident:
    key: str
    name: str
    created: datetime
    groups: list[tuple[datetime, str]]  # (from when, group code), the first from ``created``
    leads: list[str] = field(default_factory=list)  # group codes (roles go when they erase)
    erased: datetime | None = None
    id: int | None = None  # set when written

    @property
    def group(self) -> str:
        return self.groups[-1][1]

    def group_at(self, moment: datetime) -> str:
        return [code for since, code in self.groups if since <= moment][-1]


@dataclass(eq=False)
class Row:
    who: Resident
    lesson: str
    started: datetime
    completed: datetime | None = None  # the first completion
    assisted_by: Resident | None = None
    retakes: list[tuple[datetime, bool, int]] = field(default_factory=list)  # (at, passed, version)


@dataclass
class Logged:
    actor: Resident
    action: str
    at: datetime
    target: str
    queued: int = 0


@dataclass
class Cast:
    at: datetime
    audience: dict[str, Any]
    outcomes: list[tuple[Resident, str, str]]  # (recipient, group code when queued, status)
    id: int | None = None


@dataclass
class World:
    lessons: LessonLibrary
    residents: list[Resident]
    admin: Resident
    rows: list[Row]
    logged: list[Logged]
    casts: list[Cast]
    group_ids: dict[str, int] = field(default_factory=dict)
    ward_id: int | None = None

    def leader(self, name: str) -> Resident:
        return next(r for r in self.residents if r.name == name)


def between(rng: random.Random, low: datetime, high: datetime) -> datetime:
    return low + timedelta(seconds=rng.randrange(max(1, int((high - low).total_seconds()))))


def make_world(lessons: LessonLibrary, seed: int = 20261123) -> World:
    """Eighteen months of a ward, deterministic for a seed."""
    rng = random.Random(seed)
    leaders = [
        Resident("l1", "An Tổ Trưởng", BEGIN + timedelta(days=1), [(BEGIN + timedelta(days=1), "REC-01")], ["REC-01"]),
        Resident("l2", "Bình Tổ Trưởng", BEGIN + timedelta(days=2), [(BEGIN + timedelta(days=2), "REC-02")], ["REC-02"]),
        Resident("l3", "Chi Trưởng Thôn", BEGIN + timedelta(days=3), [(BEGIN + timedelta(days=3), "REC-03")],
                 ["REC-03", "REC-01"]),
        Resident("l4", "Dũng Tổ Phó", BEGIN + timedelta(days=4), [(BEGIN + timedelta(days=4), "REC-02")], ["REC-02"],
                 erased=datetime(2026, 8, 15, 3, tzinfo=UTC)),  # assisted people, then erased their data
    ]
    residents = list(leaders)
    for n in range(50):
        created = between(rng, BEGIN, END - timedelta(days=3))
        code = rng.choices(["REC-01", "REC-02", "REC-03"], weights=[4, 3, 3])[0]
        residents.append(Resident(f"r{n:02d}", f"Cư dân {n:02d}", created, [(created, code)]))
    for n in range(6):
        created = between(rng, BEGIN, END - timedelta(days=3))
        residents.append(Resident(f"o{n}", f"Người xã bên {n}", created, [(created, "OTH-01")]))
    admin = Resident("admin", "Cán bộ Văn hóa", BEGIN, [(BEGIN, "")])
    new_from = local(2026, 3, 1)
    rows: list[Row] = []
    for person in residents:
        engagement, moment = rng.random(), person.created + timedelta(hours=rng.uniform(1, 48))
        stop = person.erased or END
        for lesson in lessons:
            if rng.random() > 0.25 + engagement:
                break
            started = moment + timedelta(days=rng.uniform(0, 25))
            if lesson.id == NEW_LESSON:
                started = max(started, new_from + timedelta(hours=rng.uniform(1, 500)))
            if started >= stop - timedelta(hours=2):
                break
            helpers = [l for l in leaders if person.group_at(started) in l.leads and l is not person
                       and (l.erased is None or l.erased > started)]
            if helpers and rng.random() < 0.2:  # done in person with a leader, who records it
                rows.append(Row(person, lesson.id, started, started, rng.choice(helpers)))
                moment = started
                continue
            row = Row(person, lesson.id, started)
            rows.append(row)
            done = started + timedelta(days=rng.uniform(0.01, 4))
            if rng.random() > 0.85 or done >= stop:
                break  # left in progress
            row.completed = moment = done
        for row in [r for r in rows if r.who is person and r.completed is not None]:
            if rng.random() < 0.25:  # a retake: failed, or passed again (on the newer version when there is one)
                at = row.completed + timedelta(days=rng.uniform(1, 60))
                version = lessons.get(row.lesson).version + (row.lesson == BUMPED_LESSON and at >= BUMPED_ON)  # type: ignore[union-attr]
                if at < stop:
                    row.retakes.append((at, rng.random() < 0.7, version))
    movers = rng.sample([r for r in residents[4:54]], 5)
    for person in movers:
        after = between(rng, person.created, END)
        person.groups.append((after, rng.choice([c for c in ("REC-01", "REC-02", "REC-03") if c != person.group])))
    newcomer = next(r for r in residents if r.group == "OTH-01")
    newcomer.groups.append((between(rng, newcomer.created, END), "REC-02"))  # moved into the ward
    for person in rng.sample([r for r in residents[4:54] if r not in movers], 5):
        last = max([person.created, *(t for r in rows if r.who is person
                                      for t in (r.started, r.completed, *(a for a, _, _ in r.retakes)) if t)])
        person.erased = between(rng, last, END)
    logged: list[Logged] = []
    request = 0
    for actor in [*leaders, admin]:
        until = actor.erased or END
        for _ in range(12):
            at = between(rng, actor.created, until)
            if actor is admin:
                logged.append(Logged(actor, "admin.nudge", at, "group:0", rng.randrange(0, 6)))
            elif rng.random() < 0.5:
                logged.append(Logged(actor, "leader.nudge", at, "group:0", rng.randrange(0, 6)))
            else:
                logged.append(Logged(actor, "leader.nudge_one", at, "person:0", rng.randrange(0, 2)))
        for _ in range(6):
            request += 1
            logged.append(Logged(actor, "help.reply", between(rng, actor.created, until), f"help:{request}"))
            logged.append(Logged(actor, "leader.view", between(rng, actor.created, until), "group:0"))  # not counted
    first_reply = next(item for item in logged if item.actor is leaders[0] and item.action == "help.reply")
    logged.append(Logged(leaders[0], "help.reply", first_reply.at + timedelta(minutes=5), first_reply.target))
    audiences = [{"ward": "REC"}, {"kind": "groups", "codes": ["REC-02"]}, {"ward": "OTH"}, {"kind": "all"}]
    casts = []
    for n in range(8):
        at, audience = between(rng, BEGIN, END - timedelta(days=1)), audiences[n % len(audiences)]
        outcomes = []
        for person in residents:
            if person.created > at or (person.erased is not None and person.erased <= at):
                continue
            code = person.group_at(at)
            if (audience.get("ward") and not code.startswith(audience["ward"] + "-")
                    or audience.get("kind") == "groups" and code not in audience["codes"]):
                continue
            outcomes.append((person, code, rng.choices(STATUSES[:3], weights=[7, 2, 1])[0]))
        casts.append(Cast(at, audience, outcomes))
    return World(lessons, residents, admin, rows, logged, casts)


async def write_world(app: App, world: World) -> None:
    """The rows, written with the storage functions the bot uses where practical."""
    async with app.sessions() as session, session.begin():
        wards = {}
        for code, name in (WARD, OTHER):
            wards[code], _ = await upsert_ward(session, code=code, name=name)
        for code, (name, target, adults) in GROUPS.items():
            group, _ = await upsert_group(session, ward_id=wards[code.split("-")[0]].id, code=code, name=name,  # type: ignore[arg-type]
                                          kind=None, target_percent=target, adults=adults)
            world.group_ids[code] = group.id  # type: ignore[assignment]
        world.ward_id = wards["REC"].id
        for person in sorted([*world.residents, world.admin], key=lambda p: p.created):
            identity = await get_or_create_identity(session, channel="test", external_id=person.key, now=person.created)
            row = await create_person(session, identity=identity, consent_version=CONSENT_VERSION, locale="vi",
                                      now=person.created)
            row.display_name, row.group_id = person.name, world.group_ids.get(person.groups[0][1])
            session.add(row)
            person.id = row.id
        await grant(session, person_id=world.admin.id, kind=RoleKind.ADMIN, granted_by="test", now=BEGIN,  # type: ignore[arg-type]
                    ward_id=world.ward_id)
        for person in world.residents:
            for code in person.leads:
                await grant(session, person_id=person.id, kind=RoleKind.LEADER, granted_by="test",  # type: ignore[arg-type]
                            now=person.created, group_id=world.group_ids[code])
        for r in world.rows:
            version = world.lessons.get(r.lesson).version  # type: ignore[union-attr]
            if r.assisted_by is not None:  # as handlers.assisted records it
                progress = LessonProgress(person_id=r.who.id, lesson_id=r.lesson, lesson_version=version,  # type: ignore[arg-type]
                                          status=ProgressStatus.COMPLETED, started_at=r.started,
                                          completed_at=r.completed, updated_at=r.completed,
                                          assisted_by=r.assisted_by.id)
            else:
                progress = await start_lesson(session, person_id=r.who.id, lesson_id=r.lesson,  # type: ignore[arg-type]
                                              lesson_version=version, now=r.started)
                if r.completed is not None:
                    record_result(progress, score=3, passed=True, lesson_version=version, now=r.completed)
            for at, passed, retake_version in r.retakes:
                record_result(progress, score=3 if passed else 1, passed=passed, lesson_version=retake_version, now=at)
            session.add(progress)
        for item in world.logged:
            nudge = item.action in ("leader.nudge", "leader.nudge_one", "admin.nudge")
            audit.record(session, actor=f"person:{item.actor.id}", action=item.action, target=item.target,
                         now=item.at, details={"queued": item.queued} if nudge else {})
        ids = {i.external_id: i.id for i in (await session.exec(select(Identity))).all()}
        for n, cast in enumerate(world.casts):
            broadcast = Broadcast(author=f"person:{world.admin.id}", text="Tin phong trào", audience=cast.audience,
                                  scheduled_at=cast.at, status=BroadcastStatus.QUEUED, recipients=len(cast.outcomes),
                                  created_at=cast.at, queued_at=cast.at)
            session.add(broadcast)
            await session.flush()
            cast.id = broadcast.id
            for person, code, status in cast.outcomes:
                session.add(Outbox(kind="broadcast", identity_id=ids[person.key], channel="test",
                                   payload={"text": "Tin phong trào"}, due_at=cast.at, status=status, attempts=1,
                                   sent_at=cast.at if status == "sent" else None,
                                   dedupe_key=f"bc:{broadcast.id}:{person.key}", broadcast_id=broadcast.id,
                                   group_id=world.group_ids[code], created_at=cast.at))
        await session.flush()
        for person in world.residents:
            if len(person.groups) > 1:
                row = await session.get(Person, person.id)
                row.group_id = world.group_ids[person.group]  # type: ignore[union-attr]
                session.add(row)
        await session.flush()
        for person in world.residents:
            if person.erased is not None:
                await erase_person(session, person_id=person.id, now=person.erased)  # type: ignore[arg-type]


@pytest.fixture
async def seeded(any_app: App, library: LessonLibrary) -> tuple[App, World]:
    world = make_world(library)
    await write_world(any_app, world)
    return any_app, world


# -- the independent recount ---------------------------------------------------------------

def curriculum_at(world: World, moment: datetime) -> tuple[str, ...]:
    day = moment.astimezone(HANOI).date()
    return tuple(lesson.id for lesson in world.lessons
                 if lesson.published is None or date.fromisoformat(lesson.published) <= day)


def within(moment: datetime | None, start: datetime | None, end: datetime) -> bool:
    return moment is not None and (start is None or moment >= start) and moment <= end


@dataclass
class Expected:
    previous_start: datetime | None
    previous_end: datetime | None
    curriculum: tuple[str, ...]
    groups: list[GroupFigures]
    total: GroupFigures
    months: list[MonthFigures]
    lessons: list[LessonFigures]
    areas: list[AreaFigures]
    leaders: list[LeaderFigures]
    broadcasts: list[tuple[int, dict[str, int]]]  # (broadcast id, delivery totals for the ward)


def recount(world: World, start: datetime | None, end: datetime) -> Expected:
    """Every figure of the period from the generated rows, by the written definitions."""
    ward_codes = [code for code in GROUPS if code.startswith("REC-")]
    people = [p for p in world.residents if p.group in ward_codes]
    rows_of: dict[Resident, dict[str, Row]] = {p: {} for p in world.residents}
    for r in world.rows:
        rows_of[r.who][r.lesson] = r
    programme = curriculum_at(world, end)
    previous_end = start - TICK if start is not None else None

    def done_by(p: Resident, lesson: str, moment: datetime) -> bool:
        r = rows_of[p].get(lesson)
        return r is not None and r.completed is not None and r.completed <= moment

    def finished(p: Resident, moment: datetime) -> bool:
        return p.created <= moment and all(done_by(p, lesson, moment) for lesson in curriculum_at(world, moment))

    def started_rows(p: Resident) -> list[Row]:
        return [r for lesson, r in rows_of[p].items() if lesson in programme and r.started <= end]

    def last_needed(p: Resident) -> datetime:
        return max(rows_of[p][lesson].completed for lesson in programme)  # type: ignore[type-var,return-value]

    def members(code: str, moment: datetime) -> list[Resident]:
        return [p for p in people if p.group == code and p.created <= moment]

    def group(code: str) -> GroupFigures:
        mine = members(code, end)
        participants = [p for p in mine if started_rows(p)]
        done = [r for p in mine for r in started_rows(p) if within(r.completed, start, end)]
        name, target, adults = GROUPS[code]
        return GroupFigures(
            group_id=world.group_ids[code], code=code, name=name, target_percent=target, adults=adults,
            members=len(mine), participants=len(participants),
            finished=sum(finished(p, end) for p in mine),
            new_participants=sum(within(min(r.started for r in started_rows(p)), start, end) for p in participants),
            completed_self=sum(r.assisted_by is None for r in done),
            completed_assisted=sum(r.assisted_by is not None for r in done),
            finished_in_period=sum(finished(p, end) and within(last_needed(p), start, end) for p in mine),
            members_before=len(members(code, previous_end)) if previous_end else 0,
            finished_before=sum(finished(p, previous_end) for p in members(code, previous_end)) if previous_end else 0,
        )

    groups = [group(code) for code in ward_codes]
    in_ward = sum(g.members for g in groups)
    target = (round(sum(g.target_percent * g.members for g in groups) / in_ward) if in_ward
              else round(sum(g.target_percent for g in groups) / len(groups)))
    total = GroupFigures(
        group_id=0, code=WARD[0], name=WARD[1], target_percent=target,
        adults=None if any(g.adults is None for g in groups) else sum(g.adults or 0 for g in groups),
        **{name: sum(getattr(g, name) for g in groups) for name in (
            "members", "participants", "finished", "new_participants", "completed_self", "completed_assisted",
            "finished_in_period", "members_before", "finished_before")},
    )

    months = []
    first = start or min((p.created for p in people if p.created <= end), default=None)
    if first is not None:
        month = date(first.astimezone(HANOI).year, first.astimezone(HANOI).month, 1)
        while local(month.year, month.month) <= end:
            following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
            low = local(month.year, month.month) if start is None else max(local(month.year, month.month), start)
            high = min(local(following.year, following.month) - TICK, end)
            at_end = [p for p in people if p.created <= end]
            done = [r for p in at_end for r in started_rows(p) if within(r.completed, low, high)]
            months.append(MonthFigures(
                month=month,
                new_participants=sum(bool(started_rows(p)) and within(min(r.started for r in started_rows(p)), low, high)
                                     for p in at_end),
                completed_self=sum(r.assisted_by is None for r in done),
                completed_assisted=sum(r.assisted_by is not None for r in done),
                finished=sum(finished(p, end) and within(last_needed(p), low, high) for p in at_end),
                members_end=sum(p.created <= high for p in people),
                finished_end=sum(finished(p, high) for p in people),
            ))
            month = following

    def lesson_figures(lesson: str) -> LessonFigures:
        rows = [rows_of[p][lesson] for p in people if p.created <= end and lesson in rows_of[p]
                and rows_of[p][lesson].started <= end]
        done = [r for r in rows if r.completed is not None and r.completed <= end]
        period = [r for r in done if within(r.completed, start, end)]
        return LessonFigures(lesson_id=lesson, started=len(rows),
                             completed_self=sum(r.assisted_by is None for r in done),
                             completed_assisted=sum(r.assisted_by is not None for r in done),
                             period_self=sum(r.assisted_by is None for r in period),
                             period_assisted=sum(r.assisted_by is not None for r in period))

    lessons = [lesson_figures(lesson) for lesson in programme]
    areas = []
    for area in Competence:
        mine = [f for f in lessons if world.lessons.get(f.lesson_id).competence == area]  # type: ignore[union-attr]
        if mine:
            areas.append(AreaFigures(area.value, tuple(f.lesson_id for f in mine), sum(f.started for f in mine),
                                     sum(f.completed_self for f in mine), sum(f.completed_assisted for f in mine),
                                     sum(f.period_self for f in mine), sum(f.period_assisted for f in mine)))

    leaders = []
    for person in world.residents:
        held = [code for code in person.leads if code in ward_codes]
        if not held or person.erased is not None:  # an erasure takes the roles away
            continue
        mine = [item for item in world.logged if item.actor is person and within(item.at, start, end)]
        leaders.append(LeaderFigures(
            person_id=person.id, name=person.name,  # type: ignore[arg-type]
            groups=tuple(GROUPS[code][0] for code in sorted(held)),
            assisted=sum(r.assisted_by is person and r.lesson in programme and within(r.completed, start, end)
                         for r in world.rows),
            nudges=sum(item.queued for item in mine if item.action in ("leader.nudge", "leader.nudge_one", "admin.nudge")),
            answered=len({item.target for item in mine if item.action == "help.reply"}),
        ))
    leaders.sort(key=lambda leader: (leader.name or "", leader.person_id))

    broadcasts = []
    for cast in sorted(world.casts, key=lambda c: c.at):  # oldest first
        ours = [status for _, code, status in cast.outcomes if code in ward_codes]
        addressed = cast.audience.get("ward") == WARD[0] or set(cast.audience.get("codes", [])) & set(ward_codes)
        if within(cast.at, start, end) and (ours or addressed):
            broadcasts.append((cast.id, {s: ours.count(s) for s in STATUSES}))  # type: ignore[arg-type]
    return Expected(
        previous_start=start - (end - start) if start is not None else None, previous_end=previous_end,
        curriculum=programme, groups=groups, total=total, months=months, lessons=lessons, areas=areas,
        leaders=leaders, broadcasts=broadcasts,
    )


def test_the_world_has_every_kind_of_activity(library: LessonLibrary) -> None:
    """The generator really produces what the reconciliation is meant to cover."""
    world = make_world(library)
    rows = world.rows
    assert any(r.lesson == NEW_LESSON and r.completed for r in rows)
    assert any(r.assisted_by is not None and r.assisted_by.erased for r in rows)  # by the leader who erased
    assert any(any(p for _, p, v in r.retakes if v > 1) for r in rows)  # a re-pass on the newer version
    assert any(any(not p for _, p, _ in r.retakes) for r in rows)  # a failed retake
    assert any(r.completed is None for r in rows)  # left in progress
    assert sum(p.erased is not None for p in world.residents) == 6
    assert sum(len(p.groups) > 1 for p in world.residents) == 6
    everyone_done = [p for p in world.residents if all(
        any(r.who is p and r.lesson == lesson.id and r.completed for r in rows) for lesson in library)]
    assert everyone_done, "somebody completes the whole programme"
    erased_recipients = [p for c in world.casts for p, _, _ in c.outcomes if p.erased is not None]
    assert erased_recipients, "a recipient of a broadcast later erased their data"


# -- the comparisons -------------------------------------------------------------------

async def figures_of(app: App, world: World, start: datetime | None, end: datetime) -> PeriodFigures:
    async with app.sessions() as session:
        return await read_period_figures(session, ward_id=world.ward_id, lessons=world.lessons,  # type: ignore[arg-type]
                                         start=start, end=end, zone=HANOI)


@pytest.mark.parametrize("period", sorted(PERIODS))
def test_periods_are_named_in_local_time(period: str) -> None:
    start, end = PERIODS[period]
    assert start is None or start.astimezone(HANOI).timetz().hour == 0
    assert end <= END


async def test_every_period_figure_equals_the_recount(seeded: tuple[App, World]) -> None:
    app, world = seeded
    for name, (start, end) in PERIODS.items():
        figures, expected = await figures_of(app, world, start, end), recount(world, start, end)
        where = f"period {name}"
        assert (figures.start, figures.end) == (start, end), where
        assert (figures.previous_start, figures.previous_end) == (expected.previous_start, expected.previous_end), where
        assert figures.ward.code == WARD[0] and figures.curriculum == expected.curriculum, where
        for got, want in zip(figures.groups, expected.groups, strict=True):
            assert got == want, where
        assert figures.total == expected.total, where
        assert figures.months == expected.months, where
        assert figures.lessons == expected.lessons, where
        assert figures.areas == expected.areas, where
        assert figures.leaders == expected.leaders, where
    # Sanity of the recount itself: the periods do differ, and the 14th lesson is counted only from March 2026.
    assert recount(world, *PERIODS["half-2025-2"]).curriculum == recount(world, *PERIODS["all"]).curriculum[:-1]
    assert len({recount(world, *p).total for p in PERIODS.values()}) == len(PERIODS)


async def test_broadcast_delivery_totals_equal_the_recount(seeded: tuple[App, World]) -> None:
    app, world = seeded
    for name, (start, end) in PERIODS.items():
        figures, expected = await figures_of(app, world, start, end), recount(world, start, end)
        # The ward's own broadcasts only (another ward's never appear, whoever moved since), with
        # every outcome of its residents, erased or not, counted in the group they were in.
        got = [(wb.broadcast.id, {s: wb.report.totals.get(s, 0) for s in STATUSES}) for wb in figures.broadcasts]
        assert got == expected.broadcasts, f"period {name}"


async def test_the_chat_numbers_at_the_final_moment_equal_the_recount(
    seeded: tuple[App, World], catalog: Catalog,
) -> None:
    app, world = seeded
    expected = recount(world, None, END)
    since = END - timedelta(days=7)
    week = recount(world, since + TICK, END)  # "before" = as of ``since``
    by_code = {g.code: g for g in expected.groups}
    ids = [lesson.id for lesson in world.lessons]
    async with app.sessions() as session:
        stats = await group_stats(session, lesson_ids=ids, since=since, ward_id=world.ward_id,
                                  curriculum=world.lessons.curriculum_at(END, HANOI),
                                  curriculum_before=world.lessons.curriculum_at(since, HANOI), by_lesson=True)
        # The overview's one pass (no per-lesson counts) gives the same figures.
        one_pass = await group_stats(session, lesson_ids=ids, since=since, ward_id=world.ward_id,
                                     curriculum=world.lessons.curriculum_at(END, HANOI),
                                     curriculum_before=world.lessons.curriculum_at(since, HANOI))
    assert [replace(s, lessons={}) for s in stats] == one_pass
    for s in stats:
        assert s.completed_self == sum(c.completed_self for c in s.lessons.values()), s.code
        assert s.completed_assisted == sum(c.completed_assisted for c in s.lessons.values()), s.code
        want, before = by_code[s.code], next(g for g in week.groups if g.code == s.code)
        assert (s.members, s.started, s.finished, s.adults) == (want.members, want.participants, want.finished,
                                                               want.adults), s.code
        assert (s.members_before, s.finished_before) == (before.members_before, before.finished_before), s.code
        assert s.coverage == want.coverage
    totals = {f.lesson_id: f for f in expected.lessons}
    for lesson_id, f in totals.items():
        assert sum(s.lessons[lesson_id].started for s in stats) == f.started
        assert sum(s.lessons[lesson_id].completed_self for s in stats) == f.completed_self
        assert sum(s.lessons[lesson_id].completed_assisted for s in stats) == f.completed_assisted
    ranked = [s.code for s in ranking(stats)]
    rates = [by_code[code].rate for code in ranked]
    assert ranked[-1] == "REC-04" and rates[-1] is None  # the empty group ranks last
    assert rates[:-1] == sorted(rates[:-1], reverse=True)  # type: ignore[type-var]

    t = catalog.translator("vi")
    lessons_now = len(expected.curriculum)
    # The leader's dashboard (An leads REC-01 alone).
    leader = world.leader("An Tổ Trưởng")
    chat = Chat(app.conversation, user=leader.key, name=leader.name)
    await chat.send("/nhom")
    g = by_code["REC-01"]
    page = chat.history[-1].text  # type: ignore[union-attr]
    assert t("leader.members_line", members=g.members, started=g.participants, finished=g.finished,
             lessons=lessons_now) in page
    assert t("figures.coverage_line", finished=g.finished, adults=g.adults, rate=f"{g.coverage:.0f}",
             target=g.target_percent, mark=t("leader.target_met") if g.meets_target_adults
             else t("leader.target_not_met")) in page
    # The admin's overview.
    admin = Chat(app.conversation, user=world.admin.key, name=world.admin.name)
    await admin.action(f"adm:ov:{world.ward_id}")
    overview = admin.history[-1].text  # type: ignore[union-attr]
    total = expected.total
    assert t("admin.overview_people", groups=len(GROUPS) - 1, members=total.members,
             started=total.participants) in overview
    assert t("admin.overview_completions", own=sum(f.completed_self for f in expected.lessons),
             assisted=sum(f.completed_assisted for f in expected.lessons)) in overview
    assert t("admin.overview_leaders", leaders=len(expected.leaders), led=3, groups=len(GROUPS) - 1) in overview
    # The digest each leader gets: the same numbers for every group they lead.
    async with app.sessions() as session, session.begin():
        await plan_digests(session, now=END, zone=HANOI, lessons=world.lessons, catalog=catalog)
    async with app.sessions() as session:
        digests = (await session.exec(select(Outbox).where(Outbox.kind == "digest"))).all()
    assert len(digests) == len(expected.leaders)
    for item in expected.leaders:
        text = next(d.payload["text"] for d in digests if d.dedupe_key.startswith(f"digest:{item.person_id}:"))
        for code, (name, _, _) in GROUPS.items():
            if name in item.groups:
                g = by_code[code]
                assert t("leader.members_line", members=g.members, started=g.participants, finished=g.finished,
                         lessons=lessons_now) in text, (item.name, code)


async def test_the_dashboard_numbers_at_the_final_moment_equal_the_recount(seeded: tuple[App, World]) -> None:
    """The web dashboard's overview and a group's page (docs/dashboard.md), signed in through a
    ``/web`` link as the admin and served by the real web endpoint, show the recount's numbers."""
    import re

    import aiohttp

    from storage.models import ResidentGroup

    app, world = seeded
    expected = recount(world, None, END)

    def figures(page: str) -> dict[str, int]:
        return {name: int(value) for name, value in re.findall(r'data-figure="([a-z-]+)">(\d+)<', page)}

    async with dashboard_served(app) as base, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = Chat(app.conversation, user=world.admin.key, name=world.admin.name)
        response = await web_sign_in(http, admin)
        assert response.status == 200 and str(response.url) == base + "/web/"
        overview = figures(await response.text())
        total = expected.total
        assert overview["members"] == total.members and overview["started"] == total.participants
        assert overview["finished"] == total.finished and overview["target"] == total.target_percent
        assert overview["self"] == sum(f.completed_self for f in expected.lessons)
        assert overview["assisted"] == sum(f.completed_assisted for f in expected.lessons)
        assert overview["targets-met"] == sum(1 for g in expected.groups if g.meets_target)
        async with app.sessions() as session:
            groups = {g.code: g.id for g in (await session.exec(select(ResidentGroup))).all()}
        for want in expected.groups:
            async with http.get(f"{base}/web/to/{groups[want.code]}") as response:
                assert response.status == 200, want.code
                shown = figures(await response.text())
            assert (shown["members"], shown["started"], shown["finished"]) == \
                (want.members, want.participants, want.finished), want.code
