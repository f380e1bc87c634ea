"""Assisted completion: a leader records that a resident completed a lesson in person with
them — a resident of the group, or someone without a smartphone added by name only.

Kept apart from self-completion everywhere (``lesson_progress.assisted_by`` = the leader):
the dashboard, the digest and the reports count both and show them separately. A
completion the resident earned themselves is never overwritten.

Someone added by name has no phone to send ``/xoadulieu`` from, so the leader can erase
them ("🗑 Xóa người này" → a confirmation → ``storage.people.erase_person``, the same
erasure): allowed to a leader of their group or an admin of its ward, checked when it runs,
audited with ids only (``leader.erase_person``).

Actions (the leader's role and the resident's group are checked on every one):
``lead:as:<group>:<page>`` choose a resident · ``lead:an:<group>`` add by name (then the
``assist_name`` step) · ``lead:al:<group>:<person>:<page>`` the lessons ·
``lead:ac:<group>:<person>:<lesson number>`` record it · ``lead:ad:<group>:<person>`` erase
someone added by name (ask) · ``lead:ax:<group>:<person>`` (do; only right after asking) ·
``lead:ud:<group>:<person>:<lesson number>`` undo an assisted completion recorded by mistake
(ask) · ``lead:ux:…`` (do; only right after asking).

An assisted completion can be undone by the leader who recorded it (while they lead the
group) or an admin of the ward; the progress row goes back to what it was before (kept in the
audit details of ``leader.assist``): deleted if the resident had no progress on the lesson.
"""

from __future__ import annotations

from sqlmodel import col, select

from bot.core.conversation import Context
from bot.core.text import clean_line, fold
from bot import group_actions
from handlers import authz, menu
from handlers.common import PAGE_SIZE, int_arg, paginate
from handlers.fallback import stale_action
from handlers.onboarding import CONSENT_VERSION
from handlers.steps import Step
from storage.groups import get_group
from storage.members import member_of
from storage.models import Person, ProgressStatus, ResidentGroup
from storage.people import erasable_by_staff, erase_person
from storage.progress import get_progress, progress_of
from storage.roles import administers, leads
from storage.stats import members_progress

VERBS = {"as", "an", "al", "ac", "ad", "ax", "ud", "ux"}
NAME_MAX = 64
ASSISTED_CONSENT_PREFIX = "assisted-"  # consent given in person, to the leader


async def assisted_action(ctx: Context) -> None:
    verb = ctx.args[0]
    shapes = {"as": 3, "an": 2, "al": 4, "ac": 4, "ad": 3, "ax": 3, "ud": 4, "ux": 4}
    if len(ctx.args) != shapes[verb]:
        await stale_action(ctx)
        return
    if verb in ("ad", "ax"):
        await erase_action(ctx, confirmed=verb == "ax")
        return
    if verb in ("ud", "ux"):
        await undo_action(ctx, confirmed=verb == "ux")
        return
    group = await authz.led_group(ctx)
    if group is None:
        return
    if verb == "as":
        await choose_resident(ctx, group, int_arg(ctx, 2) or 0)
    elif verb == "an":
        ask_name(ctx, group)
    else:
        person = await _member(ctx, group, int_arg(ctx, 2, low=1))
        if person is None:
            return
        if verb == "al":
            await choose_lesson(ctx, group, person, int_arg(ctx, 3) or 0)
        else:
            await record(ctx, group, person, int_arg(ctx, 3, low=1, high=len(ctx.lessons) + 1))


async def _member(ctx: Context, group: ResidentGroup, person_id: int | None) -> Person | None:
    """A named resident of this group other than the leader; else refuse (forged data)."""
    person = await ctx.session.get(Person, person_id) if person_id is not None else None
    if (person is None or person.group_id != group.id or person.deleted_at is not None
            or person.id == ctx.person.id):  # type: ignore[union-attr]
        await authz.refuse(ctx)
        return None
    return person


async def choose_resident(ctx: Context, group: ResidentGroup, page: int, *, note: str = "") -> None:
    t = ctx.t
    assert group.id is not None and ctx.person is not None
    members = [m for m in await members_progress(ctx.session, group_id=group.id, lesson_ids=[l.id for l in ctx.lessons])
               if m.person_id != ctx.person.id]
    shown = paginate(members, page)
    total = len(ctx.lessons)
    options = [(t("assisted.resident_option", name=m.display_name or "", done=m.completed, total=total),
                f"lead:al:{group.id}:{m.person_id}:0") for m in shown.items]
    options += shown.nav(ctx, f"lead:as:{group.id}:")
    options += [(t("assisted.add_by_name"), f"lead:an:{group.id}"), (t("leader.back_to_group"), f"lead:g:{group.id}")]
    ctx.goto(Step.MENU)
    text = t("assisted.choose_resident", group=group.name, hint=shown.hint(ctx))
    ctx.ask(f"{note}\n\n{text}" if note else text, options)


