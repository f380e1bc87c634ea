"""Seeding residents and running the real sender against the fake Bot API. Every helper
takes the time it acts at: nothing here reads the wall clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlmodel import col, select

from bot.channels.telegram.transport import TelegramTransport
from bot.core.conversation import Clock
from bot.delivery.quiet import QuietHours
from bot.delivery.sender import Sender
from bot.delivery.transport import Pacing
from storage.db import SessionFactory
from storage.models import Identity, Outbox, OutboxStatus, Person
from storage.outbox import enqueue, outbox_row

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NO_QUIET = QuietHours(ZONE, time(0), time(0))
FIRST_USER = 7_000_000


async def seed_residents(sessions: SessionFactory, count: int, *, now: datetime,
                         group_id: int | None = None) -> list[int]:
    """``count`` consenting residents (joined at ``now``) with a Telegram identity each;
    returns identity ids."""
    async with sessions() as session, session.begin():
        people = [Person(display_name=f"Cư dân {i}", group_id=group_id, consent_at=now, consent_version="t",
                         created_at=now, last_active_at=now) for i in range(count)]
        session.add_all(people)
        await session.flush()
        identities = [Identity(person_id=p.id, channel="telegram", external_id=str(FIRST_USER + i), created_at=now,
                               last_seen_at=now) for i, p in enumerate(people)]
        session.add_all(identities)
        await session.flush()
        return [i.id for i in identities]  # type: ignore[misc]


async def queue_messages(sessions: SessionFactory, identity_ids: list[int], *, now: datetime,
                         text: str = "Thông báo", kind: str = "broadcast",
                         options: list[list[str]] | None = None) -> None:
    """One message to each identity, queued and due at ``now``."""
    payload = {"text": text, **({"options": options} if options else {})}
    async with sessions() as session, session.begin():
        await enqueue(session, [
            outbox_row(kind=kind, identity_id=i, channel="telegram", payload=payload, due_at=now,
                       dedupe_key=f"test:{kind}:{i}", now=now)
            for i in identity_ids
        ])


def telegram_sender(sessions: SessionFactory, tg, *, clock: Clock, per_second: float = 200.0,  # type: ignore[no-untyped-def]
                    concurrency: int = 8, **kwargs) -> Sender:
    """The real sender on the fake Bot API ``tg``, on ``clock``, with no quiet hours unless
    ``quiet=`` says otherwise."""
    bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.url)))
    transport = TelegramTransport(bot, pacing=Pacing(per_second, per_chat_interval=1.0))
    kwargs.setdefault("backoff_seconds", 0.05)
    kwargs.setdefault("idle_seconds", 0.05)
    return Sender(sessions=sessions, transport=transport, clock=clock, quiet=kwargs.pop("quiet", NO_QUIET),
                  concurrency=concurrency, **kwargs)


async def drain(sender: Sender, sessions: SessionFactory, *, timeout: float = 60) -> None:
    """Run the sender until no row is pending or sending, then stop it and close its bot."""
    task = asyncio.create_task(sender.run())
    try:
        async def settled() -> None:
            while True:
                async with sessions() as session:
                    open_rows = (await session.exec(select(Outbox.id).where(
                        col(Outbox.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).first()
                if open_rows is None:
                    return
                await asyncio.sleep(0.05)
        await asyncio.wait_for(settled(), timeout)
    finally:
        sender.stop()
        await task
        await sender.transport.bot.session.close()  # type: ignore[attr-defined]
