"""Broadcasts: an audience, a text, a time; queued into the outbox when due.

The stored ``audience`` also carries two things about the message itself (the table has no
column for them): ``ward``, the code of the ward the broadcast comes from and is limited to
(always set by the chat's composer, by ``--ward`` on the command line), and ``learn``: true
when it invites residents to learn, so it carries the "📖 Học tiếp" button. What residents
read is made once, when the broadcast is queued (``message=`` of :func:`queue_broadcast`), and
stored with it: its outbox rows name the broadcast instead of carrying a copy."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Broadcast,
    BroadcastStatus,
    Identity,
    LessonProgress,
    Outbox,
    OutboxStatus,
    Person,
    ProgressStatus,
    ResidentGroup,
    Role,
    RoleKind,
    Ward,
)
from storage.outbox import delivery_reports, enqueue, outbox_row
from storage.reach import most_recent_first, reachable


LEARN = "learn"  # the audience key saying the broadcast invites to learn (see the module)


class AudienceError(ValueError):
    """The audience text names nothing we know; ``str()`` says what is wrong, in Vietnamese."""


@dataclass(frozen=True)
class Recipient:
    person_id: int
    identity_id: int
    channel: str
    group_id: int | None = None  # their group now: the outbox row keeps it for the delivery report


def parse_audience(text: str, *, lesson_ids: set[str]) -> dict[str, Any]:
    """``all`` · ``group:CODE[,CODE…]`` · ``not-completed:LESSON`` · ``leaders[:WARD]`` → the
    stored audience. Any audience may also carry ``ward`` (a ward's code), which limits it to
    that ward's groups: the chat's composer always sets it (and ``learn``, see the module)."""
    kind, _, rest = text.strip().partition(":")
    kind = kind.lower()
    if kind == "all" and not rest:
        return {"kind": "all"}
    if kind == "leaders":
        return {"kind": "leaders", "ward": rest.strip()} if rest.strip() else {"kind": "leaders"}
    if kind == "group" and rest:
        codes = sorted({c.strip() for c in rest.split(",") if c.strip()})
        if codes:
            return {"kind": "groups", "codes": codes}
    if kind == "not-completed" and rest:
        if rest not in lesson_ids:
            raise AudienceError(f"không có bài học '{rest}'")
        return {"kind": "not_completed", "lesson": rest}
    raise AudienceError(
        f"đối tượng '{text}' không hợp lệ: dùng all, group:MÃ_TỔ, not-completed:MÃ_BÀI hoặc leaders[:MÃ_PHƯỜNG]"
    )


async def check_groups_exist(session: AsyncSession, *, audience: dict[str, Any]) -> None:
    """The groups (and the ward) an audience names exist; a group lies in the audience's ward."""
    ward_id = None
    if audience.get("ward"):
        ward_id = (await session.exec(select(Ward.id).where(Ward.code == audience["ward"]))).first()
        if ward_id is None:
            raise AudienceError(f"không có phường {audience['ward']}")
    if audience.get("kind") != "groups":
        return
    query = select(ResidentGroup.code).where(col(ResidentGroup.code).in_(audience["codes"]))
    if ward_id is not None:
        query = query.where(ResidentGroup.ward_id == ward_id)
    known = set((await session.exec(query)).all())
    unknown = [c for c in audience["codes"] if c not in known]
    if unknown:
        raise AudienceError("không có tổ " + ", ".join(unknown))


def _audience_people(audience: dict[str, Any]) -> Select:  # type: ignore[type-arg]
    """The ids of the consenting, not deleted people of an audience, as a query (never a list)."""
    people = select(Person.id).where(col(Person.deleted_at).is_(None), col(Person.consent_at).is_not(None))
    kind = audience.get("kind")
    if kind == "groups":
        groups = select(ResidentGroup.id).where(col(ResidentGroup.code).in_(audience["codes"]))
        people = people.where(col(Person.group_id).in_(groups))
    elif kind == "not_completed":
        done = select(LessonProgress.person_id).where(
            LessonProgress.lesson_id == audience["lesson"], LessonProgress.status == ProgressStatus.COMPLETED
        )
        people = people.where(col(Person.id).not_in(done))
    elif kind == "leaders":
        leaders = select(Role.person_id).where(Role.kind == RoleKind.LEADER)
        if audience.get("ward"):
            # Leaders of the ward's groups, whichever group they live in themselves.
            leaders = leaders.where(col(Role.group_id).in_(_ward_groups(audience["ward"])))
        people = people.where(col(Person.id).in_(leaders))
    elif kind != "all":
        raise AudienceError(f"đối tượng '{kind}' chưa hỗ trợ")
    if audience.get("ward") and kind != "leaders":
        people = people.where(col(Person.group_id).in_(_ward_groups(audience["ward"])))
    return people


async def recipients(session: AsyncSession, *, audience: dict[str, Any]) -> list[Recipient]:
    """Consenting, not deleted people of the audience, each through one reachable identity
    (the one they used most recently), so a person on two channels gets the news once."""
    people = _audience_people(audience)
    accounts = await reachable(session, person_ids=people)
    # A join, not IN: the audience query selects from Person too, and would be correlated.
    chosen = people.subquery()
    groups = dict((await session.exec(
        select(Person.id, Person.group_id).join(chosen, chosen.c.id == Person.id)
    )).all())
    return [Recipient(p, i.id, i.channel, groups.get(p))  # type: ignore[arg-type]
            for p, i in sorted(accounts.items())]


async def recipients_by_channel(session: AsyncSession, *, audience: dict[str, Any]) -> dict[str, int]:
    """How many people :func:`recipients` would list now, by the channel of the account each
    is reached through (the same audience query, the same "unblocked account used most
    recently" choice), in one SQL aggregate: what the composer's time estimate needs."""
    rank = func.row_number().over(partition_by=Identity.person_id, order_by=most_recent_first())
    accounts = (
        select(Identity.channel, rank.label("rank"))
        .where(col(Identity.person_id).in_(_audience_people(audience)), col(Identity.blocked_at).is_(None))
        .subquery()
    )
    query = select(accounts.c.channel, func.count()).where(accounts.c.rank == 1).group_by(accounts.c.channel)
    return {channel: int(count) for channel, count in (await session.exec(query)).all()}  # type: ignore[call-overload]


async def count_recipients(session: AsyncSession, *, audience: dict[str, Any]) -> int:
    """How many people :func:`recipients` would list now (:func:`recipients_by_channel`, all
    channels together): a scheduled broadcast's number."""
    return sum((await recipients_by_channel(session, audience=audience)).values())


def _ward_groups(ward_code: str):  # type: ignore[no-untyped-def]
    return select(ResidentGroup.id).join(Ward, col(Ward.id) == ResidentGroup.ward_id).where(Ward.code == ward_code)


def invites_to_learn(broadcast: Broadcast) -> bool:
    """Whether the broadcast carries the "📖 Học tiếp" button."""
    return broadcast.audience.get(LEARN) is True


async def sender_ward(session: AsyncSession, *, broadcast: Broadcast) -> Ward | None:
    """The ward a broadcast comes from: the one its audience names; else, when the database
    has exactly one ward, that one (a command-line broadcast of a one-ward deployment); else
    None — it comes from the programme, to residents of several wards."""
    code = broadcast.audience.get("ward")
    if code:
        return (await session.exec(select(Ward).where(Ward.code == code))).first()
    wards = (await session.exec(select(Ward).limit(2))).all()
    return wards[0] if len(wards) == 1 else None


async def create_broadcast(
    session: AsyncSession,
    *,
    author: str,
    text: str,
    audience: dict[str, Any],
    scheduled_at: datetime,
    now: datetime,
    image: str | None = None,
) -> Broadcast:
    broadcast = Broadcast(
        author=author, text=text, image=image, audience=audience, scheduled_at=scheduled_at, created_at=now
    )
    session.add(broadcast)
    await session.flush()
    return broadcast


async def due_broadcasts(session: AsyncSession, *, now: datetime) -> Sequence[Broadcast]:
    """Scheduled broadcasts whose time has come, locked for this transaction on PostgreSQL
    (``SKIP LOCKED``: two ticks take different ones). SQLite ignores the lock, so queueing
    (:func:`queue_broadcast`) checks the status again as it writes."""
    query = select(Broadcast).where(
        Broadcast.status == BroadcastStatus.SCHEDULED, col(Broadcast.scheduled_at) <= now
    ).order_by(col(Broadcast.scheduled_at))
    return (await session.exec(query.with_for_update(skip_locked=True))).all()


async def queue_broadcast(
    session: AsyncSession,
    *,
    broadcast_id: int,
    now: datetime,
    message: Callable[[Broadcast, Ward | None], dict[str, Any]],
) -> int | None:
    """Turn a due broadcast into one outbox row per recipient, due at its scheduled time (the
    sender keeps the quiet hours). ``message`` makes what residents read from the broadcast
    and the ward it comes from (:func:`sender_ward`; ``bot.broadcasting`` says how): it is
    stored once, as ``broadcast.message``, and the rows carry an empty payload and the
    broadcast's id (the sender reads the message through :func:`broadcast_message`).
    The move from ``scheduled`` to ``queued`` is a guarded UPDATE: if the broadcast is no
    longer scheduled (cancelled, or queued by another tick meanwhile) nothing is inserted and
    None is returned; else the number of recipients.
    The rows' dedupe key (broadcast and person) keeps a repeat from adding any twice."""
    moved = await session.exec(  # type: ignore[call-overload]
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status == BroadcastStatus.SCHEDULED)
        .values(status=BroadcastStatus.QUEUED.value, queued_at=now)
    )
    if not moved.rowcount:
        return None
    broadcast = (await session.exec(
        select(Broadcast).where(Broadcast.id == broadcast_id).execution_options(populate_existing=True)
    )).one()
    broadcast.message = message(broadcast, await sender_ward(session, broadcast=broadcast))
    people = await recipients(session, audience=broadcast.audience)
    due_at = broadcast.scheduled_at or now
    rows = [
        outbox_row(
            kind="broadcast", identity_id=r.identity_id, channel=r.channel, payload={}, due_at=due_at,
            dedupe_key=f"broadcast:{broadcast_id}:{r.person_id}", now=now, broadcast_id=broadcast_id,
            group_id=r.group_id,
        )
        for r in people
    ]
    await enqueue(session, rows)
    broadcast.recipients = len(people)
    session.add(broadcast)
    return len(people)


