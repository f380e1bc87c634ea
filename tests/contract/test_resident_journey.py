"""The resident's journey over every channel, with identical outcomes in the database.

To add a journey (leaders, admins): write it once in journeys.py against ``Driver`` and
add a test taking the ``driver`` fixture; it then runs over the terminal chat, Telegram and
Zalo.
"""

from __future__ import annotations

from bot.app import App
from storage.models import ProgressStatus
from tests.contract.drivers import CHANNELS, Driver, open_driver
from tests.contract.journeys import NAME, outcome, resident_journey


def expected(app: App) -> dict:
    """The one outcome every channel must produce."""
    lesson = app.lessons.first
    questions = lesson.quiz.questions
    return {
        "name": NAME,
        "group": "DEMO-TDP03",
        "consent_version": "2026-11",
        "progress": [(lesson.id, lesson.version, ProgressStatus.COMPLETED, len(questions), 1, True)],
        "answers": sorted((lesson.id, lesson.version, 1, q.id, q.answer_index, True) for q in questions),
        "step": "menu",
        "identities": 1,
        "seen": True,
    }


async def test_the_resident_journey(ward: App, driver: Driver) -> None:
    await resident_journey(driver, ward.lessons)
    assert await outcome(ward, driver) == expected(ward)


async def test_every_channel_leaves_the_same_rows_in_one_database(ward: App) -> None:
    """Three residents, one per channel, same journey, same database: their rows are
    identical but for ids, times and the channel."""
    outcomes = {}
    for number, kind in enumerate(CHANNELS):
        async with open_driver(kind, ward, user=500_000 + number) as d:
            await resident_journey(d, ward.lessons)
            outcomes[kind] = await outcome(ward, d)
    assert outcomes["console"] == outcomes["telegram"] == outcomes["zalo"] == expected(ward)
