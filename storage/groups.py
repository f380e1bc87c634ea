"""Wards and residential groups."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import GroupKind, ResidentGroup, Ward


async def count_groups(session: AsyncSession) -> int:
    return (await session.exec(select(func.count()).select_from(ResidentGroup))).one()


async def list_wards(session: AsyncSession, *, ward_id: int | None = None) -> Sequence[Ward]:
    """Every ward, or only ``ward_id`` (the ward of the bot a resident writes to)."""
    query = select(Ward).order_by(Ward.name)
    if ward_id is not None:
        query = query.where(Ward.id == ward_id)
    return (await session.exec(query)).all()


async def list_groups(session: AsyncSession, *, ward_id: int | None = None) -> Sequence[ResidentGroup]:
    query = select(ResidentGroup).order_by(ResidentGroup.ward_id, ResidentGroup.code)
    if ward_id is not None:
        query = query.where(ResidentGroup.ward_id == ward_id)
    return (await session.exec(query)).all()


async def get_group(session: AsyncSession, *, group_id: int) -> ResidentGroup | None:
    return await session.get(ResidentGroup, group_id)


async def find_group_by_code(session: AsyncSession, *, code: str, ward_id: int | None = None) -> ResidentGroup | None:
    """The group of that code (any case), within ``ward_id`` when given."""
    query = select(ResidentGroup).where(func.lower(ResidentGroup.code) == code.lower())
    if ward_id is not None:
        query = query.where(ResidentGroup.ward_id == ward_id)
    return (await session.exec(query)).first()


async def get_ward(session: AsyncSession, *, ward_id: int) -> Ward | None:
    return await session.get(Ward, ward_id)


async def upsert_ward(session: AsyncSession, *, code: str, name: str) -> tuple[Ward, bool]:
    """Insert or rename a ward; returns it and whether it was created."""
    ward = (await session.exec(select(Ward).where(Ward.code == code))).first()
    created = ward is None
    if ward is None:
        ward = Ward(code=code, name=name)
    ward.name = name
    session.add(ward)
    await session.flush()
    return ward, created


async def upsert_group(
    session: AsyncSession,
    *,
    ward_id: int,
    code: str,
    name: str,
    kind: GroupKind | None,
    target_percent: int | None,
    adults: int | None = None,
) -> tuple[ResidentGroup, str]:
    """Insert or update a group by code; returns it and ``created``/``updated``/``unchanged``.

    Optional columns left empty keep the stored value on re-import.
    """
    group = (await session.exec(select(ResidentGroup).where(col(ResidentGroup.code) == code))).first()
    if group is None:
        group = ResidentGroup(
            ward_id=ward_id,
            code=code,
            name=name,
            kind=kind or GroupKind.TO_DAN_PHO,
            target_percent=80 if target_percent is None else target_percent,
            adults=adults,
        )
        session.add(group)
        await session.flush()
        return group, "created"
    before = (group.ward_id, group.name, group.kind, group.target_percent, group.adults)
    group.ward_id, group.name = ward_id, name
    if kind is not None:
        group.kind = kind
    if target_percent is not None:
        group.target_percent = target_percent
    if adults is not None:
        group.adults = adults
    session.add(group)
    changed = before != (group.ward_id, group.name, group.kind, group.target_percent, group.adults)
    return group, "updated" if changed else "unchanged"


async def set_adults(session: AsyncSession, *, group_id: int, adults: int | None) -> ResidentGroup | None:
    """Set (or, with None, clear) a group's adult population; the group, or None if unknown."""
    group = await session.get(ResidentGroup, group_id)
    if group is None:
        return None
    group.adults = adults
    session.add(group)
    await session.flush()
    return group
