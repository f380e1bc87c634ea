"""The leader's and the admin's journeys over every channel — the terminal chat, Telegram
and Zalo, each through its real adapter — with identical outcomes in the database.

Each channel gets a fresh database and clock; the three outcomes (names instead of ids, no
times) must be equal, and are checked against what the journeys should leave. Reports and
charts reach each channel as it can render them: a file and a photo on Telegram, the
summary as text on Zalo without a public URL, the saved path in the terminal.
"""

from __future__ import annotations

from pathlib import Path

from bot.curriculum import LessonLibrary
from storage.models import OutboxStatus, ProgressStatus, RoleKind
from storage.roles import add_admin
from tests.conftest import START, _make_app, seed_demo_groups
from tests.contract.drivers import CHANNELS, Driver, TelegramDriver, open_drivers
from tests.contract.journeys import join_group, learn_lesson
from tests.contract.staff_journeys import (
    ADMIN,
    LEADER,
    NO_PHONE,
    RESIDENT,
    admin_invites_a_leader,
    admin_journey,
    leader_journey,
    staff_outcome,
)
from tests.support import ManualClock


async def _run(kind: str, folder: Path, library: LessonLibrary) -> dict:
    clock = ManualClock(START)
    app = await _make_app(f"sqlite+aiosqlite:///{folder / 'test.db'}", clock, library, folder / "files")
    try:
        await seed_demo_groups(app)
        async with open_drivers(kind, app, [(700001, ADMIN), (700002, LEADER), (700003, RESIDENT)]) as drivers:
            admin, leader, resident = drivers
            await join_group(admin, name=ADMIN, group_code="DEMO-TDP01")
            async with app.sessions() as session, session.begin():  # `hocvuso admin add <channel>:<id>`
                await add_admin(session, channel=admin.channel, external_id=admin.external_id, ward_code=None,
                                now=clock.now())
            await join_group(resident, name=RESIDENT)
            await learn_lesson(resident, library.first)
            await admin_invites_a_leader(admin, leader)
            await leader_journey(leader, resident, library, clock)
            await admin_journey(admin, library)
            _check_report_rendering(kind, admin)
        return await staff_outcome(app)
    finally:
        await app.close()


def _check_report_rendering(kind: str, admin: Driver) -> None:
    """The report, the workbook, the annex and the charts, as each channel can show them."""
    if kind == "telegram":
        assert isinstance(admin, TelegramDriver)
        sent = [m.kind for m in admin.tg.chat(admin.user)]
        assert sent[-7:] == ["document"] * 3 + ["photo"] * 3 + ["text"]  # the files, the charts, the menu
    elif kind == "zalo":  # no PUBLIC_BASE_URL here: a summary and a text in place of the chart
        assert admin.said("Zalo chưa gửi được tệp") and admin.said("Zalo chưa hiển thị được")
    else:
        assert admin.said("(Tệp đã lưu tại: ") and admin.said(".docx)") and admin.said(".xlsx)") and admin.said(".png)")


async def test_leader_and_admin_journeys_leave_the_same_rows_on_every_channel(tmp_path: Path,
                                                                             library: LessonLibrary) -> None:
    outcomes = {}
    for kind in CHANNELS:
        (tmp_path / kind).mkdir()
        outcomes[kind] = await _run(kind, tmp_path / kind, library)
    assert outcomes["console"] == outcomes["telegram"] == outcomes["zalo"]

    outcome = outcomes["console"]
    first = library.first.id
    assert (LEADER, RoleKind.LEADER, "DEMO-TDP03", None, ADMIN) in outcome["roles"]
    assert (ADMIN, RoleKind.ADMIN, None, "DEMO", "cli") in outcome["roles"]
    assert outcome["invites"] == [("DEMO-TDP03", ADMIN, LEADER)]
    assert outcome["added"] == [(NO_PHONE, "DEMO-TDP03", LEADER, "assisted-2026-11")]
    assert (NO_PHONE, first, ProgressStatus.COMPLETED, None, LEADER) in outcome["progress"]
    assert (RESIDENT, first, ProgressStatus.COMPLETED, 3, None) in outcome["progress"]
    sent = {(kind, to) for kind, to, *_ in outcome["outbox"]}
    assert sent == {("nudge", RESIDENT), ("help", LEADER), ("help_reply", RESIDENT), ("broadcast", ADMIN),
                    ("broadcast", LEADER)}
    # The question was answered before it went out: its forward is cancelled, the rest wait.
    assert {(kind, status) for kind, *_, status in outcome["outbox"]} == {
        ("nudge", OutboxStatus.PENDING), ("help", OutboxStatus.CANCELLED), ("help_reply", OutboxStatus.PENDING),
        ("broadcast", OutboxStatus.PENDING)}
    assert outcome["help"] == [(RESIDENT, "Tôi quên mật khẩu VNeID", LEADER)]
    [broadcast] = outcome["broadcasts"]
    assert broadcast[0] == ADMIN and broadcast[3:] == ("queued", 2)
    actions = set(outcome["audit"])
    assert {(ADMIN, "admin.invite"), (LEADER, "invite.accept"), (LEADER, "leader.add_person"),
            (LEADER, "leader.assist"), (LEADER, "leader.member"), (LEADER, "leader.undo_assist"),
            (LEADER, "leader.nudge"), (RESIDENT, "help.ask"), (LEADER, "help.reply"),
            (ADMIN, "admin.overview"), (ADMIN, "admin.ranking"), (ADMIN, "broadcast.create"),
            (ADMIN, "admin.broadcast_report"), (ADMIN, "admin.report")} <= actions
