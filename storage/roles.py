"""Roles — leader of a residential group, admin of a ward — and the invitations that grant
them. Every leader and admin action asks these functions again when it runs; nothing is
trusted from a button.

Keyword-only functions; none commits (the caller owns the transaction).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Identity, Invite, Person, ResidentGroup, Role, RoleKind, Ward

INVITE_TTL = timedelta(days=7)
INVITE_PREFIX = "ld_"


class InviteProblem(StrEnum):
    """Why an invitation cannot be used (each has its own kind answer)."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    NO_GROUP = "no_group"  # the group was removed since the invitation was made


@dataclass(frozen=True)
class Accepted:
    invite: Invite
    group: ResidentGroup
    role: Role
    new: bool  # False: the person already led the group (the invitation stays unused)


class RoleError(ValueError):
    """A bootstrap request that cannot be carried out: ``reason`` (``needs_start``,
    ``ward_unknown``, ``ward_required``) and the values its message needs."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


# -- roles ---------------------------------------------------------------------------

async def _find(
    session: AsyncSession, *, person_id: int, kind: RoleKind, group_id: int | None, ward_id: int | None
) -> Role | None:
    query = select(Role).where(Role.person_id == person_id, Role.kind == kind)
    query = query.where(Role.group_id == group_id) if group_id is not None else query.where(col(Role.group_id).is_(None))
    query = query.where(Role.ward_id == ward_id) if ward_id is not None else query.where(col(Role.ward_id).is_(None))
    return (await session.exec(query)).first()


async def grant(
    session: AsyncSession,
    *,
    person_id: int,
    kind: RoleKind,
    granted_by: str,
    now: datetime,
    group_id: int | None = None,
    ward_id: int | None = None,
) -> tuple[Role, bool]:
    """Give a role (a leader names a group, an admin a ward — or no ward: a city admin, who
    administers every ward); returns it and whether it is new.

    The unique constraint cannot see duplicates through NULL columns, so look first."""
    if (kind == RoleKind.LEADER) != (group_id is not None) or (kind == RoleKind.LEADER and ward_id is not None):
        raise ValueError("a leader role names a group, an admin role a ward (or none: the city)")
    existing = await _find(session, person_id=person_id, kind=kind, group_id=group_id, ward_id=ward_id)
    if existing is not None:
        return existing, False
    role = Role(person_id=person_id, kind=kind, group_id=group_id, ward_id=ward_id,
                granted_by=granted_by, granted_at=now)
    session.add(role)
    await session.flush()
    note_roles_written(session)
    return role, True


async def revoke(session: AsyncSession, *, role_id: int) -> bool:
    result = await session.exec(delete(Role).where(Role.id == role_id))  # type: ignore[call-overload]
    note_roles_written(session)
    return bool(result.rowcount)


async def roles_of(session: AsyncSession, *, person_id: int) -> Sequence[Role]:
    return (await session.exec(select(Role).where(Role.person_id == person_id).order_by(col(Role.id)))).all()


_WRITTEN = "hocvuso.roles_written"  # a key of ``session.info``


def note_roles_written(session: AsyncSession) -> None:
    """Roles were granted or taken in this session: what was read of them before is stale
    (the role kinds an update reads with its opening statement, ``Context.role_kinds``). Every
    function that writes roles calls it."""
    session.info[_WRITTEN] = True


def roles_written(session: AsyncSession) -> bool:
    return bool(session.info.get(_WRITTEN))


async def leads(session: AsyncSession, *, person_id: int, group_id: int) -> bool:
    query = select(Role.id).where(Role.person_id == person_id, Role.kind == RoleKind.LEADER, Role.group_id == group_id)
    return (await session.exec(query)).first() is not None


async def administers(session: AsyncSession, *, person_id: int, ward_id: int) -> bool:
    """An admin of that ward, or a city admin (an admin role naming no ward)."""
    query = select(Role.id).where(Role.person_id == person_id, Role.kind == RoleKind.ADMIN,
                                  or_(Role.ward_id == ward_id, col(Role.ward_id).is_(None)))
    return (await session.exec(query)).first() is not None


async def led_groups(session: AsyncSession, *, person_id: int) -> Sequence[ResidentGroup]:
    query = (
        select(ResidentGroup)
        .join(Role, col(Role.group_id) == ResidentGroup.id)
        .where(Role.person_id == person_id, Role.kind == RoleKind.LEADER)
        .order_by(col(ResidentGroup.code))
    )
    return (await session.exec(query)).all()


async def administered_wards(session: AsyncSession, *, person_id: int) -> Sequence[Ward]:
    """The wards the person administers: every ward for a city admin."""
    admin = select(Role.id).where(Role.person_id == person_id, Role.kind == RoleKind.ADMIN,
                                  or_(Role.ward_id == Ward.id, col(Role.ward_id).is_(None)))
    return (await session.exec(select(Ward).where(admin.exists()).order_by(col(Ward.code)))).all()


async def leader_roles(session: AsyncSession, *, group_id: int) -> Sequence[tuple[Role, Person]]:
    """The leaders of a group (people who deleted their data are left out)."""
    query = (
        select(Role, Person)
        .join(Person, col(Person.id) == Role.person_id)
        .where(Role.kind == RoleKind.LEADER, Role.group_id == group_id, col(Person.deleted_at).is_(None))
        .order_by(col(Role.id))
    )
    return (await session.exec(query)).all()  # type: ignore[return-value]


async def leaders_of(session: AsyncSession, *, group_id: int) -> list[Person]:
    return [person for _, person in await leader_roles(session, group_id=group_id)]


async def admins_of(session: AsyncSession, *, ward_id: int) -> list[Person]:
    query = (
        select(Person)
        .join(Role, col(Role.person_id) == Person.id)
        .where(Role.kind == RoleKind.ADMIN, Role.ward_id == ward_id, col(Person.deleted_at).is_(None))
        .order_by(col(Person.id))
    )
    return list((await session.exec(query)).all())


async def add_admin(
    session: AsyncSession, *, channel: str, external_id: str, ward_code: str | None, now: datetime,
    city: bool = False,
) -> tuple[Person, Ward | None, bool]:
    """``hocvuso admin add``: make the person behind a channel account an admin of a ward, or
    with ``city`` of every ward (the ward returned is then None).

    The person must have started the bot and consented (we hold no one's data otherwise);
    the ward defaults to the only one. Raises :class:`RoleError` naming what is missing."""
    identity = (await session.exec(
        select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
    )).first()
    person = await session.get(Person, identity.person_id) if identity and identity.person_id else None
    if person is None or person.deleted_at is not None or person.consent_at is None:
        raise RoleError("needs_start", account=f"{channel}:{external_id}")
    assert person.id is not None
    if city:
        _, new = await grant(session, person_id=person.id, kind=RoleKind.ADMIN, ward_id=None, granted_by="cli", now=now)
        return person, None, new
    wards = (await session.exec(select(Ward).order_by(col(Ward.code)))).all()
    if ward_code is not None:
        ward = next((w for w in wards if w.code.lower() == ward_code.lower()), None)
        if ward is None:
            raise RoleError("ward_unknown", ward=ward_code)
    elif len(wards) == 1:
        ward = wards[0]
    else:
        raise RoleError("ward_required", count=len(wards))
    assert ward.id is not None
    _, new = await grant(session, person_id=person.id, kind=RoleKind.ADMIN, ward_id=ward.id, granted_by="cli", now=now)
    return person, ward, new


# -- invitations -----------------------------------------------------------------------

def new_code() -> str:
    """16 characters of ``A-Za-z0-9_-`` (96 random bits): fits a Telegram start parameter
    (``ld_`` + code ≤ 64) and cannot be guessed."""
    return secrets.token_urlsafe(12)


async def create_invite(
    session: AsyncSession, *, group_id: int, created_by: int | None, now: datetime, ttl: timedelta = INVITE_TTL
) -> Invite:
    invite = Invite(code=new_code(), kind=RoleKind.LEADER, group_id=group_id, created_by=created_by,
                    created_at=now, expires_at=now + ttl)
    session.add(invite)
    await session.flush()
    return invite


async def consume_invite(
    session: AsyncSession, *, code: str, person_id: int, now: datetime, ward_id: int | None = None,
) -> Accepted | InviteProblem:
    """Use an invitation: unused, not expired, its group still there → the leader role.
    ``ward_id``: the ward of the bot it was opened in; another ward's invitation is unknown there.

    The invitation is marked used with a guarded UPDATE, so two people opening the same
    link at once cannot both become leaders."""
    if not code or len(code) > 24:
        return InviteProblem.UNKNOWN
    invite = (await session.exec(select(Invite).where(Invite.code == code))).first()
    if invite is None or invite.kind != RoleKind.LEADER:
        return InviteProblem.UNKNOWN
    if ward_id is not None and invite.group_id is not None:
        group_ward = (await session.exec(select(ResidentGroup.ward_id).where(ResidentGroup.id == invite.group_id))).first()
        if group_ward is not None and group_ward != ward_id:
            return InviteProblem.UNKNOWN
    if invite.used_by is not None:
        return InviteProblem.USED
    if invite.expires_at is None or invite.expires_at <= now:
        return InviteProblem.EXPIRED
    group = await session.get(ResidentGroup, invite.group_id) if invite.group_id is not None else None
    if group is None or group.id is None:
        return InviteProblem.NO_GROUP
    existing = await _find(session, person_id=person_id, kind=RoleKind.LEADER, group_id=group.id, ward_id=None)
    if existing is not None:
        return Accepted(invite, group, existing, new=False)
    taken = await session.exec(  # type: ignore[call-overload]
        update(Invite).where(Invite.id == invite.id, col(Invite.used_by).is_(None)).values(used_by=person_id, used_at=now)
    )
    if not taken.rowcount:
        return InviteProblem.USED
    granted_by = f"person:{invite.created_by}" if invite.created_by is not None else "cli"
    role, _ = await grant(session, person_id=person_id, kind=RoleKind.LEADER, group_id=group.id,
                          granted_by=granted_by, now=now)
    await session.refresh(invite)
    return Accepted(invite, group, role, new=True)


async def pending_invites(session: AsyncSession, *, ward_id: int, now: datetime) -> Sequence[Invite]:
    """The ward's invitations to lead a group that are neither used nor expired, soonest to expire first."""
    groups = select(ResidentGroup.id).where(ResidentGroup.ward_id == ward_id)
    return (await session.exec(
        select(Invite).where(col(Invite.group_id).in_(groups), col(Invite.used_by).is_(None), col(Invite.expires_at) > now)
        .order_by(col(Invite.expires_at), col(Invite.id))
    )).all()


async def recent_invite(
    session: AsyncSession, *, group_id: int, created_by: int, since: datetime, now: datetime,
) -> Invite | None:
    """A usable invitation (unused, neither expired nor ended) this person made for the group
    since ``since`` (a form sent twice shows it again instead of making another; one ended a
    moment ago does not stand in the way of a new one)."""
    return (await session.exec(
        select(Invite).where(Invite.group_id == group_id, Invite.created_by == created_by,
                             col(Invite.used_by).is_(None), col(Invite.created_at) >= since,
                             col(Invite.expires_at) > now)
        .order_by(col(Invite.id).desc()).limit(1)
    )).first()


async def revoke_invite(session: AsyncSession, *, invite_id: int, now: datetime) -> bool:
    """End an unused invitation now (it expires: opening it says so, as an expired one does).
    A guarded UPDATE: False if it was used or had expired meanwhile."""
    ended = await session.exec(  # type: ignore[call-overload]
        update(Invite).where(Invite.id == invite_id, col(Invite.used_by).is_(None), col(Invite.expires_at) > now)
        .values(expires_at=now)
    )
    return bool(ended.rowcount)
