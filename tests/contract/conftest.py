"""The contract suite's fixture: ``driver`` runs a test once per channel (see drivers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import App
from tests.contract.drivers import CHANNELS, Driver, open_driver


@pytest.fixture(params=CHANNELS)
async def driver(request: pytest.FixtureRequest, ward: App) -> AsyncIterator[Driver]:
    """A resident on each channel in turn, talking to the app with the demo ward."""
    async with open_driver(request.param, ward) as d:
        yield d
