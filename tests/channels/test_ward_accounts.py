"""Two wards, two bots (issue 12 §1): each ward's bot shows, joins and invites to its own ward's
groups only; the same Telegram user on both bots is two residents; each bot's outbox is sent by
its own sender at its own pace — a bot held back by 429s does not hold the other back — and the
accounts file is checked before anything starts (no token in it, a known ward)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import select

from bot.accounts import Account, AccountKind, AccountsError, load_accounts, secrets_of
from bot.app import App, register, with_accounts
from bot.config import Settings
from bot.group_import import import_groups, parse_groups_csv
from storage.accounts import UnknownWardError, list_accounts
from typer.testing import CliRunner

from bot.cli import Deps, cli
from storage.models import Identity, Invite, LinkAttempt, LinkCode, Outbox, OutboxStatus, Person
from storage.roles import create_invite
from tests.clocked import command, environment
from tests.conftest import START
from tests.fakes.telegram_api import FakeTelegram
from tests.support import Chat, free_port, join

OTHER_WARD = (
    "ward_code,ward_name,group_code,group_name,kind,target_percent,adults\n"
    "KHAC,Phường Khác,KHAC-TO1,Tổ Hoa Sen,tổ dân phố,80,\n"
    "KHAC,Phường Khác,KHAC-TO2,Tổ Bờ Sông,tổ dân phố,80,\n"
).encode()
BOT_A, BOT_B = "demo-tg", "khac-tg"


async def _second_ward(app: App) -> None:
    rows, errors = parse_groups_csv(OTHER_WARD)
    assert not errors
    async with app.sessions() as session, session.begin():
        await import_groups(session, rows=rows, actor="test", now=START)


async def _two_bots(app: App) -> None:
    await _second_ward(app)
    accounts = [Account(key=BOT_A, kind=AccountKind.TELEGRAM, ward="DEMO", username="demo_bot", rate=28),
                Account(key=BOT_B, kind=AccountKind.TELEGRAM, ward="KHAC", username="khac_bot", rate=10)]
    directory = await register(app, accounts)
    app.conversation.services = with_accounts(app.conversation.services, directory, accounts)


def _labels(chat: Chat) -> list[str]:
    return [o.label for o in chat.menu.options]


async def test_a_wards_bot_offers_its_own_wards_groups_only(ward: App) -> None:
    await _two_bots(ward)
    lan = Chat(ward.conversation, channel=BOT_A, user="77", name="Lan")
    # Ward B's join link opened in ward A's bot: as if unknown, and ward A's groups offered.
    await lan.send("/start g_KHAC-TO1")
    await lan.press("Đồng ý")
    replies = await lan.press("Đúng rồi")  # her name
    assert "Mã tổ trong đường dẫn không đúng" in lan.texts(replies)
    assert "Phường Mẫu" in lan.menu.text and "Phường Khác" not in lan.menu.text
    assert "Tổ dân phố 1" in _labels(lan) and not any("Hoa Sen" in label for label in _labels(lan))
    # Searching for ward B's group by name finds nothing here.
    replies = await lan.send("Hoa Sen")
    assert "Hoa Sen" not in lan.texts(replies) and not any("Hoa Sen" in label for label in _labels(lan))
    # A forged press of ward B's group changes nothing.
    async with ward.sessions() as session:
        khac = (await session.exec(select(Person).join(Identity, Identity.person_id == Person.id)
                                   .where(Identity.channel == BOT_A))).one()
    await lan.action("group:set:999")
    assert khac.group_id is None

    # The same Telegram user on ward B's bot is another resident, who joins ward B's group.
    lan_b = Chat(ward.conversation, channel=BOT_B, user="77", name="Lan")
    await join(lan_b, group_code="KHAC-TO1")
    async with ward.sessions() as session:
        identities = (await session.exec(select(Identity).order_by(Identity.channel))).all()
        assert [(i.channel, i.external_id) for i in identities] == [(BOT_A, "77"), (BOT_B, "77")]
        assert identities[0].person_id != identities[1].person_id
        people = {p.id: p for p in (await session.exec(select(Person))).all()}
        b_person = people[identities[1].person_id]
        assert b_person.group_id is not None and people[identities[0].person_id].group_id is None
        rows = await list_accounts(session)
    assert [(r.key, r.ward_code, r.identities) for r in rows] == [(BOT_A, "DEMO", 1), (BOT_B, "KHAC", 1)]


async def test_another_wards_leader_invitation_is_unknown_in_this_wards_bot(ward: App) -> None:
    await _two_bots(ward)
    async with ward.sessions() as session, session.begin():
        from storage.groups import find_group_by_code

        group = await find_group_by_code(session, code="KHAC-TO2")
        assert group is not None and group.id is not None
        invite = await create_invite(session, group_id=group.id, created_by=None, now=START)
        code = invite.code
    minh = Chat(ward.conversation, channel=BOT_A, user="88", name="Minh")
    await join(minh, group_code="DEMO-TDP03")
    replies = await minh.send(f"/start ld_{code}")
    assert "Link mời này không đúng" in minh.texts(replies)
    async with ward.sessions() as session:
        assert (await session.exec(select(Invite.used_by).where(Invite.code == code))).one() is None
    # In ward B's bot the same invitation works.
    minh_b = Chat(ward.conversation, channel=BOT_B, user="88", name="Minh")
    await join(minh_b, group_code="KHAC-TO1")
    replies = await minh_b.send(f"/start ld_{code}")
    assert "Tổ Bờ Sông" in minh_b.texts(replies) and "không đúng" not in minh_b.texts(replies)


async def test_join_links_open_the_groups_own_wards_bot(ward: App) -> None:
    await _two_bots(ward)
    services = ward.conversation.services
    async with ward.sessions() as session:
        from storage.groups import find_group_by_code

        demo = await find_group_by_code(session, code="DEMO-TDP01")
        khac = await find_group_by_code(session, code="KHAC-TO1")
    assert demo is not None and khac is not None
    assert services.bot_username(demo.ward_id) == "demo_bot"
    assert services.bot_username(khac.ward_id) == "khac_bot"


async def test_lienket_does_not_join_a_profile_of_another_wards_bot(ward: App) -> None:
    """Ward A's resident's link code typed in ward B's bot: refused (counted as a wrong code),
    nothing claimed, the owner not asked; typed in a bot serving every ward, it works."""
    await _two_bots(ward)
    lan = Chat(ward.conversation, channel=BOT_A, user="77", name="Lan")
    await join(lan, group_code="DEMO-TDP03")
    await lan.send("/lienket")
    await lan.press("Lấy mã liên kết")
    code = lan.last_text.split("Mã liên kết của bạn là: ")[1].split()[0]

    other = Chat(ward.conversation, channel=BOT_B, user="78", name="Lan ở phường khác")
    await other.send(f"/lienket {code}")
    assert "phường, xã khác" in other.last_text and "Mã đúng" not in other.last_text
    async with ward.sessions() as session:
        link = (await session.exec(select(LinkCode))).one()
        attempts = (await session.exec(select(LinkAttempt))).all()
        confirmations = (await session.exec(select(Outbox).where(Outbox.kind == "link_confirm"))).all()
    assert link.claimed_by is None and confirmations == []
    assert [a.ok for a in attempts] == [False]

    shared = Chat(ward.conversation, channel="zalo", user="z-77", name="Lan Zalo")  # serves every ward
    await shared.send(f"/lienket {code}")
    assert "Mã đúng" in shared.last_text


async def test_the_composers_estimate_paces_each_wards_bot_at_its_own_rate(ward: App) -> None:
    """Residents of both wards' bots: the estimate knows each bot's rate (no "unknown pace"),
    and the bot that takes longest bounds it."""
    from bot.broadcasting import estimate
    from bot.delivery.transport import OutboundMessage
    from storage.broadcasts import recipients_by_channel

    await _two_bots(ward)
    for n in range(3):
        await join(Chat(ward.conversation, channel=BOT_A, user=str(600 + n), name="A"), group_code="DEMO-TDP03")
    for n in range(2):
        await join(Chat(ward.conversation, channel=BOT_B, user=str(700 + n), name="B"), group_code="KHAC-TO1")
    async with ward.sessions() as session:
        counts = await recipients_by_channel(session, audience={"kind": "all"})
    assert counts == {BOT_A: 3, BOT_B: 2}
    services = ward.conversation.services
    found = estimate(OutboundMessage("Tin"), recipients=counts, rates=services.send_rates, start=START,
                     quiet=services.quiet)
    # 3 at 28/s take 0.107 s, 2 at 10/s take 0.2 s: ward B's bot bounds it.
    assert found is not None and found.sending.total_seconds() == pytest.approx(2 / 10, abs=1e-6)


async def test_an_account_of_a_ward_not_in_the_database_is_refused(ward: App) -> None:
    with pytest.raises(UnknownWardError, match="NOWHERE"):
        await register(ward, [Account(key="x-tg", kind=AccountKind.TELEGRAM, ward="NOWHERE")])


def _settings(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "accounts.toml"
    path.write_text(text, encoding="utf-8")
    return Settings(_env_file=None, accounts_file=path)  # type: ignore[call-arg]


def test_the_accounts_file_takes_tokens_from_the_environment_or_a_file_only(tmp_path: Path) -> None:
    secret = tmp_path / "b.token"
    secret.write_text("222:BBB\n")
    good = _settings(tmp_path, f'''
[[accounts]]
key = "a-tg"
kind = "telegram"
ward = "DEMO"
token_env = "A_TOKEN"
rate = 10

[[accounts]]
key = "b-zalo"
kind = "zalo"
ward = "KHAC"
token_file = "{secret}"
''')
    a, b = load_accounts(good, environ={"A_TOKEN": "111:AAA"})
    assert (a.key, a.kind, a.ward, a.rate) == ("a-tg", AccountKind.TELEGRAM, "DEMO", 10.0)
    assert a.token is not None and a.token.get_secret_value() == "111:AAA" and "111:AAA" not in repr(a)
    assert b.kind == AccountKind.ZALO_BOT and b.token is not None and b.token.get_secret_value() == "222:BBB"

    wrong = {
        'token = "111:AAA"': "secrets are never written in this file",
        'token_env = "MISSING"': "MISSING",
        'token_env = "A_TOKEN"\nkind2 = 1': "unknown field 'kind2'",
        'token_env = "BAD_TOKEN"': "<bot id>:<secret>",
    }
    for body, message in wrong.items():
        settings = _settings(tmp_path, f'[[accounts]]\nkey = "a-tg"\nkind = "telegram"\nward = "DEMO"\n{body}\n')
        with pytest.raises(AccountsError, match=message.replace("(", r"\(")):
            load_accounts(settings, environ={"A_TOKEN": "111:AAA", "BAD_TOKEN": "nope"})
    for text, message in {
        '[[accounts]]\nkey = "Tên có dấu"\n': "'key' must be",
        '[[accounts]]\nkey = "telegram"\nkind = "telegram"\nward = "D"\ntoken_env = "A_TOKEN"\n': "single-ward",
        '[[accounts]]\nkey = "x"\nkind = "fax"\n': "'kind' must be",
        "[[accounts]\n": "not valid TOML",
    }.items():
        with pytest.raises(AccountsError, match=message):
            load_accounts(_settings(tmp_path, text), environ={"A_TOKEN": "111:AAA"})
    twice = '[[accounts]]\nkey = "a"\nkind = "telegram"\nward = "D"\ntoken_env = "A_TOKEN"\n' * 2
    with pytest.raises(AccountsError, match="declared twice"):
        load_accounts(_settings(tmp_path, twice), environ={"A_TOKEN": "111:AAA"})


async def test_two_bots_send_their_own_wards_messages_at_their_own_pace(tmp_path: Path, ward: App) -> None:
    """A real worker process with two ward bots (two fake Bot APIs): a broadcast to both wards
    goes out through each resident's own bot; ward A's bot answers every send with 429, and
    ward B's residents get theirs all the same while ward A's wait, none lost."""
    await _second_ward(ward)
    residents = {BOT_A: [], BOT_B: []}  # type: dict[str, list[int]]
    for n in range(3):
        for key, group in ((BOT_A, "DEMO-TDP03"), (BOT_B, "KHAC-TO1")):
            user = 700 + n if key == BOT_A else 800 + n
            await join(Chat(ward.conversation, channel=key, user=str(user), name=f"Cư dân {user}"), group_code=group)
            residents[key].append(user)
    url = ward.settings.database_url
    await asyncio.to_thread(_stamp, url)
    sent = await asyncio.to_thread(CliRunner().invoke, cli, ["broadcast", "send", "--text", "Họp tổ tối nay lúc 19 giờ.",
                                                             "--to", "all"],
                                   env={"DATABASE_URL": url}, obj=Deps(clock=ward.clock))
    assert sent.exit_code == 0 and "cho 6 người" in sent.output, sent.output

    async with FakeTelegram(token="111:AAA", bot_id=111) as a, FakeTelegram(token="222:BBB", bot_id=222) as b:
        for fake, key in ((a, BOT_A), (b, BOT_B)):
            for user in residents[key]:
                fake.add_user(user, first_name=f"Cư dân {user}")
        # Ward A's bot is over its limit: every send refused with "retry after 600" (a stop must
        # not wait that out).
        a.fail_next("sendMessage", 429, "Too Many Requests: retry after 600", retry_after=600, times=100)
        (tmp_path / "accounts.toml").write_text(f'''
[[accounts]]
key = "{BOT_A}"
kind = "telegram"
ward = "DEMO"
token_env = "A_TOKEN"
api_url = "{a.url}"
username = "demo_bot"

[[accounts]]
key = "{BOT_B}"
kind = "telegram"
ward = "KHAC"
token_env = "B_TOKEN"
api_url = "{b.url}"
username = "khac_bot"
''', encoding="utf-8")
        env = environment(DATABASE_URL=url, ACCOUNTS_FILE=str(tmp_path / "accounts.toml"), A_TOKEN=a.token,
                          B_TOKEN=b.token, WEB_HOST="127.0.0.1", WEB_PORT=str(free_port()),
                          QUIET_HOURS="00:00-00:00", LOG_LEVEL="INFO")
        worker = await asyncio.create_subprocess_exec(
            *command(START, "run", "--role", "worker"), env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            await b.wait_for(lambda t: all(t.sent_count(u) for u in residents[BOT_B]), timeout=180)
            await a.wait_for(lambda t: t.calls_to("sendMessage"), timeout=180)
        finally:
            worker.terminate()
            _, err = await asyncio.wait_for(worker.communicate(), timeout=60)
        assert worker.returncode == 0, err.decode()[-2000:]
        assert "111:AAA" not in err.decode() and "222:BBB" not in err.decode()
    # Each bot wrote only to its own ward's residents.
    assert {c.params["chat_id"] for c in b.calls_to("sendMessage")} == set(residents[BOT_B])
    assert {c.params["chat_id"] for c in a.calls_to("sendMessage")} <= set(residents[BOT_A])
    assert all(a.sent_count(u) == 0 for u in residents[BOT_A])  # refused, every one
    async with ward.sessions() as session:
        rows = (await session.exec(select(Outbox.channel, Outbox.status))).all()
    by_bot = {key: sorted(status for channel, status in rows if channel == key) for key in (BOT_A, BOT_B)}
    assert by_bot[BOT_B] == [OutboxStatus.SENT] * 3
    # Waiting for Telegram's "retry after", not lost; the stop did not wait it out (each row went
    # back to pending with its lease released).
    assert by_bot[BOT_A] == [OutboxStatus.PENDING] * 3


def _stamp(url: str) -> None:
    """The test database was built with create_all: tell Alembic it is current."""
    from alembic import command as alembic
    from storage.migrate import alembic_config

    alembic.stamp(alembic_config(url), "head")


async def test_a_city_admin_administers_every_ward_and_is_not_asked_as_a_wards_admin(ward: App) -> None:
    """``hocvuso admin add … --city``: every ward in the admin menu and its pages; a ward's own
    admins (who get its help questions and report reminders) are still only that ward's."""
    from storage.groups import list_wards
    from storage.roles import add_admin, administers, admins_of

    await _second_ward(ward)
    city = Chat(ward.conversation, channel="telegram", user="99", name="Thành")
    await join(city, group_code="DEMO-TDP01")
    async with ward.sessions() as session, session.begin():
        _, chosen, new = await add_admin(session, channel="telegram", external_id="99", ward_code=None,
                                         now=START, city=True)
    assert chosen is None and new
    await city.send("/quantri")
    assert "nhiều phường/xã" in city.last_text
    assert {o.label for o in city.menu.options} >= {"Phường Mẫu", "Phường Khác"}
    await city.press("Phường Khác")
    assert city.last_text.startswith("🏛 Quản trị — Phường Khác")
    async with ward.sessions() as session:
        person_id = (await session.exec(select(Identity.person_id).where(Identity.external_id == "99"))).one()
        wards = await list_wards(session)
        assert person_id is not None and len(wards) == 2
        assert all([await administers(session, person_id=person_id, ward_id=w.id) for w in wards])  # type: ignore[arg-type]
        for w in wards:
            assert w.id is not None and person_id not in {p.id for p in await admins_of(session, ward_id=w.id)}