def ask_name(ctx: Context, group: ResidentGroup) -> None:
    ctx.goto(Step.ASSIST_NAME, group=group.id)
    ctx.ask(ctx.t("assisted.ask_name", group=group.name), [(ctx.t("assisted.cancel"), f"lead:g:{group.id}")])


async def receive_name(ctx: Context) -> None:
    """The typed name of someone without a smartphone: add them to the group (consent
    given in person, recorded as such), then choose their lessons."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    group_id = ctx.data.get("group")
    group = await get_group(ctx.session, group_id=group_id) if isinstance(group_id, int) else None
    if group is None or group.id is None or not await leads(ctx.session, person_id=ctx.person.id, group_id=group.id):
        await authz.refuse(ctx)  # the role was revoked meanwhile
        return
    name = clean_line(ctx.incoming.text or "", limit=NAME_MAX + 1)
    if len(name) > NAME_MAX or not any(c.isalpha() for c in name):
        ctx.ask(t("assisted.name_invalid", limit=NAME_MAX), [(t("assisted.cancel"), f"lead:g:{group.id}")])
        return
    # Typed twice (a slow network, a second visit): the same person, not a duplicate.
    existing = (await ctx.session.exec(select(Person).where(
        Person.group_id == group.id, col(Person.added_by).is_not(None), col(Person.deleted_at).is_(None)
    ))).all()
    person = next((p for p in existing if fold(p.display_name or "") == fold(name)), None)
    if person is None:
        person = Person(display_name=name, group_id=group.id, added_by=ctx.person.id, consent_at=ctx.now,
                        consent_version=f"{ASSISTED_CONSENT_PREFIX}{CONSENT_VERSION}", reminders_on=False,
                        created_at=ctx.now, last_active_at=ctx.now)
        ctx.session.add(person)
        await ctx.session.flush()
        authz.record(ctx, "leader.add_person", f"person:{person.id}", group=group.id)
        note = t("assisted.added", name=name, group=group.name)
    else:
        note = t("assisted.already_added", name=name)
    await choose_lesson(ctx, group, person, 0, note=note)


async def choose_lesson(ctx: Context, group: ResidentGroup, person: Person, page: int, *, note: str = "") -> None:
    t = ctx.t
    assert person.id is not None
    progress = await progress_of(ctx.session, person_id=person.id)
    shown = paginate(list(ctx.lessons), page)
    options = []
    for lesson in shown.items:
        row = progress.get(lesson.id)
        done = row is not None and row.status == ProgressStatus.COMPLETED
        mark = ("🤝" if row.assisted_by is not None else "✅") if done and row else "▫️"
        number = ctx.lessons.position(lesson.id)
        options.append((f"{mark} {number}. {lesson.title}", f"lead:ac:{group.id}:{person.id}:{number}"))
    options += shown.nav(ctx, f"lead:al:{group.id}:{person.id}:")
    if await erasable_by_staff(ctx.session, person=person):
        options.append((t("assisted.erase_button"), f"lead:ad:{group.id}:{person.id}"))
    options += [(t("assisted.other_resident"), f"lead:as:{group.id}:0"),
                (t("leader.back_to_group"), f"lead:g:{group.id}")]
    text = t("assisted.choose_lesson", name=person.display_name or "", hint=shown.hint(ctx))
    ctx.goto(Step.MENU)
    ctx.ask(f"{note}\n\n{text}" if note else text, options)


async def record(ctx: Context, group: ResidentGroup, person: Person, number: int | None) -> None:
    """Completed in person: a new completion marked as assisted by this leader. A lesson the
    resident completed themselves (or that was already recorded) stays as it is."""
    assert ctx.person is not None and person.id is not None
    t = ctx.t
    lesson = list(ctx.lessons)[number - 1] if number is not None else None
    if lesson is None:
        await stale_action(ctx)
        return
    row = await get_progress(ctx.session, person_id=person.id, lesson_id=lesson.id)
    outcome = await group_actions.record_assisted(
        ctx.session, group=group, person=person, lesson_id=lesson.id, lesson_version=lesson.version,
        leader_id=ctx.person.id, reminders=ctx.services.reminders, now=ctx.now, row=row)  # type: ignore[arg-type]
    key = {"already_self": "assisted.already_self", "already_assisted": "assisted.already_assisted"}.get(
        outcome, "assisted.recorded")
    note = t(key, name=person.display_name or "", title=lesson.title)
    page = (ctx.lessons.position(lesson.id) - 1) // PAGE_SIZE
    await choose_lesson(ctx, group, person, page, note=note)


async def erase_action(ctx: Context, *, confirmed: bool) -> None:
    """``lead:ad`` asks, ``lead:ax`` erases someone added by name — if this person leads the
    group or administers its ward *now*, and (to erase) the question was just asked."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    group_id, person_id = int_arg(ctx, 1, low=1), int_arg(ctx, 2, low=1)
    group = await get_group(ctx.session, group_id=group_id) if group_id is not None else None
    person = await ctx.session.get(Person, person_id) if person_id is not None else None
    if (group is None or group.id is None or person is None or person.id is None or person.group_id != group.id
            or not await erasable_by_staff(ctx.session, person=person)
            or not (await leads(ctx.session, person_id=ctx.person.id, group_id=group.id)
                    or await administers(ctx.session, person_id=ctx.person.id, ward_id=group.ward_id))):
        await authz.refuse(ctx)
        return
    name = person.display_name or ""
    if not confirmed:
        ctx.goto(Step.MENU, erase=person.id)
        ctx.ask(t("assisted.erase_confirm", name=name, group=group.name),
                [(t("assisted.erase_yes"), f"lead:ax:{group.id}:{person.id}"),
                 (t("assisted.erase_no"), f"lead:al:{group.id}:{person.id}:0")])
        return
    if ctx.data.get("erase") != person.id:
        await stale_action(ctx)  # not right after the question: a forged or old button
        return
    await erase_person(ctx.session, person_id=person.id, now=ctx.now)
    authz.record(ctx, "leader.erase_person", f"person:{person.id}", group=group.id)
    note = t("assisted.erased", group=group.name)  # not the name: this text is kept as the pending question
    if await leads(ctx.session, person_id=ctx.person.id, group_id=group.id):
        await choose_resident(ctx, group, 0, note=note)
    else:
        await menu.show_main_menu(ctx, note)


