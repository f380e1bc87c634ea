"""Help from a person: who answers a resident's question, how it is forwarded, and the check
the outbox sender runs just before a forwarded question goes out.

- **Who answers** (:func:`route`): the leaders of the resident's group who can be reached
  (an account that has not blocked the bot); else the ward's admins who can; else nobody
  yet. The resident is told which *before* typing the question; the question is stored
  whatever the answer (``help_request.routed_to``), and open questions stay on the group's
  dashboard for any leader, appointed now or later.
- **Forwarding** (:func:`forward`): one outbox row (kind ``help``) per helper, due now (the
  sender applies the quiet hours), ``ref`` = ``help_request:<id>``, ``about_person_id`` =
  the asker (the row carries their name and words: erased with them), dedupe key
  ``help:<request>:<helper>`` so no helper ever gets a question twice.
- **The check before sending** (:class:`HelpCheck`, for ``Sender(checks={"help": …})``):
  a question answered (or erased) meanwhile is not delivered; a recipient who no longer
  leads the group or administers its ward (removed during the night) does not get the
  resident's name and question — the row is cancelled and the question re-routed to who
  may answer it now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import Catalog
from bot.core.messages import Option
from bot.delivery.transport import OutboundMessage
from storage.help_requests import RoutedTo, ref_of, request_id_of
from storage.models import HelpRequest, Identity, Person, ResidentGroup
from storage.outbox import Claimed, enqueue, outbox_row
from storage.reach import reachable
from storage.roles import administers, admins_of, leaders_of, leads


@dataclass(frozen=True)
class Route:
    """Who a question goes to, and through which account each of them is reached."""

    to: RoutedTo
    helpers: tuple[tuple[Person, Identity], ...] = ()


async def _reachable(session: AsyncSession, people: Sequence[Person]) -> tuple[tuple[Person, Identity], ...]:
    accounts = await reachable(session, person_ids=[p.id for p in people if p.id is not None])
    return tuple((p, accounts[p.id]) for p in people if p.id in accounts)


async def route(session: AsyncSession, *, asker_id: int, group: ResidentGroup | None) -> Route:
    """The group's reachable leaders; else the ward's reachable admins; else nobody (the
    asker is never their own helper)."""
    if group is None or group.id is None:
        return Route(RoutedTo.NOBODY)
    leaders = [p for p in await leaders_of(session, group_id=group.id) if p.id != asker_id]
    helpers = await _reachable(session, leaders)
    if helpers:
        return Route(RoutedTo.LEADERS, helpers)
    admins = [p for p in await admins_of(session, ward_id=group.ward_id) if p.id != asker_id]
    helpers = await _reachable(session, admins)
    return Route(RoutedTo.ADMINS, helpers) if helpers else Route(RoutedTo.NOBODY)


async def forward(
    session: AsyncSession,
    *,
    catalog: Catalog,
    request: HelpRequest,
    asker: Person,
    group: ResidentGroup | None,
    helpers: Sequence[tuple[Person, Identity]],
    now: datetime,
) -> int:
    """Queue the question for each helper (due now); returns how many rows are new."""
    assert request.id is not None
    rows = []
    for helper, identity in helpers:
        assert identity.id is not None
        t = catalog.translator(helper.locale)
        message = OutboundMessage(
            text=t("support.forwarded", name=asker.display_name or "", group=group.name if group else "",
                   text=request.text),
            options=(Option(t("support.reply_button"), f"hotro:rep:{request.id}"),),
        )
        rows.append(outbox_row(
            kind="help", identity_id=identity.id, channel=identity.channel, payload=message.to_payload(),
            due_at=now, dedupe_key=f"help:{request.id}:{helper.id}", now=now,
            about_person_id=asker.id, ref=ref_of(request.id),
        ))
    return await enqueue(session, rows) if rows else 0


async def may_answer(session: AsyncSession, *, person_id: int, group: ResidentGroup) -> bool:
    """Leads the request's group, or administers its ward (asked again every time)."""
    assert group.id is not None
    return (await leads(session, person_id=person_id, group_id=group.id)
            or await administers(session, person_id=person_id, ward_id=group.ward_id))


class HelpCheck:
    """The outbox sender's check for kind ``help``: ``await check(session, row, now)`` → None
    to send, or the reason (Vietnamese, kept in ``outbox.last_error``) to cancel the row.
    It may queue the question for the current helpers (re-routing)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def __call__(self, session: AsyncSession, row: Claimed, now: datetime) -> str | None:
        request_id = request_id_of(row.ref)
        if request_id is None:
            return None  # not about a stored request: nothing to check
        request = await session.get(HelpRequest, request_id)
        asker = await session.get(Person, request.person_id) if request is not None else None
        if request is None or asker is None or asker.deleted_at is not None:
            return self.catalog.text("support.check_gone")
        if request.answered_at is not None:
            return self.catalog.text("support.check_answered")
        group = await session.get(ResidentGroup, request.group_id) if request.group_id is not None else None
        identity = await session.get(Identity, row.identity_id)
        recipient = await session.get(Person, identity.person_id) if identity and identity.person_id else None
        if (group is not None and recipient is not None and recipient.id is not None
                and recipient.deleted_at is None and recipient.id != asker.id
                and await may_answer(session, person_id=recipient.id, group=group)):
            return None
        assert asker.id is not None
        now_route = await route(session, asker_id=asker.id, group=group)
        helpers = [(p, i) for p, i in now_route.helpers if recipient is None or p.id != recipient.id]
        await forward(session, catalog=self.catalog, request=request, asker=asker, group=group,
                      helpers=helpers, now=now)
        request.routed_to = now_route.to.value
        session.add(request)
        return self.catalog.text("support.check_rerouted")
