"""``Sender(checks={kind: check})``: a check runs in a short transaction just before a row of
its kind is sent; a reason cancels the row (kept in ``last_error``) together with whatever
the check queued instead; None lets it through."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import App
from storage import outbox
from storage.models import Outbox, OutboxStatus
from tests.delivery.helpers import FIRST_USER, seed_residents, telegram_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.staff import rows
from tests.support import ManualClock

ANSWERED = "Câu hỏi đã được trả lời"


def _row(identity: int, now: datetime, *, kind: str, key: str, ref: str | None = None) -> dict[str, Any]:
    return outbox.outbox_row(kind=kind, identity_id=identity, channel="telegram", payload={"text": f"Tin {key}"},
                             due_at=now, dedupe_key=key, now=now, ref=ref)


async def test_a_check_cancels_one_row_re_routes_it_and_lets_another_through(app: App, clock: ManualClock) -> None:
    now = clock.now()
    first, second, third = await seed_residents(app.sessions, 3, now=now)
    async with app.sessions() as session, session.begin():
        await outbox.enqueue(session, [
            _row(first, now, kind="help", key="help:1", ref="help_request:1"),
            _row(second, now, kind="help", key="help:2", ref="help_request:2"),
            _row(first, now, kind="broadcast", key="news"),  # another kind: no check
        ])
    checked: list[tuple[str | None, int, datetime]] = []

    async def check(session: AsyncSession, row: outbox.Claimed, at: datetime) -> str | None:
        checked.append((row.ref, row.claim, at))
        if row.ref == "help_request:1":  # answered meanwhile, say: cancel, and tell someone else instead
            await outbox.enqueue(session, [_row(third, at, kind="help", key="help:1:other", ref="help_request:3")])
            return ANSWERED
        return None

    async with FakeTelegram() as tg:
        for i in range(3):
            tg.add_user(FIRST_USER + i)
        sender = telegram_sender(app.sessions, tg, clock=clock, checks={"help": check})
        task = asyncio.create_task(sender.run())
        try:
            await tg.wait_for(lambda t: t.sent_count(FIRST_USER + 1) and t.sent_count(FIRST_USER + 2)
                              and t.sent_count(FIRST_USER))
            while any(r.status in (OutboxStatus.PENDING, OutboxStatus.SENDING) for r in await rows(app, Outbox)):
                await asyncio.sleep(0.02)
        finally:
            sender.stop()
            await task
            await sender.transport.bot.session.close()
        texts = {user: [m.text for m in tg.chat(user)] for user in (FIRST_USER, FIRST_USER + 1, FIRST_USER + 2)}

    assert texts == {FIRST_USER: ["Tin news"], FIRST_USER + 1: ["Tin help:2"], FIRST_USER + 2: ["Tin help:1:other"]}
    by_key = {r.dedupe_key: r for r in await rows(app, Outbox)}
    assert (by_key["help:1"].status, by_key["help:1"].last_error) == (OutboxStatus.CANCELLED, ANSWERED)
    assert {k: r.status for k, r in by_key.items() if k != "help:1"} == {
        "help:2": OutboxStatus.SENT, "news": OutboxStatus.SENT, "help:1:other": OutboxStatus.SENT}
    assert sorted(ref or "" for ref, _, _ in checked) == ["help_request:1", "help_request:2", "help_request:3"]
    assert {(claim, at) for _, claim, at in checked} == {(1, now)}
