"""The outbox: messages to send without being asked, claimed with a lease, marked once.

Every claim increments the row's ``claim`` counter (a fencing token) and hands it to the
claimer. Every outcome is a single-row UPDATE guarded by ``status = 'sending'`` **and** that
token, so only the holder of the latest claim can finish a row: a sender whose lease ran
out while another sender re-claimed the row changes nothing with its late outcome.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Subquery, and_, bindparam, case, delete, func, or_, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import BroadcastOutcome, Identity, Outbox, OutboxStatus, ResidentGroup
from storage.planner import fixed
from storage.types import UTCDateTime

INSERT_CHUNK = 1000


@dataclass(frozen=True)
class Claimed:
    """A row a sender holds: what to send, to whom, and the token that lets it finish the row."""

    id: int
    identity_id: int
    external_id: str
    last_seen_at: datetime | None
    kind: str
    payload: dict[str, Any]
    attempts: int
    ref: str | None = None  # what the message is about (``help_request:<id>``), re-checked before sending
    claim: int = 0  # the fencing token of this claim: pass it to every outcome
    # The broadcast it belongs to: with an empty payload, the message is the broadcast's.
    broadcast_id: int | None = None


def outbox_row(
    *,
    kind: str,
    identity_id: int,
    channel: str,
    payload: dict[str, Any],
    due_at: datetime,
    dedupe_key: str,
    now: datetime,
    broadcast_id: int | None = None,
    about_person_id: int | None = None,
    ref: str | None = None,
    group_id: int | None = None,
) -> dict[str, Any]:
    """One row for :func:`enqueue`. ``about_person_id``: the person whose name or words the
    message carries when that is not the recipient (erased with them); ``ref``: what the
    message is about, for a check just before it is sent; ``group_id``: the recipient's group
    now, which delivery reports count the row by (it outlives the recipient's erasure)."""
    return {
        "kind": kind,
        "identity_id": identity_id,
        "channel": channel,
        "payload": payload,
        "due_at": due_at,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "dedupe_key": dedupe_key,
        "broadcast_id": broadcast_id,
        "about_person_id": about_person_id,
        "ref": ref,
        "group_id": group_id,
        "created_at": now,
    }


async def enqueue(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows, skipping any whose ``dedupe_key`` exists: producers are idempotent."""
    rows = list(rows)
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    if not rows:
        return 0
    # One statement compiled once and run for every row ("executemany": SQLAlchemy sends them
    # as multi-row INSERTs of a bounded size); RETURNING counts the rows that were new.
    statement = insert(Outbox).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Outbox.id)
    connection = await session.connection()  # the session's transaction
    inserted = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        result = await connection.execute(statement, rows[start : start + INSERT_CHUNK])
        inserted += len(result.all())
    return inserted


def _claimable(*, channel: str, now: datetime, exclude: Collection[int], kinds: Collection[str] | None,
               expired: bool) -> Any:
    """The ids of the rows :func:`claim_due` may take, in the claim index's order: pending and
    due, or (``expired``) sending with an expired lease. Two queries, never one with an OR: each
    reads ``ix_outbox_claim (channel, status, due_at)`` in order and stops at its limit, where the
    OR made PostgreSQL read and sort every due row (90,000 rows: 38 ms a claim)."""
    if expired:
        state = and_(Outbox.status == OutboxStatus.SENDING, col(Outbox.lease_until) < now)
    else:
        state = and_(Outbox.status == OutboxStatus.PENDING, Outbox.due_at <= now)
    # A row without a recipient (erased) has nobody to go to: never claimed.
    due = select(Outbox.id).where(Outbox.channel == channel, state, col(Outbox.identity_id).is_not(None))
    if exclude:
        due = due.where(col(Outbox.id).not_in(list(exclude)))
    if kinds is not None:  # in the quiet hours, only these
        due = due.where(col(Outbox.kind).in_(list(kinds)))
    return due.order_by(col(Outbox.due_at), col(Outbox.id))


async def any_due(session: AsyncSession, *, channel: str, now: datetime, exclude: Collection[int] = (),
                  kinds: Collection[str] | None = None) -> bool:
    """Whether :func:`claim_due` would find a row: a read, for an idle sender to look before it
    takes the write lock (on SQLite an UPDATE takes it even when it matches nothing). Call it in
    a session of its own: a SQLite transaction that reads, then writes after another writer
    committed, fails at once."""
    for expired in (False, True):
        probe = _claimable(channel=channel, now=now, exclude=exclude, kinds=kinds, expired=expired).limit(fixed(1))
        if (await session.exec(probe)).first() is not None:
            return True
    return False


async def claim_due(
    session: AsyncSession,
    *,
    channel: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    exclude: Collection[int] = (),
    kinds: Collection[str] | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due rows of a channel: pending and due, or sending with an
    expired lease (a sender died holding them). Each claimed row's ``claim`` goes up by one
    and is returned: only that token can finish the row. ``exclude`` names rows the caller
    still holds (bounded by its batch size), so it never re-claims, and thereby fences out,
    its own work; ``kinds``, when given, the only kinds to claim. ``SKIP LOCKED`` lets several senders claim on PostgreSQL without waiting
    for each other; SQLite serialises writers instead."""
    rows: list[Any] = []
    for expired in (True, False):  # a dead sender's rows first: they were due earliest
        room = limit - len(rows)
        if room <= 0:
            break
        due = (_claimable(channel=channel, now=now, exclude=exclude, kinds=kinds, expired=expired)
               .limit(fixed(room))  # storage.planner: never a generic plan's guess
               .with_for_update(skip_locked=True))
        statement = (
            update(Outbox)
            .where(col(Outbox.id).in_(due.scalar_subquery()))
            .values(status=OutboxStatus.SENDING.value, lease_until=lease_until, claim=Outbox.claim + 1)
            .returning(Outbox.id, Outbox.identity_id, Outbox.kind, Outbox.payload, Outbox.attempts, Outbox.ref,
                       Outbox.claim, Outbox.broadcast_id)
        )
        rows += (await session.exec(statement)).all()  # type: ignore[call-overload]
    if not rows:
        return []
    identities = {
        i.id: i
        for i in (
            await session.exec(select(Identity).where(col(Identity.id).in_([r.identity_id for r in rows])))
        ).all()
    }
    claimed = [
        Claimed(r.id, r.identity_id, identities[r.identity_id].external_id,
                identities[r.identity_id].last_seen_at, r.kind, r.payload, r.attempts, r.ref, r.claim,
                r.broadcast_id)
        for r in rows
        if r.identity_id in identities
    ]
    return sorted(claimed, key=lambda c: c.id)


async def _finish(session: AsyncSession, outbox_id: int, claim: int, **values: Any) -> bool:
    """Apply an outcome if ``claim`` is still the row's latest claim; False if it is not."""
    statement = (
        update(Outbox)
        .where(Outbox.id == outbox_id, Outbox.status == OutboxStatus.SENDING, Outbox.claim == claim)
        .values(lease_until=None, **values)
    )
    result = await session.exec(statement)  # type: ignore[call-overload]
    return bool(result.rowcount)


async def mark_sent(session: AsyncSession, *, outbox_id: int, claim: int, now: datetime) -> bool:
    return await _finish(session, outbox_id, claim, status=OutboxStatus.SENT.value, sent_at=now, last_error=None)


# ``mark_sent`` for many rows at once: one statement, run for each row (executemany).
_SENT = (
    update(Outbox)
    .where(Outbox.id == bindparam("row_id"), Outbox.status == OutboxStatus.SENDING, Outbox.claim == bindparam("row_claim"))
    .values(status=OutboxStatus.SENT.value, sent_at=bindparam("row_sent_at", type_=UTCDateTime), lease_until=None,
            last_error=None)
)


async def mark_sent_many(session: AsyncSession, *, rows: Sequence[tuple[int, int, datetime]]) -> None:
    """:func:`mark_sent` of each (id, claim token, sent at): a sender's outcomes stored
    together. A row whose claim is no longer the latest is left alone, as by ``mark_sent``."""
    connection = await session.connection()  # the session's transaction; Core, not the ORM's bulk update
    await connection.execute(_SENT, [{"row_id": i, "row_claim": c, "row_sent_at": at} for i, c, at in rows])


async def mark_failed(session: AsyncSession, *, outbox_id: int, claim: int, reason: str) -> bool:
    return await _finish(session, outbox_id, claim, status=OutboxStatus.FAILED.value, last_error=reason[:300])


async def mark_cancelled(session: AsyncSession, *, outbox_id: int, claim: int, reason: str) -> bool:
    """Not sent on purpose (a check just before sending said why)."""
    return await _finish(session, outbox_id, claim, status=OutboxStatus.CANCELLED.value, last_error=reason[:300])


async def mark_blocked(
    session: AsyncSession, *, outbox_id: int, claim: int, identity_id: int, now: datetime, reason: str
) -> bool:
    """The user blocked the bot: flag the identity and stop everything queued for it.
    Nothing changes unless ``claim`` still holds the row."""
    if not await _finish(session, outbox_id, claim, status=OutboxStatus.BLOCKED.value, last_error=reason[:300]):
        return False
    await session.exec(  # type: ignore[call-overload]
        update(Identity).where(Identity.id == identity_id, col(Identity.blocked_at).is_(None)).values(blocked_at=now)
    )
    await session.exec(  # type: ignore[call-overload]
        update(Outbox)
        .where(Outbox.identity_id == identity_id, Outbox.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.BLOCKED.value, last_error="người dùng đã chặn bot")
    )
    return True


async def requeue(session: AsyncSession, *, outbox_id: int, claim: int, due_at: datetime) -> bool:
    """Back to pending without counting an attempt (rate limited, or never tried)."""
    return await _finish(session, outbox_id, claim, status=OutboxStatus.PENDING.value, due_at=due_at)


async def retry_later(session: AsyncSession, *, outbox_id: int, claim: int, due_at: datetime, reason: str) -> bool:
    """A transient failure: count the attempt and try again at ``due_at``."""
    return await _finish(
        session, outbox_id, claim, status=OutboxStatus.PENDING.value, due_at=due_at,
        attempts=Outbox.attempts + 1, last_error=reason[:300],
    )


async def unblock(session: AsyncSession, *, identity_id: int) -> None:
    """The user wrote again (or unblocked the bot): proactive messages may reach them again."""
    await session.exec(  # type: ignore[call-overload]
        update(Identity).where(Identity.id == identity_id).values(blocked_at=None)
    )


@dataclass
class DeliveryReport:
    """A broadcast's outcomes by bucket (:data:`REPORT_STATUSES`, and ``cancelled`` when there
    are any), overall and per group label; when its first and last message was sent."""

    totals: dict[str, int]
    by_group: dict[str, dict[str, int]]
    first_sent_at: datetime | None = None
    last_sent_at: datetime | None = None

    @property
    def total(self) -> int:
        return sum(self.totals.values())


REPORT_STATUSES = ("sent", "blocked", "failed", "pending")


def _bucket(status: str) -> str:
    return "pending" if status in (OutboxStatus.PENDING, OutboxStatus.SENDING) else status


def group_label(name: str | None, code: str | None) -> str:
    """How a delivery report names a group: "Tên tổ (MÃ)"; "" for rows of no group."""
    return f"{name} ({code})" if code else ""


def outcomes(broadcast_ids: Collection[int]) -> Subquery:
    """Every outcome of the broadcasts named — the one definition every delivery report reads:
    their outbox rows, grouped by the group they were queued for and status, and what the
    retention kept of the rows it deleted (:class:`BroadcastOutcome`, see
    :func:`prune_finished`). Columns ``broadcast_id, group_id, status, rows, first_sent_at,
    last_sent_at``; a (broadcast, group, status) may come twice, so readers sum."""
    ids = list(broadcast_ids)
    live = (
        select(Outbox.broadcast_id, Outbox.group_id, Outbox.status, func.count().label("rows"),
               func.min(Outbox.sent_at).label("first_sent_at"), func.max(Outbox.sent_at).label("last_sent_at"))
        .where(col(Outbox.broadcast_id).in_(ids))
        .group_by(col(Outbox.broadcast_id), col(Outbox.group_id), col(Outbox.status))
    )
    kept = select(
        BroadcastOutcome.broadcast_id, func.nullif(BroadcastOutcome.group_id, NO_GROUP), BroadcastOutcome.status,
        BroadcastOutcome.rows, BroadcastOutcome.first_sent_at, BroadcastOutcome.last_sent_at,
    ).where(col(BroadcastOutcome.broadcast_id).in_(ids))
    return union_all(live, kept).subquery("outcomes")


async def delivery_reports(
    session: AsyncSession, *, broadcast_ids: Collection[int], ward_id: int | None = None
) -> dict[int, DeliveryReport]:
    """:class:`DeliveryReport` of each broadcast named that has any outcome, in one query over
    :func:`outcomes`. Rows count by the group they were queued for, never through the
    recipient, so the outcome of someone who erased their data since stays counted,
    anonymously; "pending" includes rows being sent right now. ``ward_id``: only what was
    queued for that ward's groups (the ward's own share of a broadcast)."""
    if not broadcast_ids:
        return {}
    o = outcomes(broadcast_ids)
    query = select(o.c.broadcast_id, ResidentGroup.name, ResidentGroup.code, o.c.status, func.sum(o.c.rows),
                   func.min(o.c.first_sent_at), func.max(o.c.last_sent_at)).select_from(o)
    if ward_id is None:
        query = query.outerjoin(ResidentGroup, col(ResidentGroup.id) == o.c.group_id)
    else:
        query = query.join(ResidentGroup, col(ResidentGroup.id) == o.c.group_id).where(
            ResidentGroup.ward_id == ward_id)
    query = query.group_by(o.c.broadcast_id, col(ResidentGroup.name), col(ResidentGroup.code), o.c.status)
    reports: dict[int, DeliveryReport] = {}
    for broadcast_id, name, code, status, count, first, last in (await session.exec(query)).all():  # type: ignore[call-overload]
        report = reports.setdefault(broadcast_id, DeliveryReport(dict.fromkeys(REPORT_STATUSES, 0), {}))
        bucket, count = _bucket(status), int(count)
        report.totals[bucket] = report.totals.get(bucket, 0) + count
        row = report.by_group.setdefault(group_label(name, code), dict.fromkeys(REPORT_STATUSES, 0))
        row[bucket] = row.get(bucket, 0) + count
        if status == OutboxStatus.SENT and first is not None:
            report.first_sent_at = min(first, report.first_sent_at or first)
            report.last_sent_at = max(last, report.last_sent_at or last)
    for report in reports.values():
        report.by_group = dict(sorted(report.by_group.items()))
    return reports


async def delivery_report(session: AsyncSession, *, broadcast_id: int) -> DeliveryReport:
    """Sent / blocked / failed / pending (and cancelled), overall and per residential group
    (:func:`delivery_reports` of one broadcast)."""
    reports = await delivery_reports(session, broadcast_ids=[broadcast_id])
    return reports.get(broadcast_id) or DeliveryReport(dict.fromkeys(REPORT_STATUSES, 0), {})


async def rows_of(session: AsyncSession, *, kind: str | None = None) -> Sequence[Outbox]:
    query = select(Outbox).order_by(col(Outbox.id))
    if kind is not None:
        query = query.where(Outbox.kind == kind)
    return (await session.exec(query)).all()


FINISHED = (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.BLOCKED, OutboxStatus.CANCELLED)
NO_GROUP = 0  # BroadcastOutcome.group_id of rows queued for no group
# Producers look back at what they queued to send nothing twice, at most a week back (the
# leaders' weekly digest; a nudge every 3 days): rows are kept at least this long, whatever
# the retention says.
KEEP_AT_LEAST = timedelta(days=8)


async def prune_finished(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` finished rows (sent, failed, blocked, cancelled) that were due,
    and if sent were sent, before ``before``, oldest first. A broadcast's rows are first added
    to what is kept of its outcomes (:class:`BroadcastOutcome`: rows, first and last sending
    time per group and status), in the same transaction, so its delivery reports read the
    same numbers before and after. Returns how many rows were deleted; call again (in a new
    transaction) while it returns ``limit``. The ids are read first and named in both
    statements (at most ``limit`` of them): a row that finished in between is left for the
    next call, never deleted uncounted."""
    old = (
        select(Outbox.id)
        .where(
            col(Outbox.status).in_([s.value for s in FINISHED]),
            col(Outbox.due_at) < before,
            or_(col(Outbox.sent_at).is_(None), col(Outbox.sent_at) < before),
        )
        .order_by(col(Outbox.id))
        .limit(fixed(limit))  # storage.planner: never a generic plan's guess
    )
    ids = list((await session.exec(old)).all())
    if not ids:
        return 0
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    counted = (
        select(Outbox.broadcast_id, func.coalesce(Outbox.group_id, NO_GROUP), Outbox.status, func.count(),
               func.min(Outbox.sent_at), func.max(Outbox.sent_at))
        .where(col(Outbox.id).in_(ids), col(Outbox.broadcast_id).is_not(None))
        .group_by(col(Outbox.broadcast_id), col(Outbox.group_id), col(Outbox.status))
    )
    statement = insert(BroadcastOutcome).from_select(
        ["broadcast_id", "group_id", "status", "rows", "first_sent_at", "last_sent_at"], counted)
    new, kept = statement.excluded, BroadcastOutcome
    statement = statement.on_conflict_do_update(
        index_elements=["broadcast_id", "group_id", "status"],
        set_={
            "rows": col(kept.rows) + new.rows,
            "first_sent_at": case((or_(col(kept.first_sent_at).is_(None), new.first_sent_at < kept.first_sent_at),
                                   new.first_sent_at), else_=kept.first_sent_at),
            "last_sent_at": case((or_(col(kept.last_sent_at).is_(None), new.last_sent_at > kept.last_sent_at),
                                  new.last_sent_at), else_=kept.last_sent_at),
        },
    )
    await session.exec(statement)  # type: ignore[call-overload]
    result = await session.exec(delete(Outbox).where(col(Outbox.id).in_(ids)))  # type: ignore[call-overload]
    return max(result.rowcount or 0, 0)
