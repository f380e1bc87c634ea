"""The audit log: who did what to what, with ids only (no names, no message texts).

``actor`` is ``person:<id>``, ``identity:<id>`` (someone who never joined pressed a staff
button) or ``cli``. Names are looked up only when the log is read (:func:`actor_names`), so an
erasure leaves nothing personal in it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, exists, literal, not_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditLog, Broadcast, Person, ResidentGroup, Role, Ward

REFUSED = "refused"  # the action of a refused staff action (a forged or stale button)
REFUSALS_EVERY = timedelta(minutes=1)  # at most one ``refused`` row per actor in this time
# Actions only staff take (by prefix): whoever took one is named in the log.
STAFF_PREFIXES = ("admin.", "leader.", "broadcast.", "role.", "groups.", "invite.", "help.reply", "help.list")
# Actions that made someone staff with the person in their ``target`` (the actor of
# ``invite.accept`` is the new leader): who held a role once stays named after it is removed.
GRANTS_TO_TARGET = ("role.grant",)
TARGET_MAX = 64  # the column's length


def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    now: datetime,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    entry = AuditLog(actor=actor, action=action, target=target[:TARGET_MAX], details=details or {}, at=now)
    session.add(entry)
    return entry


async def record_refusal(session: AsyncSession, *, actor: str, attempted: str, now: datetime) -> bool:
    """A staff action was refused (``attempted``: the pressed action, e.g. ``adm:ry:7``):
    one ``refused`` row, unless this actor already has one in the last ``REFUSALS_EVERY``
    (a button pressed again and again is one event, and the log cannot be flooded).
    True if a row was added."""
    last = (await session.exec(
        select(AuditLog.at).where(AuditLog.actor == actor, AuditLog.action == REFUSED)
        .order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()).limit(1)
    )).first()
    if last is not None and last > now - REFUSALS_EVERY:
        return False
    verb = ":".join(attempted.split(":")[:2])
    record(session, actor=actor, action=REFUSED, target=attempted, now=now, details={"attempted": verb})
    return True


def is_staff_action(action: str) -> bool:
    return action.startswith(STAFF_PREFIXES)


@dataclass(frozen=True)
class ActorName:
    """A person behind an audit actor: their name (None once erased) and whether they are
    staff (hold a role now, held one, or took a staff action)."""

    name: str | None
    staff: bool


def _actor_of_person() -> ColumnElement[str]:
    """``'person:' || person.id`` in SQL, on SQLite and PostgreSQL alike."""
    return literal("person:") + cast(Person.id, String)


async def actor_names(session: AsyncSession, *, actors: Collection[str]) -> dict[str, ActorName]:
    """For the ``person:<id>`` actors among ``actors``: :class:`ActorName`. One query per
    chunk of a thousand actors, joined on the audit log itself for "ever staff"."""
    ids = sorted({int(a[7:]) for a in actors if a.startswith("person:") and a[7:].isdigit()})
    me = _actor_of_person()
    role = exists(select(Role.id).where(Role.person_id == Person.id))
    staff_action = or_(*(col(AuditLog.action).startswith(p) for p in STAFF_PREFIXES))
    acted = exists(select(AuditLog.id).where(AuditLog.actor == me, staff_action))
    granted = exists(select(AuditLog.id).where(AuditLog.target == me, col(AuditLog.action).in_(GRANTS_TO_TARGET)))
    found: dict[str, ActorName] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        query = select(Person.id, Person.display_name, Person.deleted_at, role, acted, granted).where(
            col(Person.id).in_(chunk))
        for person_id, name, deleted_at, *staff in (await session.exec(query)).all():  # type: ignore[call-overload]
            found[f"person:{person_id}"] = ActorName(None if deleted_at is not None else name, any(staff))
    return found


# Targets that name something belonging to one ward; a row with any other target (``web``, a
# pressed button) is about its actor alone.
WARD_THINGS = ("person:", "group:", "ward:", "broadcast:")


def _in_ward(ward_id: int) -> ColumnElement[bool]:
    """An audit row about the ward: its target is a person of the ward's groups, one of those
    groups, the ward or one of its broadcasts; or its target names nothing of any ward (a
    sign-in, a refused button) and its actor is a person of the ward's groups or holds a role
    there. A row whose actor works here but whose target is another ward's stays out (someone
    who leads a group here and administers another ward). Rows name their targets by id
    (``person:12``, ``group:3``), so this is a join on those strings."""
    groups = select(ResidentGroup.id).where(ResidentGroup.ward_id == ward_id)
    people = select(_actor_of_person()).where(col(Person.group_id).in_(groups))
    staff = select(literal("person:") + cast(Role.person_id, String)).where(
        or_(Role.ward_id == ward_id, col(Role.group_id).in_(groups)))
    group_names = select(literal("group:") + cast(ResidentGroup.id, String)).where(ResidentGroup.ward_id == ward_id)
    code = select(Ward.code).where(Ward.id == ward_id).scalar_subquery()
    broadcasts = select(literal("broadcast:") + cast(Broadcast.id, String)).where(
        Broadcast.audience["ward"].as_string() == code)  # type: ignore[index]
    about_the_ward = or_(col(AuditLog.target).in_(people), col(AuditLog.target).in_(group_names),
                         AuditLog.target == f"ward:{ward_id}", col(AuditLog.target).in_(broadcasts))
    about_no_ward = not_(or_(*(col(AuditLog.target).startswith(prefix) for prefix in WARD_THINGS)))
    by_its_people = and_(about_no_ward, or_(col(AuditLog.actor).in_(people), col(AuditLog.actor).in_(staff)))
    return or_(about_the_ward, by_its_people)


async def read_log(
    session: AsyncSession, *, ward_id: int | None, action: str | None = None, actor: str | None = None,
    since: datetime | None = None, until: datetime | None = None, before_id: int | None = None, limit: int = 50,
) -> Sequence[AuditLog]:
    """The audit log newest first, ``limit`` rows with ids below ``before_id`` (keyset
    pagination): about the ward ``ward_id`` (None: every row, for a city admin), with the
    action, the actor and the time (inclusive) given."""
    query = select(AuditLog)
    if ward_id is not None:
        query = query.where(_in_ward(ward_id))
    if action:
        query = query.where(AuditLog.action == action)
    if actor:
        query = query.where(AuditLog.actor == actor)
    if since is not None:
        query = query.where(col(AuditLog.at) >= since)
    if until is not None:
        query = query.where(col(AuditLog.at) <= until)
    if before_id is not None:
        query = query.where(col(AuditLog.id) < before_id)
    return (await session.exec(query.order_by(col(AuditLog.id).desc()).limit(limit))).all()


async def log_actions(session: AsyncSession, *, ward_id: int | None) -> list[str]:
    """The distinct actions of the log (about the ward), for a filter's choices."""
    query = select(AuditLog.action).distinct()
    if ward_id is not None:
        query = query.where(_in_ward(ward_id))
    return sorted(str(a) for a in (await session.exec(query)).all())
