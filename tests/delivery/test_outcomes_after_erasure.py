"""A broadcast's delivery outcomes outlive its recipients' erasure (issue 11 §1).

Outbox rows carry the recipient's group (``outbox.group_id``) when queued; the delivery report
of the composer and the CLI (``storage.outbox.delivery_report``) and the ward workbook's
broadcast rows (``storage.report_data.ward_broadcasts``) count by it, so erasing a recipient
(their identity goes, the row's ``identity_id`` becomes NULL) changes no count. A row still
pending when its recipient is erased is cancelled and never claimed by a sender.
"""

from __future__ import annotations

import asyncio

from sqlmodel import col, select

from bot.app import App
from bot.broadcasting import message_for
from storage.broadcasts import create_broadcast, queue_broadcast
from storage.models import Identity, Outbox, OutboxStatus, Ward
from storage.outbox import delivery_report
from storage.people import erase_person, forget_identities
from storage.report_data import ward_broadcasts
from tests.conftest import seed_demo_groups
from tests.delivery.helpers import telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.staff import person_of
from tests.support import Chat, ManualClock, join

TDP3, TDP5 = "Tổ dân phố 3 (DEMO-TDP03)", "Tổ dân phố 5 (DEMO-TDP05)"


async def _residents(app: App) -> dict[str, Chat]:
    """Lan and Minh in Tổ dân phố 3, Hoa and Tư in Tổ dân phố 5, joined through the chat."""
    chats = {}
    for number, (user, group) in enumerate((("lan", "DEMO-TDP03"), ("minh", "DEMO-TDP03"),
                                            ("hoa", "DEMO-TDP05"), ("tu", "DEMO-TDP05"))):
        chat = Chat(app.conversation, channel="telegram", user=str(810_000 + number), name=user)
        await join(chat, group_code=group)
        chats[user] = chat
    return chats


async def _queue(app: App, now, text: str) -> int:  # type: ignore[no-untyped-def]
    async with app.sessions() as session, session.begin():
        broadcast = await create_broadcast(session, author="test", text=text, now=now, scheduled_at=now,
                                           audience={"kind": "all", "ward": "DEMO"})
        assert broadcast.id is not None
        await queue_broadcast(session, broadcast_id=broadcast.id, now=now, message=message_for(app.catalog))
        return broadcast.id


async def _rows(app: App, broadcast_id: int) -> list[Outbox]:
    async with app.sessions() as session:
        query = select(Outbox).where(Outbox.broadcast_id == broadcast_id).order_by(col(Outbox.id))
        return list((await session.exec(query)).all())


async def _send_all(app: App, clock: ManualClock, chats: dict[str, Chat], broadcast_id: int,
                    *, blocked: tuple[str, ...] = ()) -> FakeTelegram:
    """Run the real sender on the fake Bot API until no row of the broadcast waits."""
    async with FakeTelegram() as tg:
        for chat in chats.values():
            tg.add_user(int(chat.user))
        tg.blocked_users.update(int(chats[name].user) for name in blocked)
        sender = telegram_sender(app.sessions, tg, clock=clock)
        task = asyncio.create_task(sender.run())
        try:
            while any(r.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)
                      for r in await _rows(app, broadcast_id)):
                await asyncio.sleep(0.05)
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
    return tg


async def _reports(app: App, broadcast_id: int):  # type: ignore[no-untyped-def]
    """The composer's/CLI's delivery report and the ward workbook's row of the broadcast."""
    async with app.sessions() as session:
        report = await delivery_report(session, broadcast_id=broadcast_id)
        ward = (await session.exec(select(Ward).where(Ward.code == "DEMO"))).one()
        assert ward.id is not None
        [row] = [b for b in await ward_broadcasts(session, ward_id=ward.id, start=None, end=app.clock.now())
                 if b.broadcast.id == broadcast_id]
    return report, row


async def test_erasures_keep_every_count_of_a_sent_broadcast(any_app: App, clock: ManualClock) -> None:
    await seed_demo_groups(any_app)
    chats = await _residents(any_app)
    broadcast_id = await _queue(any_app, clock.now(), "Họp tổ dân phố tối thứ Sáu")
    await _send_all(any_app, clock, chats, broadcast_id, blocked=("tu",))
    before, ward_before = await _reports(any_app, broadcast_id)
    assert before.totals == {"sent": 3, "blocked": 1, "failed": 0, "pending": 0}
    assert before.by_group == {TDP3: {"sent": 2, "blocked": 0, "failed": 0, "pending": 0},
                               TDP5: {"sent": 1, "blocked": 1, "failed": 0, "pending": 0}}

    # Lan and Tư erase their data; Minh's account leaves (the privacy flow's forget_identities).
    lan, tu, minh = [await person_of(any_app, chats[n]) for n in ("lan", "tu", "minh")]
    async with any_app.sessions() as session, session.begin():
        await erase_person(session, person_id=lan.id, now=clock.now())  # type: ignore[arg-type]
        await erase_person(session, person_id=tu.id, now=clock.now())  # type: ignore[arg-type]
        await forget_identities(session, person_id=minh.id)

    rows = await _rows(any_app, broadcast_id)
    assert len(rows) == 4 and sum(r.identity_id is None for r in rows) == 3  # anonymous outcomes
    assert all(r.payload == {} for r in rows if r.identity_id is None)
    after, ward_after = await _reports(any_app, broadcast_id)
    assert (after.totals, after.by_group) == (before.totals, before.by_group)
    assert ward_after.report.totals == ward_before.report.totals == before.totals
    assert ward_after.report.by_group == ward_before.report.by_group == before.by_group
    assert ward_after.recipients == ward_before.recipients == 4


async def test_pending_rows_of_an_erased_recipient_are_cancelled_never_sent(
    any_app: App, clock: ManualClock
) -> None:
    await seed_demo_groups(any_app)
    chats = await _residents(any_app)
    broadcast_id = await _queue(any_app, clock.now(), "Lịch tiêm chủng tuần sau")
    hoa = await person_of(any_app, chats["hoa"])
    async with any_app.sessions() as session, session.begin():
        await erase_person(session, person_id=hoa.id, now=clock.now())  # type: ignore[arg-type]
        assert (await session.exec(select(Identity).where(Identity.person_id == hoa.id))).first() is None

    tg = await _send_all(any_app, clock, chats, broadcast_id)
    assert tg.sent_count(int(chats["hoa"].user)) == 0
    assert all(tg.sent_count(int(chats[n].user)) == 1 for n in ("lan", "minh", "tu"))
    rows = await _rows(any_app, broadcast_id)
    [erased] = [r for r in rows if r.identity_id is None]
    assert (erased.status, erased.claim, erased.payload, erased.group_id) == (
        OutboxStatus.CANCELLED, 0, {}, hoa.group_id)  # never claimed: its claim counter never moved
    report, ward_row = await _reports(any_app, broadcast_id)
    assert report.totals == {"sent": 3, "blocked": 0, "failed": 0, "pending": 0, "cancelled": 1}
    assert report.by_group[TDP5] == {"sent": 1, "blocked": 0, "failed": 0, "pending": 0, "cancelled": 1}
    assert ward_row.report.totals == report.totals
