"""Report-deadline reminders: N days before each report is due, every ward admin is told in
the chat which report, by when, with the period's documents attached.

The deadlines are a setting (``REPORT_DEADLINES``, "05/11=year,05/05=6m": the annual report is
due 05/11, the half-year one 05/05), and so is N (``REPORT_REMIND_DAYS``). The job runs every
day at ``REMIND_HOUR`` in the ward's time (``TIMEZONE``) and the tick catches it up after a
restart later that day; each admin gets one message per deadline (the dedupe key names the
ward, the report, the due date and the person), so a second run queues nothing. The message
goes through the outbox like every proactive message: the sender keeps the quiet hours.

Documents are made per ward only when one of its admins still needs the message: the numbers
read in a short transaction, the files drawn in a thread (never on the event loop or inside a
transaction), written under the files folder with names nobody can guess, and their paths put
in the outbox payload (``OutboundMessage.documents``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog
from bot.core.messages import Option
from bot.curriculum import LessonLibrary
from bot.delivery.transport import OutboundMessage
from bot.reports.period import Span, report_period
from storage.db import SessionFactory
from storage.models import Outbox, Person, Role, RoleKind, Ward
from storage.outbox import enqueue, outbox_row
from storage.reach import reachable

if TYPE_CHECKING:  # the report modules (XlsxWriter, matplotlib) load only when a reminder is due
    from bot.reports.exports import ReportFiles

log = logging.getLogger(__name__)

REMIND_HOUR = 8  # local: the morning, after the quiet hours, as the leaders' digest
KIND = "deadline"  # the outbox kind of these messages
SPANS = {"year": Span.YEAR, "6m": Span.HALF_YEAR}


@dataclass(frozen=True)
class Deadline:
    """A report due every year on ``day``/``month``, covering ``span``."""

    day: int
    month: int
    span: Span

    def next_due(self, today: date) -> date:
        """The first due date on or after ``today``."""
        due = _on(today.year, self.month, self.day)
        return due if due >= today else _on(today.year + 1, self.month, self.day)


def _on(year: int, month: int, day: int) -> date:
    # 29/02 in a year without it: the 28th.
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, day - 1)


def parse_deadlines(text: str) -> list[Deadline]:
    """``"05/11=year,05/05=6m"`` → deadlines; ValueError naming what is wrong."""
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        when, _, kind = part.partition("=")
        day, _, month = when.strip().partition("/")
        span = SPANS.get(kind.strip().lower())
        if span is None or not (day.isdigit() and month.isdigit()):
            raise ValueError(f"expected DD/MM=year or DD/MM=6m, got {part!r}")
        _on(2024, int(month), int(day))  # a leap year: any real day of the year parses
        found.append(Deadline(int(day), int(month), span))
    return found


def due_today(now: datetime, *, zone: ZoneInfo, deadlines: list[Deadline], days: int) -> list[tuple[Deadline, date]]:
    """The deadlines whose reminder day is today (local) and whose hour has come, with their due date."""
    local = now.astimezone(zone)
    if local.hour < REMIND_HOUR:
        return []
    today = local.date()
    return [(d, today + timedelta(days=days)) for d in deadlines if d.next_due(today) == today + timedelta(days=days)]


@dataclass(frozen=True)
class Admin:
    person: Person
    identity_id: int
    channel: str
    dedupe_key: str


async def admins_to_tell(session: AsyncSession, *, deadline: Deadline, due: date) -> list[tuple[Ward, list[Admin]]]:
    """Per ward, its admins (role ``admin`` of that ward, not erased, reachable) not yet told
    of this deadline. Admins are a handful per ward: their ids are bound as a short list."""
    query = (select(Role, Person, Ward).join(Person, col(Person.id) == Role.person_id)
             .join(Ward, col(Ward.id) == Role.ward_id)
             .where(Role.kind == RoleKind.ADMIN, col(Person.deleted_at).is_(None)).order_by(col(Ward.code)))
    found = (await session.exec(query)).all()
    accounts = await reachable(session, person_ids=[p.id for _, p, _ in found if p.id is not None])
    keys = {(w.id, p.id): f"deadline:{w.id}:{deadline.span.value}:{due.isoformat()}:{p.id}" for _, p, w in found}
    told = set((await session.exec(select(Outbox.dedupe_key).where(col(Outbox.dedupe_key).in_(list(keys.values()))))).all())
    wards: dict[int | None, tuple[Ward, list[Admin]]] = {}
    for _, person, ward in found:
        identity = accounts.get(person.id) if person.id is not None else None
        key = keys[(ward.id, person.id)]
        if identity is None or identity.id is None or key in told:
            continue
        wards.setdefault(ward.id, (ward, []))[1].append(Admin(person, identity.id, identity.channel, key))
    return list(wards.values())


def period_documents(made: ReportFiles) -> list[tuple[str, bytes]]:
    """The files a deadline reminder carries, (suffix, bytes): the period's report document, its
    workbook, the thi đua annex and the charts — the very files the chat and the CLI give for
    the same period (``bot.reports.exports``)."""
    return [(".docx", made.report), (".xlsx", made.workbook), (".docx", made.annex),
            *[(".png", png) for png in made.charts.values()]]


def write_documents(folder: Path, *, prefix: str, files: list[tuple[str, bytes]], now: datetime) -> list[str]:
    """Write the files under ``folder`` with names nobody can guess, stamped with ``now`` (the
    files folder keeps a day of files on that clock)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, data in files:
        path = folder / f"{prefix}-{secrets.token_urlsafe(9)}{suffix}"
        path.write_bytes(data)
        os.utime(path, (now.timestamp(), now.timestamp()))
        paths.append(str(path))
    return paths