async def undo_action(ctx: Context, *, confirmed: bool) -> None:
    """``lead:ud`` asks, ``lead:ux`` undoes an assisted completion — if this person recorded it
    and leads the group *now*, or administers its ward, and (to undo) the question was just asked."""
    from handlers import leader  # the member's page (leader imports this module)

    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    group_id, person_id = int_arg(ctx, 1, low=1), int_arg(ctx, 2, low=1)
    number = int_arg(ctx, 3, low=1, high=len(ctx.lessons) + 1)
    group = await get_group(ctx.session, group_id=group_id) if group_id is not None else None
    person = (await member_of(ctx.session, group_id=group.id, person_id=person_id)  # type: ignore[arg-type]
              if group is not None and person_id is not None else None)
    lesson = list(ctx.lessons)[number - 1] if number is not None else None
    row = (await get_progress(ctx.session, person_id=person.id, lesson_id=lesson.id)  # type: ignore[union-attr]
           if person is not None and lesson is not None else None)
    allowed = group is not None and await group_actions.may_undo(ctx.session, row=row, actor_id=ctx.person.id,
                                                                 group=group)
    if not allowed or group is None or person is None or lesson is None or row is None:
        await authz.refuse(ctx)
        return
    name = person.display_name or ""
    if not confirmed:
        ctx.goto(Step.MENU, undo=row.id)
        ctx.ask(t("assisted.undo_confirm", name=name, number=number, title=lesson.title),
                [(t("assisted.undo_yes"), f"lead:ux:{group.id}:{person.id}:{number}"),
                 (t("assisted.undo_no"), f"lead:p:{group.id}:{person.id}")])
        return
    if ctx.data.get("undo") != row.id:
        await stale_action(ctx)  # not right after the question: a forged or old button
        return
    await group_actions.undo_assisted(ctx.session, group=group, person=person, row=row, actor_id=ctx.person.id,
                                      now=ctx.now)
    note = t("assisted.undone", name=name, number=number, title=lesson.title)
    if await leads(ctx.session, person_id=ctx.person.id, group_id=group.id):  # type: ignore[arg-type]
        await leader.show_member(ctx, group, person, note=note, audit=False)
    else:
        await menu.show_main_menu(ctx, note)
