"""The reconciliation (``tests/test_reconciliation.py``) for the dashboard's report page: on the
18-month world, signed in through a ``/web`` link as its admin, every period the page offers
shows the independent ``recount``'s figures for the ward and for every group — on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from html import unescape

import aiohttp

from bot.app import App
from bot.reports.period import CHOICES, chosen_period
from bot.reports.wording import percent, points
from storage.figures import GroupFigures
from tests.test_reconciliation import HANOI, END, World, library, recount, seeded  # noqa: F401 (fixtures)
from tests.support import Chat, dashboard_served, web_sign_in


def _total(page: str) -> dict[str, str]:
    return {name: unescape(value).strip() for name, value in re.findall(r'data-figure="([a-z-]+)">([^<]*)<', page)}


def _rate(g: GroupFigures) -> str:
    return "chưa có thành viên" if g.rate is None else percent(g.rate)


async def test_every_period_of_the_report_page_equals_the_recount(seeded: tuple[App, World]) -> None:
    app, world = seeded
    assert app.clock.now() == END
    async with dashboard_served(app) as base, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = Chat(app.conversation, user=world.admin.key, name=world.admin.name)
        assert (await web_sign_in(http, admin)).status == 200
        async with http.get(base + "/web/bao-cao") as response:
            assert response.status == 200
            ward_page = str(response.url)
        for choice in CHOICES:
            _, period = chosen_period(choice, now=END, zone=HANOI)
            want = recount(world, period.start, period.end)
            async with http.get(f"{ward_page}?ky={choice}") as response:
                assert response.status == 200, choice
                page = await response.text()
            total = want.total
            assert {k: v for k, v in _total(page).items() if k != "range"} == {
                "members": str(total.members), "participants": str(total.participants),
                "new": str(total.new_participants), "finished": str(total.finished), "rate": _rate(total),
                "finished-period": str(total.finished_in_period), "self": str(total.completed_self),
                "assisted": str(total.completed_assisted),
                "change": "–" if total.change is None else points(total.change)}, choice
            shown = {}
            for row in re.findall(r"<tr data-group=\"\d+\">(.*?)</tr>", page, re.S):
                name = unescape(re.search(r"<th scope=\"row\">([^<]*)</th>", row).group(1))  # type: ignore[union-attr]
                shown[name] = [unescape(c).strip() for c in re.findall(r'<td class="num">([^<]*)', row)][:7]
            assert shown == {g.name: [str(g.members), str(g.participants), str(g.new_participants),
                                      str(g.completed_self), str(g.completed_assisted), str(g.finished),
                                      "–" if g.rate is None else percent(g.rate)]
                             for g in want.groups}, choice

