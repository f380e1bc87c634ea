"""The channel accounts registered in the database (``channel_account``): which ward each bot
serves. Keyword-only functions; none commits (the caller owns the transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import ChannelAccount, Identity, Ward


@dataclass(frozen=True)
class Declared:
    """An account as declared by the operator: its key, kind and ward code (None: every ward)."""

    key: str
    kind: str
    ward: str | None


class UnknownWardError(LookupError):
    """A declared account names a ward the database does not have."""

    def __init__(self, key: str, ward: str) -> None:
        super().__init__(f"account {key!r}: no ward with code {ward!r} (import the ward's groups first)")
        self.key, self.ward = key, ward


async def register_accounts(session: AsyncSession, *, declared: Sequence[Declared], now: datetime) -> dict[str, int | None]:
    """Insert the accounts not registered yet, update the kind or ward of those that changed;
    returns each declared key's ward id (None: every ward). Accounts registered before but no
    longer declared stay (their identities and outbox rows keep their key). Processes starting
    at once (web replicas) may register the same account: the insert skips a key already there."""
    codes = {d.ward for d in declared if d.ward is not None}
    wards = dict((await session.exec(select(Ward.code, Ward.id).where(col(Ward.code).in_(codes)))).all()) if codes else {}
    existing = {a.key: a for a in (await session.exec(
        select(ChannelAccount).where(col(ChannelAccount.key).in_([d.key for d in declared])))).all()}
    result: dict[str, int | None] = {}
    for d in declared:
        ward_id = None
        if d.ward is not None:
            if d.ward not in wards:
                raise UnknownWardError(d.key, d.ward)
            ward_id = wards[d.ward]
        row = existing.get(d.key)
        if row is None:
            insert = dialect_insert(session)
            await session.exec(insert(ChannelAccount).values(  # type: ignore[call-overload]
                key=d.key, kind=d.kind, ward_id=ward_id, created_at=now).on_conflict_do_nothing(index_elements=["key"]))
        elif (row.kind, row.ward_id) != (d.kind, ward_id):
            row.kind, row.ward_id = d.kind, ward_id
            session.add(row)
        result[d.key] = ward_id
    await session.flush()
    return result


@dataclass(frozen=True)
class AccountRow:
    key: str
    kind: str
    ward_code: str | None
    identities: int


async def list_accounts(session: AsyncSession) -> list[AccountRow]:
    """Every registered account with its ward's code and its number of identities."""
    counts = (
        select(Identity.channel, func.count().label("n")).group_by(col(Identity.channel)).subquery()
    )
    query = (
        select(ChannelAccount.key, ChannelAccount.kind, Ward.code, func.coalesce(counts.c.n, 0))
        .outerjoin(Ward, col(Ward.id) == ChannelAccount.ward_id)
        .outerjoin(counts, counts.c.channel == ChannelAccount.key)
        .order_by(col(ChannelAccount.key))
    )
    return [AccountRow(*row) for row in (await session.exec(query)).all()]