async def remind_deadlines(*, sessions: SessionFactory, now: datetime, zone: ZoneInfo, catalog: Catalog,
                           lessons: LessonLibrary, deadlines: list[Deadline], days: int, files_dir: Path,
                           signer: tuple[str, str] = ("CHỦ TỊCH", "")) -> int:
    """Queue today's deadline reminders (see the module); returns how many were queued."""
    from bot.reports.docx import Signer
    from bot.reports.exports import build_report

    queued = 0
    for deadline, due in due_today(now, zone=zone, deadlines=deadlines, days=days):
        async with sessions() as session:
            wards = await admins_to_tell(session, deadline=deadline, due=due)
        period = report_period(span=deadline.span, first=None, last=None, now=now, zone=zone)
        for ward, admins in wards:
            assert ward.id is not None
            made = await build_report(sessions, ward_id=ward.id, lessons=lessons, start=period.start, end=period.end,
                                      zone=zone, span=deadline.span.value, now=now, signer=Signer(*signer))
            files = period_documents(made)
            paths = await asyncio.to_thread(write_documents, files_dir / "out", prefix=f"bao-cao-{ward.code}",
                                            files=files, now=now)
            rows = []
            for admin in admins:
                t = catalog.translator(admin.person.locale)
                report = t("deadlines.report_year" if deadline.span == Span.YEAR else "deadlines.report_half")
                message = OutboundMessage(
                    text=t("deadlines.message", name=admin.person.display_name or "", report=report, ward=ward.name,
                           due=f"{due:%d/%m/%Y}", days=days,
                           start=period.start.astimezone(zone).strftime("%d/%m/%Y") if period.start else "—",
                           end=period.end.astimezone(zone).strftime("%d/%m/%Y")),
                    options=(Option(t("deadlines.open_admin"), f"adm:w:{ward.id}"),),
                    documents=tuple(paths),
                )
                rows.append(outbox_row(kind=KIND, identity_id=admin.identity_id, channel=admin.channel,
                                       payload=message.to_payload(), due_at=now, dedupe_key=admin.dedupe_key,
                                       now=now))
            async with sessions() as session, session.begin():
                queued += await enqueue(session, rows)
    if queued:
        log.info("queued %s report-deadline reminders", queued)
    return queued
