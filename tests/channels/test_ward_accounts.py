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

from bot.accounts import Account, AccountKind, AccountsError, load_accounts
from bot.app import App, register
from bot.config import Settings
from bot.group_import import import_groups, parse_groups_csv
from storage.accounts import UnknownWardError, list_accounts
from typer.testing import CliRunner

from bot.cli import Deps, cli
from storage.models import Identity, Invite, Outbox, OutboxStatus, Person
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
    accounts = [Account(key=BOT_A, kind=AccountKind.TELEGRAM, ward="DEMO", username="demo_bot"),
                Account(key=BOT_B, kind=AccountKind.TELEGRAM, ward="KHAC", username="khac_bot")]
    directory = await register(app, accounts)
    app.conversation.services = replace(app.conversation.services, accounts=directory)


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
            await b.wait_for(lambda t: all(t.sent_count(u) for u in residents[BOT_B]), timeout=60)
            await a.wait_for(lambda t: t.calls_to("sendMessage"), timeout=60)
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
