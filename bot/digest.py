"""The leaders' weekly digest: every Monday at 08:00 (the ward's time) each leader gets one
message with the progress of the groups they lead — the same numbers as ``/nhom``.

Idempotent: one dedupe key per leader and ISO week (``digest:<person>:<year>-W<week>``),
so the Monday job, a catch-up after a restart and a second run the same week add nothing
twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog
from bot.core.messages import Option
from bot.curriculum import LessonLibrary
from bot.delivery.transport import OutboundMessage
from bot.leading import BEHIND_AFTER, summary_lines
from storage.models import Person, ResidentGroup, Role, RoleKind
from storage.outbox import enqueue, outbox_row
from storage.reach import reachable
from storage.stats import behind_counts, group_stats

DIGEST_WEEKDAY, DIGEST_HOUR = 0, 8  # Monday 08:00
CATCH_UP = timedelta(hours=24)  # after a restart, Monday's digest still goes out until Tuesday 08:00
BUTTONS_MAX = 3  # one button per group led, up to this many; else one to the group menu


def week_of(now: datetime, zone: ZoneInfo) -> str:
    year, week, _ = now.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def digest_due(now: datetime, zone: ZoneInfo) -> bool:
    """Whether ``now`` is within the catch-up window after this week's Monday 08:00."""
    local = now.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).replace(hour=DIGEST_HOUR, minute=0, second=0, microsecond=0)
    return monday <= local < monday + CATCH_UP


async def plan_digests(
    session: AsyncSession, *, now: datetime, zone: ZoneInfo, lessons: LessonLibrary, catalog: Catalog,
) -> int:
    """Queue this week's digest for every leader who can be reached, due now (the sender
    keeps the quiet hours); returns rows added."""
    query = (
        select(Person, ResidentGroup).select_from(Role)
        .join(ResidentGroup, col(ResidentGroup.id) == Role.group_id)
        .join(Person, col(Person.id) == Role.person_id)
        .where(Role.kind == RoleKind.LEADER, col(Person.deleted_at).is_(None), col(Person.consent_at).is_not(None))
        .order_by(col(Role.person_id), col(ResidentGroup.code))
    )
    # The leaders and their groups in one query; every group's numbers below in one pass each.
    groups_of: dict[int, list[ResidentGroup]] = defaultdict(list)
    leaders: dict[int, Person] = {}
    for person, group in (await session.exec(query)).all():
        assert person.id is not None
        leaders[person.id] = person
        groups_of[person.id].append(group)
    if not groups_of:
        return 0
    accounts = await reachable(session, person_ids=list(groups_of))
    ids = [lesson.id for lesson in lessons]
    all_groups = {g.id for groups in groups_of.values() for g in groups}
    since = now - timedelta(days=7)
    programme = lessons.curriculum_at(now, zone)  # "học xong" counts against the curriculum of the day
    stats = {s.group_id: s for s in await group_stats(session, lesson_ids=ids, since=since, group_ids=list(all_groups),  # type: ignore[arg-type]
                                                      curriculum=programme,
                                                      curriculum_before=lessons.curriculum_at(since, zone))}
    behind, leaders_behind = await behind_counts(session, group_ids=sorted(all_groups), lesson_ids=programme,  # type: ignore[arg-type]
                                                 inactive_since=now - BEHIND_AFTER)
    week = week_of(now, zone)
    rows = []
    for person_id, groups in groups_of.items():
        identity, person = accounts.get(person_id), leaders[person_id]
        if identity is None:
            continue
        t = catalog.translator(person.locale)
        parts = [t("digest.head", name=person.display_name or "", date=now.astimezone(zone).strftime("%d/%m/%Y"))]
        for group in groups:
            assert group.id is not None
            parts.append("\n".join([
                t("digest.group", group=group.name),
                *summary_lines(t, stats[group.id], lessons=len(programme)),
                t("digest.behind", count=behind[group.id] - ((group.id, person_id) in leaders_behind)),  # not himself
            ]))
        if len(groups) <= BUTTONS_MAX:
            options = tuple(Option(t("digest.open_group", group=g.name), f"lead:g:{g.id}") for g in groups)
        else:
            options = (Option(t("menu.my_group"), "lead"),)
        message = OutboundMessage(text="\n\n".join(parts), options=options)
        rows.append(outbox_row(kind="digest", identity_id=identity.id, channel=identity.channel,  # type: ignore[arg-type]
                               payload=message.to_payload(), due_at=now, dedupe_key=f"digest:{person_id}:{week}",
                               now=now, group_id=person.group_id))
    return await enqueue(session, rows) if rows else 0
