"""A nudge to a group's behind members looks them up in chunks (``storage.members.nudge_targets``,
``LOOKUP_CHUNK`` people per statement), so a group of any size binds no parameter per person."""

from __future__ import annotations

import pytest

from bot.app import App
from storage import members
from storage.people import erase_person
from tests.staff import person_of
from tests.support import Chat, ManualClock, join


async def test_nudge_targets_are_looked_up_in_chunks(ward: App, clock: ManualClock,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of two over five people (one erased, one with reminders off): the same answer as
    one lookup would give."""
    chats = [Chat(ward.conversation, user=str(800 + i), name=f"Người {i}") for i in range(5)]
    for chat in chats:
        await join(chat, group_code="DEMO-TDP03")
    people = [await person_of(ward, c) for c in chats]
    async with ward.sessions() as session, session.begin():
        await erase_person(session, person_id=people[0].id, now=clock.now())  # type: ignore[arg-type]
        quiet = await session.get(type(people[1]), people[1].id)
        quiet.reminders_on = False  # type: ignore[union-attr]
        session.add(quiet)
    monkeypatch.setattr(members, "LOOKUP_CHUNK", 2)
    async with ward.sessions() as session:
        found = await members.nudge_targets(session, person_ids=[p.id for p in people], kind="nudge",  # type: ignore[misc]
                                            since=clock.now())
    assert sorted(found) == sorted(p.id for p in people[1:])
    assert found[people[1].id].identity is None  # type: ignore[index]
    assert all(found[p.id].identity is not None and not found[p.id].recent for p in people[2:])  # type: ignore[index]