async def broadcast_message(session: AsyncSession, *, broadcast_id: int) -> dict[str, Any] | None:
    """What a queued broadcast's recipients read (``OutboundMessage.to_payload()``); None if
    the broadcast is unknown or was queued before its message was stored (its rows carry it)."""
    return (await session.exec(select(Broadcast.message).where(Broadcast.id == broadcast_id))).first()


async def cancel_broadcast(session: AsyncSession, *, broadcast_id: int) -> bool:
    """Cancel a scheduled broadcast, or what is still pending of a queued one. A guarded
    UPDATE (only from ``scheduled`` or ``queued``): a tick queueing it at the same moment
    either finds it cancelled and queues nothing, or has queued it and its pending rows are
    cancelled here. False if there was nothing to cancel."""
    moved = await session.exec(  # type: ignore[call-overload]
        update(Broadcast)
        .where(Broadcast.id == broadcast_id,
               col(Broadcast.status).in_([BroadcastStatus.SCHEDULED.value, BroadcastStatus.QUEUED.value]))
        .values(status=BroadcastStatus.CANCELLED.value)
    )
    if not moved.rowcount:
        return False
    await session.exec(  # type: ignore[call-overload]
        update(Outbox)
        .where(Outbox.broadcast_id == broadcast_id, Outbox.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.CANCELLED.value)
    )
    return True