async def test_each_wards_zalo_oa_answers_on_its_own_webhook_under_its_own_account(
        tmp_path: Path, ward: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two wards' Official Accounts from the accounts file (secrets from the environment and a
    file): each OA's webhook is its own path, checked with its own secret key; a follower of
    ward B's OA is stored under ward B's account and offered ward B's groups only."""
    from bot.channels.zalo import build_zalo_channels
    from bot.web import create_web_app, start_web
    from tests.fakes.zalo_oa_api import FakeZaloOA

    await _second_ward(ward)
    async with FakeZaloOA(oa_id="1001", app_id="2001", secret_key="key-a") as oa_a, \
            FakeZaloOA(oa_id="1002", app_id="2002", app_secret="secret-b", secret_key="key-b") as oa_b:
        (tmp_path / "b.refresh").write_text("refresh-0\n")
        settings = _settings(tmp_path, f'''
[[accounts]]
key = "demo-oa"
kind = "zalo_oa"
ward = "DEMO"
oa_id = "1001"
app_id = 2001
app_secret_env = "A_APP_SECRET"
secret_key_env = "A_SECRET_KEY"
refresh_token_env = "A_REFRESH"
api_url = "{oa_a.url}"
oauth_url = "{oa_a.url}"

[[accounts]]
key = "khac-oa"
kind = "zalo_oa"
ward = "KHAC"
oa_id = "1002"
app_id = "2002"
app_secret_env = "B_APP_SECRET"
secret_key_env = "B_SECRET_KEY"
refresh_token_file = "{tmp_path / "b.refresh"}"
api_url = "{oa_b.url}"
oauth_url = "{oa_b.url}"
''')
        environ = {"A_APP_SECRET": oa_a.app_secret, "A_SECRET_KEY": "key-a", "A_REFRESH": "refresh-0",
                   "B_APP_SECRET": "secret-b", "B_SECRET_KEY": "key-b"}
        accounts = load_accounts(settings, environ=environ)
        assert {"key-a", "key-b", "secret-b", "refresh-0"} <= set(secrets_of(accounts))
        directory = await register(ward, accounts)
        ward.conversation.services = replace(ward.conversation.services, accounts=directory)
        zalo = build_zalo_channels(settings, conversation=ward.conversation, catalog=ward.catalog,
                                   sessions=ward.sessions, clock=ward.clock, accounts=accounts)
        assert sorted(c.webhook_path for c in zalo.channels) == ["/webhooks/zalo-oa/demo-oa", "/webhooks/zalo-oa/khac-oa"]
        runner = await start_web(create_web_app(channels=zalo.channels), host="127.0.0.1", port=0)
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/zalo-oa"
        try:
            # Ward A's OA event posted to ward B's path: its signature does not match B's key.
            assert await oa_a.post_event(f"{base}/khac-oa", oa_a.text_event("5001", "/start")) == 403
            assert await oa_b.post_event(f"{base}/khac-oa", oa_b.text_event("5001", "/start")) == 200
            for channel in zalo.channels:
                await channel.tasks.drain()  # type: ignore[attr-defined]
        finally:
            await runner.cleanup()
            await zalo.close()
    welcome = oa_b.texts("5001")
    assert welcome and oa_a.texts("5001") == []
    async with ward.sessions() as session:
        identities = (await session.exec(select(Identity))).all()
    assert [(i.channel, i.external_id) for i in identities] == [("khac-oa", "5001")]


def test_an_oa_account_needs_its_ids_and_secrets_from_outside_the_file(tmp_path: Path) -> None:
    base = '[[accounts]]\nkey = "x-oa"\nkind = "zalo_oa"\nward = "DEMO"\n'
    cases = {
        'oa_id = "1"\napp_id = "2"\napp_secret = "plain"\n': "secrets are never written in this file",
        'app_id = "2"\napp_secret_env = "S"\nsecret_key_env = "K"\n': "'oa_id'",
        'oa_id = "1"\napp_id = "2"\nsecret_key_env = "K"\n': "app_secret_env or app_secret_file is required",
        'oa_id = "1"\napp_id = "2"\napp_secret_env = "S"\nsecret_key_env = "K"\nusername = "x"\n':
            "unknown field 'username' for kind zalo_oa",
    }
    for extra, message in cases.items():
        with pytest.raises(AccountsError, match=message):
            load_accounts(_settings(tmp_path, base + extra), environ={"S": "s", "K": "k"})
