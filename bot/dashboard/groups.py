"""The dashboard's group pages (issue 13, page 2): the thi đua table and a group's page with
its actions.

- ``GET /web/cac-to``: the groups the viewer may see — an admin of one ward: its groups; of
  several: a choice of wards → ``GET /web/phuong/<ward>/cac-to``; a leader: the groups they
  lead. Ranked by ``storage.stats.ranking`` (the chat's thi đua order), sortable by any column
  on the server: ``?sap_xep=<column>&chieu=<asc|desc>``, the header says ``aria-sort``.
- ``GET /web/to/<group>``: members with their progress in each lesson, who is behind
  (``bot.group_actions.behind``, the chat's list), a nudge for one or all, and assisted
  completions to record or undo.
- ``POST /web/to/<group>/nhac`` (``nguoi``: one member, else everyone behind),
  ``POST /web/to/<group>/hoc-truc-tiep`` and ``POST /web/to/<group>/hoan-tac`` (``nguoi``,
  ``bai``): the chat's functions (``bot.group_actions``), each in one write transaction that
  first asks the database whether this person may (a leader of the group, an admin of its
  ward); then 303 back to the group's page with the outcome (``?kq=``: a word and counts, no
  name). A second submit changes nothing: the nudge's dedupe key and its three days, a
  completion already recorded, an undo with nothing left to undo.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import group_actions
from bot.curriculum import Lesson
from bot.dashboard import number
from bot.dashboard.access import SESSION_COOKIE, NoRole, NotSignedIn, Viewer, clear_cookie, csrf_ok, viewer
from bot.overview import live_stats
from bot.reminders import ReminderPolicy
from storage.groups import get_group, get_ward
from storage.members import lessons_of_group, member_of
from storage.models import LessonProgress, Person, ProgressStatus, ResidentGroup
from storage.progress import get_progress
from storage.roles import administers, leads
from storage.stats import GroupStats, members_progress, ranking

if TYPE_CHECKING:
    from bot.dashboard.pages import Pages

Form = MultiDictProxy[str | bytes | Any]
Action = Callable[[web.Request, Viewer, Form], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Column:
    key: str  # the value of ``sap_xep``
    title: str  # the header's words: a catalogue key
    first: str  # the direction a first click sorts in
    value: Callable[[GroupStats, int], Any]  # (stats, rank) → the sort key
    numeric: bool = True


# The thi đua table's columns, in order. Ties keep the ranking's order.
COLUMNS = (
    Column("hang", "web.common.col_rank", "asc", lambda s, rank: rank),
    Column("ten", "web.common.col_group", "asc", lambda s, rank: (s.name.casefold(), s.code), numeric=False),
    Column("thanh-vien", "doc.col_members", "desc", lambda s, rank: s.members),
    Column("bat-dau", "web.common.col_started", "desc", lambda s, rank: s.started),
    Column("hoc-xong", "web.common.col_finished", "desc", lambda s, rank: s.finished),
    Column("ti-le", "web.common.col_rate", "desc", lambda s, rank: s.rate if s.members else -1.0, numeric=False),
    Column("chi-tieu", "doc.col_target", "desc", lambda s, rank: s.target_percent),
    Column("tuan-nay", "web.groups.col_week", "desc", lambda s, rank: s.change if s.members else -1000.0),
    Column("do-phu", "web.common.col_coverage", "desc", lambda s, rank: -1.0 if s.coverage is None else s.coverage),
)
BY_KEY = {c.key: c for c in COLUMNS}
DIRECTIONS = {"asc": "ascending", "desc": "descending"}

# The outcomes an action reports on the group's page (``?kq=``), by word: the catalogue's key.
OUTCOMES = {
    "nhac": "web.groups.nudged",
    "da-ghi": "web.groups.recorded",
    "da-co": "web.groups.already_assisted",
    "tu-hoc": "web.groups.already_self",
    "hoan-tac": "web.groups.undone",
    "khong-con": "web.groups.nothing_to_undo",
}


def sort_groups(stats: list[GroupStats], key: str | None, direction: str | None) -> tuple[list[tuple[int, GroupStats]], Column, str]:
    """(rank, stats) in the chosen order, the column and the direction used (unknown → the ranking)."""
    ranked = list(enumerate(ranking(stats), start=1))
    column = BY_KEY.get(key or "", BY_KEY["hang"])
    chosen = direction if direction in DIRECTIONS else column.first
    # Python's sort is stable, reversed too: ties keep the ranking's order.
    ordered = sorted(ranked, key=lambda pair: column.value(pair[1], pair[0]), reverse=chosen == "desc")
    return ordered, column, chosen


class GroupPages:
    def __init__(self, pages: Pages) -> None:
        self.p = pages
        self.d = pages.d

    def routes(self) -> list[web.RouteDef]:
        p = self.p
        return [
            web.get("/web/cac-to", p.page(self.groups)),
            web.get("/web/phuong/{ward_id:[0-9]{1,9}}/cac-to", p.page(self.ward_groups)),
            web.get("/web/to/{group_id:[0-9]{1,9}}", p.page(self.group)),
            web.post("/web/to/{group_id:[0-9]{1,9}}/nhac", self.action(self.nudge)),
            web.post("/web/to/{group_id:[0-9]{1,9}}/hoc-truc-tiep", self.action(self.record)),
            web.post("/web/to/{group_id:[0-9]{1,9}}/hoan-tac", self.action(self.undo)),
        ]

    def action(self, handler: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A form's POST: signed in with a role (from the database now) and the session's CSRF
        token, else refused before anything is read or written."""
        async def handle(request: web.Request) -> web.StreamResponse:
            form = await request.post()
            try:
                who = await viewer(self.d, request)
            except NotSignedIn:
                response = self.p.message("not_signed_in", 401)
                clear_cookie(response, SESSION_COOKIE, secure=self.d.secure)
                return response
            except NoRole as gone:
                return await self.p.refused(request, None, "no_role", person_id=gone.person_id,
                                            signout=gone.csrf)
            if not csrf_ok(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
                return await self.p.refused(request, who, "form_expired")
            return await handler(request, who, form)

        return handle

    # -- the thi đua table ------------------------------------------------------------------

    async def groups(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        if len(who.wards) == 1:
            assert who.wards[0].id is not None
            return await self._table(request, who, ward_id=who.wards[0].id)
        if who.wards:
            return self.p.choose_ward(who, title=self.p.t("web.groups.title_wards"), section="/cac-to")
        return await self._table(request, who, ward_id=None)

    async def ward_groups(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        ward_id = int(request.match_info["ward_id"])
        if not who.may_see_ward(ward_id):
            return await self.p.refused(request, who)
        return await self._table(request, who, ward_id=ward_id)

    async def _table(self, request: web.Request, who: Viewer, *, ward_id: int | None) -> web.StreamResponse:
        now = self.d.clock.now()
        async with self.d.reads() as session:
            ward = await get_ward(session, ward_id=ward_id) if ward_id is not None else None
            if ward_id is not None and ward is None:
                return await self.p.refused(request, who)
            if ward_id is not None:
                stats = await live_stats(session, lessons=self.d.lessons, zone=self.d.zone, now=now, ward_id=ward_id)
            else:
                stats = await live_stats(session, lessons=self.d.lessons, zone=self.d.zone, now=now,
                                         group_ids=[g.id for g in who.groups if g.id is not None])
        ordered, column, direction = sort_groups(stats, request.query.get("sap_xep"), request.query.get("chieu"))
        base = request.path
        headers = []
        for c in COLUMNS:
            current = c.key == column.key
            following = ("desc" if direction == "asc" else "asc") if current else c.first
            headers.append({"column": c, "sort": DIRECTIONS[direction] if current else None,
                            "href": f"{base}?{urlencode({'sap_xep': c.key, 'chieu': following})}"})
        lessons = len(self.d.lessons.curriculum_at(now, self.d.zone))
        title = (self.p.t("web.groups.title_ward", ward=ward.name) if ward is not None
                 else self.p.t("web.groups.title_mine"))
        return self.p.render("groups_table.html", viewer=who, rows=ordered, headers=headers, column=column,
                             direction=DIRECTIONS[direction], lessons=lessons, ward=ward, title=title,
                             several=len(who.wards) > 1)

    # -- a group's page ----------------------------------------------------------------------

    async def group(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        group_id = int(request.match_info["group_id"])
        now = self.d.clock.now()
        lesson_ids = [lesson.id for lesson in self.d.lessons]
        async with self.d.reads() as session:
            group = await get_group(session, group_id=group_id)
            if group is None or not who.may_see_group(group):
                return await self.p.refused(request, who)
            [stats] = await live_stats(session, lessons=self.d.lessons, zone=self.d.zone, now=now,
                                       group_ids=[group_id], by_lesson=True)
            members = await members_progress(session, group_id=group_id, lesson_ids=lesson_ids)
            idle, stalled = await group_actions.behind(session, group_id=group_id, viewer_id=who.person.id,
                                                       lessons=self.d.lessons, zone=self.d.zone, now=now,
                                                       members=members)
            progress = await lessons_of_group(session, group_id=group_id, lesson_ids=lesson_ids)
        curriculum = self.d.lessons.curriculum_at(now, self.d.zone)
        shown = [lesson for lesson in self.d.lessons if lesson.id in curriculum]
        behind_ids = {m.person_id for m in [*idle, *stalled]}
        admin = who.may_see_ward(group.ward_id)
        rows = [(m, m.person_id in behind_ids, progress.get(m.person_id, {})) for m in members]
        lessons = [(lesson, stats.lessons.get(lesson.id)) for lesson in shown]
        outcome = self._outcome(request)
        return self.p.render("group.html", viewer=who, group=group, stats=stats, members=rows, lessons=lessons,
                             shown=shown, curriculum=len(curriculum), behind=len(behind_ids), admin=admin,
                             outcome=outcome, title=group.name)

    def _outcome(self, request: web.Request) -> str | None:
        """The notice of the action just taken (``?kq=``), from the catalogue."""
        key = OUTCOMES.get(request.query.get("kq", ""))
        if key is None:
            return None
        counts = {name: _count(request.query.get(name)) for name in ("gui", "gan", "khong")}
        text = self.p.t(key)
        if key == "web.groups.nudged":
            text = self.p.t(key, count=counts["gui"])
            if counts["gan"]:
                text += " " + self.p.t("web.groups.nudged_recent", count=counts["gan"],
                                       days=group_actions.NUDGE_EVERY.days)
            if counts["khong"]:
                text += " " + self.p.t("web.groups.nudged_unreachable", count=counts["khong"])
        return text

    # -- the actions -------------------------------------------------------------------------

    async def _allowed(self, session: Any, who: Viewer, group_id: int) -> tuple[ResidentGroup, Person, bool] | None:
        """The group, the acting person and whether they lead it — if they lead it or administer
        its ward now (asked inside the action's transaction)."""
        group = await get_group(session, group_id=group_id)
        person = await session.get(Person, who.person.id)
        if group is None or group.id is None or person is None or person.id is None or person.deleted_at is not None:
            return None
        leader = await leads(session, person_id=person.id, group_id=group.id)
        if not leader and not await administers(session, person_id=person.id, ward_id=group.ward_id):
            return None
        return group, person, leader

    async def nudge(self, request: web.Request, who: Viewer, form: Form) -> web.StreamResponse:
        group_id = int(request.match_info["group_id"])
        only = _int(form.get("nguoi"))
        now = self.d.clock.now()
        async with self.d.writes() as session, session.begin():
            allowed = await self._allowed(session, who, group_id)
            if allowed is None:
                return await self.p.refused(request, who, session=session)
            group, person, leader = allowed
            if only is not None and await member_of(session, group_id=group_id, person_id=only) is None:
                return await self.p.refused(request, who, session=session)
            done = await group_actions.nudge(session, group=group, sender=person, lessons=self.d.lessons,
                                             zone=self.d.zone, catalog=self.d.catalog, now=now, only_id=only,
                                             as_admin=not leader)
        return _back(group_id, kq="nhac", gui=done.sent, gan=done.recent, khong=done.unreachable)

    async def record(self, request: web.Request, who: Viewer, form: Form) -> web.StreamResponse:
        async def act(a: OnMember) -> web.StreamResponse:
            if a.member.id == a.person.id:  # as in the chat: a leader records others' lessons, not their own
                return await self.p.refused(request, who, session=a.session)
            assert a.person.id is not None
            outcome = await group_actions.record_assisted(
                a.session, group=a.group, person=a.member, lesson_id=a.lesson.id, lesson_version=a.lesson.version,
                leader_id=a.person.id, reminders=self._reminders(), now=a.now, row=a.row)
            word = {"recorded": "da-ghi", "already_assisted": "da-co", "already_self": "tu-hoc"}[outcome]
            return _back(a.group_id, kq=word)

        return await self._on_member(request, who, form, act)

    async def undo(self, request: web.Request, who: Viewer, form: Form) -> web.StreamResponse:
        async def act(a: OnMember) -> web.StreamResponse:
            assert a.person.id is not None
            if a.row is None or a.row.status != ProgressStatus.COMPLETED:
                return _back(a.group_id, kq="khong-con")  # undone already (a second submit): nothing to do
            if not await group_actions.may_undo(a.session, row=a.row, actor_id=a.person.id, group=a.group):
                return await self.p.refused(request, who, session=a.session)
            await group_actions.undo_assisted(a.session, group=a.group, person=a.member, row=a.row,
                                              actor_id=a.person.id, now=a.now)
            return _back(a.group_id, kq="hoan-tac")

        return await self._on_member(request, who, form, act)

    async def _on_member(self, request: web.Request, who: Viewer, form: Form,
                         act: Callable[[OnMember], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """An action on one member's lesson (``nguoi``, ``bai``): in one write transaction, the
        actor allowed on the group now, the person a member of it, the lesson known — else 403,
        nothing changed — then ``act`` with the member's progress row in that lesson."""
        group_id = int(request.match_info["group_id"])
        person_id, lesson = _int(form.get("nguoi")), self._lesson(form.get("bai"))
        now = self.d.clock.now()
        async with self.d.writes() as session, session.begin():
            allowed = await self._allowed(session, who, group_id)
            member = (await member_of(session, group_id=group_id, person_id=person_id)
                      if allowed is not None and person_id is not None else None)
            if allowed is None or member is None or lesson is None or member.id is None:
                return await self.p.refused(request, who, session=session)
            group, person, _ = allowed
            row = await get_progress(session, person_id=member.id, lesson_id=lesson.id)
            return await act(OnMember(session, group_id, group, person, member, lesson, row, now))

    def _lesson(self, value: object) -> Lesson | None:
        return next((lesson for lesson in self.d.lessons if lesson.id == value), None) if isinstance(value, str) else None

    def _reminders(self) -> ReminderPolicy:
        return self.d.services.reminders if self.d.services is not None else ReminderPolicy(self.d.zone)


@dataclass(frozen=True)
class OnMember:
    """What an action on a member's lesson acts with (``GroupPages._on_member``)."""

    session: AsyncSession
    group_id: int
    group: ResidentGroup
    person: Person  # who acts
    member: Person
    lesson: Lesson
    row: LessonProgress | None  # the member's progress in the lesson
    now: datetime


def _int(value: object) -> int | None:
    return number(value)


def _count(value: str | None) -> int:
    return number(value) or 0


def _back(group_id: int, **outcome: object) -> web.Response:
    """303 to the group's page with the outcome (words and counts only)."""
    return web.Response(status=303, headers={"Location": f"/web/to/{group_id}?{urlencode(outcome)}"})


def routes(pages: Pages) -> list[web.RouteDef]:
    return GroupPages(pages).routes()