# -- what the admin reads about broadcasts sent --------------------------------------------

@dataclass(frozen=True)
class Progress:
    """A broadcast's outbox rows by outcome, and when the first and the last was sent."""

    sent: int = 0
    failed: int = 0
    blocked: int = 0
    pending: int = 0  # waiting or being sent now
    cancelled: int = 0
    first_sent_at: datetime | None = None
    last_sent_at: datetime | None = None

    @property
    def rows(self) -> int:
        return self.sent + self.failed + self.blocked + self.pending + self.cancelled


async def delivery_progress(session: AsyncSession, *, broadcast_ids: Collection[int]) -> dict[int, Progress]:
    """:class:`Progress` of each broadcast named (a page of broadcasts: a few ids), from the
    same outcomes as the delivery report (``storage.outbox.delivery_reports``)."""
    reports = await delivery_reports(session, broadcast_ids=broadcast_ids)
    return {
        b: Progress(sent=r.totals.get("sent", 0), failed=r.totals.get("failed", 0),
                    blocked=r.totals.get("blocked", 0), pending=r.totals.get("pending", 0),
                    cancelled=r.totals.get("cancelled", 0), first_sent_at=r.first_sent_at,
                    last_sent_at=r.last_sent_at)
        for b, r in reports.items()
    }


async def group_names(session: AsyncSession, *, codes: Collection[str]) -> dict[str, str]:
    """Group code → name for the codes broadcasts' audiences name (one query)."""
    if not codes:
        return {}
    query = select(ResidentGroup.code, ResidentGroup.name).where(col(ResidentGroup.code).in_(sorted(set(codes))))
    return dict((await session.exec(query)).all())  # type: ignore[arg-type]


async def ward_broadcasts(session: AsyncSession, *, ward_code: str, limit: int) -> list[Broadcast]:
    """The ward's latest broadcasts (made in the chat, or on the command line with ``--ward``),
    newest first, among the latest 200 of all wards."""
    latest = (await session.exec(select(Broadcast).order_by(col(Broadcast.id).desc()).limit(200))).all()
    return [b for b in latest if b.audience.get("ward") == ward_code][:limit]


async def images_in_use(session: AsyncSession, *, paths: Collection[str]) -> set[str]:
    """Which of ``paths`` (photo files) a broadcast carries as its image (one query)."""
    if not paths:
        return set()
    query = select(Broadcast.image).where(col(Broadcast.image).in_(sorted(set(paths))))
    return {image for image in (await session.exec(query)).all() if image is not None}
