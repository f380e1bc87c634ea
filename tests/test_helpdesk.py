"""Help never lost, never sent twice, never to the wrong person.

- ``bot.helpdesk.HelpCheck``, the check the outbox sender runs just before a forwarded
  question goes out, called here directly with the ``Claimed`` row a sender would hold: a
  question answered during the night is not delivered at 07:00; a leader removed during
  the night does not get the resident's name and question, which go to whoever may answer
  now (the group's other leaders, else the ward's admins), once;
- the whole path over the real Telegram adapter and the real sender: a question nobody can
  answer yet is kept, a leader appointed later answers it at night and is told it arrives at
  07:00, and it does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.app import App
from bot.delivery.quiet import QuietHours
from bot.helpdesk import HelpCheck
from storage.models import HelpRequest, Identity, Outbox, OutboxStatus, Role
from storage.outbox import Claimed
from storage.roles import revoke
from tests.contract.drivers import TelegramDriver, telegram_server
from tests.contract.journeys import join_group
from tests.delivery.helpers import telegram_sender
from tests.staff import make_admin, make_leader, person_of, rows
from tests.support import Chat, ManualClock, join

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = QuietHours(ZONE, time(21), time(7))


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def check(app: App, row: Outbox, now: datetime) -> str | None:
    """What the sender does just before sending ``row``: the check, in its own transaction."""
    async with app.sessions() as session, session.begin():
        identity = await session.get(Identity, row.identity_id)
        assert identity is not None
        claimed = Claimed(row.id, row.identity_id, identity.external_id, identity.last_seen_at,  # type: ignore[arg-type]
                          row.kind, row.payload, row.attempts, row.ref)
        return await HelpCheck(app.catalog)(session, claimed, now)


async def help_rows(app: App) -> list[Outbox]:
    return [r for r in await rows(app, Outbox) if r.kind == "help"]


async def addressee(app: App, row: Outbox) -> str:
    async with app.sessions() as session:
        identity = await session.get(Identity, row.identity_id)
    assert identity is not None
    return identity.external_id


async def test_a_question_answered_at_night_is_not_delivered_in_the_morning(ward: App, clock: ManualClock) -> None:
    lan, ba, bay = (Chat(ward.conversation, user=u, name=n) for u, n in (("1", "Lan"), ("2", "Ba"), ("3", "Bảy")))
    for chat in (lan, ba, bay):
        await join(chat)
    for leader in (ba, bay):
        await make_leader(ward, leader, "DEMO-TDP03")
    clock._now = local(23, 22)
    await lan.send("/hotro")
    await lan.send("Máy tôi không nhận mã OTP.")
    to_ba, to_bay = sorted(await help_rows(ward), key=lambda r: r.dedupe_key)
    assert await check(ward, to_bay, local(24, 7)) is None  # unanswered, a leader of the group: send

    clock._now = local(23, 23)
    await ba.action(to_ba.payload["options"][0][1])  # "✍️ Trả lời" on Ba's phone
    await ba.send("Sáng mai 8 giờ mình qua.")
    assert await check(ward, to_bay, local(24, 7)) == "câu hỏi đã được trả lời"
    assert len(await help_rows(ward)) == 2  # nothing re-queued


async def test_a_leader_removed_during_the_night_gets_nothing_and_the_question_goes_to_who_may_answer(
    ward: App, clock: ManualClock
) -> None:
    lan, ba, ha = (Chat(ward.conversation, user=u, name=n) for u, n in (("1", "Lan"), ("2", "Ba"), ("9", "Hà")))
    for chat in (lan, ba):
        await join(chat)
    await join(ha, group_code="DEMO-TDP01")
    await make_leader(ward, ba, "DEMO-TDP03")
    await make_admin(ward, ha)
    clock._now = local(23, 22)
    await lan.send("/hotro")
    await lan.send("Tôi bị lừa chuyển tiền, phải làm sao?")
    [to_ba] = await help_rows(ward)
    [request] = await rows(ward, HelpRequest)
    assert request.routed_to == "leaders" and await addressee(ward, to_ba) == "2"

    ba_person = await person_of(ward, ba)
    [role] = [r for r in await rows(ward, Role) if r.person_id == ba_person.id]
    async with ward.sessions() as session, session.begin():
        await revoke(session, role_id=role.id)  # the admin removes Ba at 23:30
    assert await check(ward, to_ba, local(24, 7)) == (
        "người nhận không còn phụ trách tổ này; câu hỏi đã được chuyển tới người phụ trách hiện nay")
    [_, to_ha] = await help_rows(ward)
    lan_person = await person_of(ward, lan)
    assert await addressee(ward, to_ha) == "9"  # no leader left: the ward's admin
    assert (to_ha.status, to_ha.ref, to_ha.about_person_id, to_ha.due_at) == (
        OutboxStatus.PENDING, f"help_request:{request.id}", lan_person.id, local(24, 7))
    assert to_ha.payload == {**to_ba.payload}  # the same question, the same "✍️ Trả lời"
    [request] = await rows(ward, HelpRequest)
    assert request.routed_to == "admins"

    # The same row checked again (its lease ran out, another sender took it): nothing twice.
    assert await check(ward, to_ba, local(24, 7, 1)) is not None
    assert len(await help_rows(ward)) == 2
    # The admin may answer it: their row goes out.
    assert await check(ward, to_ha, local(24, 7, 1)) is None


async def test_with_nobody_left_the_question_waits_on_the_dashboard(ward: App, clock: ManualClock) -> None:
    lan, ba = Chat(ward.conversation, user="1", name="Lan"), Chat(ward.conversation, user="2", name="Ba")
    for chat in (lan, ba):
        await join(chat)
    await make_leader(ward, ba, "DEMO-TDP03")
    await lan.send("/hotro")
    await lan.send("Cho tôi hỏi về dịch vụ công.")
    [to_ba] = await help_rows(ward)
    async with ward.sessions() as session, session.begin():
        [role] = (await session.exec(select(Role))).all()
        await revoke(session, role_id=role.id)
    assert await check(ward, to_ba, clock.now()) is not None
    assert len(await help_rows(ward)) == 1
    [request] = await rows(ward, HelpRequest)
    assert (request.routed_to, request.answered_at) == ("nobody", None)
    bay = Chat(ward.conversation, user="3", name="Bảy")
    await join(bay)
    await make_leader(ward, bay, "DEMO-TDP03")  # appointed later: sees it on the dashboard
    await bay.send("/nhom")
    await bay.press("Câu hỏi của người dân (1)")
    assert "Cho tôi hỏi về dịch vụ công." in bay.last_text


async def test_kept_then_answered_at_night_over_telegram_arrives_at_seven(ward: App, clock: ManualClock) -> None:
    async with telegram_server(ward) as (tg, handled):
        lan = TelegramDriver(tg, handled, 2001, "Lan Trần")
        await join_group(lan, name="Lan Trần", group_code="DEMO-TDP03")
        await lan.send("/hotro")
        assert "chưa có ai nhận câu hỏi qua đây" in lan.last_text()
        await lan.choose("Vẫn để lại câu hỏi")
        await lan.send("Cài VNeID thế nào ạ?")
        assert "Mình đã lưu câu hỏi của bạn" in lan.last_text()

        ba = TelegramDriver(tg, handled, 2002, "Ba Nguyễn")
        await join_group(ba, name="Ba Nguyễn", group_code="DEMO-TDP03")
        await make_leader(ward, Chat(ward.conversation, channel="telegram", user="2002"), "DEMO-TDP03")
        clock._now = local(23, 22, 30)
        await ba.send("/nhom")
        await ba.choose("Câu hỏi của người dân (1)")
        await ba.choose("Trả lời Lan Trần")
        await ba.send("Mai mình qua nhà hướng dẫn nhé.")
        assert "câu trả lời sẽ tới Lan Trần lúc 07:00 24/11/2026" in ba.last_text()

        sender = telegram_sender(ward.sessions, tg, clock=clock, quiet=QUIET)
        task = asyncio.create_task(sender.run())
        try:
            before = len(tg.chat(2001))
            while sender.rounds < 2:  # it looked, and went back to sleep: nothing goes out at night
                sender.wake()
                await asyncio.sleep(0.01)
            assert len(tg.chat(2001)) == before
            clock._now = local(24, 7)
            sender.wake()
            await tg.wait_for(lambda t: len(t.chat(2001)) > before, timeout=10)
        finally:
            sender.stop()
            await asyncio.wait_for(task, 10)
            await sender.transport.bot.session.close()
        answer = tg.last_message(2001)
        assert answer is not None and "Tổ trưởng Ba Nguyễn trả lời" in answer.text and "Mai mình qua" in answer.text
        await lan.choose("Hỏi thêm")
        assert "sẽ được chuyển tới tổ trưởng của Tổ dân phố 3 (1 người)" in lan.last_text()


async def test_a_question_whose_asker_erased_their_data_is_not_delivered(ward: App, clock: ManualClock) -> None:
    lan, ba = Chat(ward.conversation, user="1", name="Lan"), Chat(ward.conversation, user="2", name="Ba")
    for chat in (lan, ba):
        await join(chat)
    await make_leader(ward, ba, "DEMO-TDP03")
    clock._now = local(23, 22)
    await lan.send("/hotro")
    await lan.send("Số điện thoại của tôi là 0912 345 678.")
    [to_ba] = await help_rows(ward)
    await lan.send("/xoadulieu")
    await lan.press("Xóa dữ liệu")
    [cancelled] = await help_rows(ward)
    assert (cancelled.status, cancelled.payload) == (OutboxStatus.CANCELLED, {})
    assert await rows(ward, HelpRequest) == []
    # A sender that had claimed it before the erasure checks it again: it does not go out.
    assert await check(ward, to_ba, local(24, 7)) == "câu hỏi không còn (người hỏi đã xóa dữ liệu)"
