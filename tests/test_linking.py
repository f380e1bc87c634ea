"""``/lienket``: a Telegram and a Zalo identity become one person with one progress, no
completion of either side is lost — and only when the code's owner confirms on their own
channel. Guessing is limited, the owner's name is never shown to whoever types the code,
a forged confirmation changes nothing, and roles and help requests move with a merge."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sqlmodel import select

from bot.app import App
from bot.channels.zalo import ZaloBotClient, ZaloBotTransport
from bot.delivery.sender import Sender
from bot.delivery.transport import Pacing
from storage.linking import ALPHABET, CODE_LENGTH, MAX_FAILURES
from storage.models import (
    AuditLog,
    HelpRequest,
    Identity,
    LessonProgress,
    LinkCode,
    Outbox,
    Person,
    ProgressStatus,
    QuizAnswer,
    Role,
    RoleKind,
)
from tests.contract.drivers import open_driver
from tests.contract.journeys import join_group, learn_lesson
from tests.delivery.helpers import NO_QUIET, telegram_sender
from tests.staff import make_leader, snapshot
from tests.support import BUTTONS, NUMBERED, Chat, ManualClock, join, pass_lesson

CODE = re.compile(r"\b[A-Z0-9]{6}\b")
OWNER = "Lan Nguyễn"  # the owner's name: never shown to whoever types the code


def telegram(app: App, user: str = "111", name: str = OWNER) -> Chat:
    return Chat(app.conversation, user=user, name=name, channel="telegram", capabilities=BUTTONS)


def zalo(app: App, user: str = "zalo-111", name: str | None = "Lan Zalo") -> Chat:
    return Chat(app.conversation, user=user, name=name, channel="zalo", capabilities=NUMBERED)


async def get_code(chat: Chat) -> str:
    await chat.send("/lienket")
    await chat.press("Lấy mã liên kết")
    [code] = CODE.findall(chat.last_text.split("\n")[0])
    return code


async def person_of(app: App, chat: Chat) -> Person:
    async with app.sessions() as session:
        identity = (await session.exec(select(Identity).where(
            Identity.channel == chat.channel, Identity.external_id == chat.user))).one()
        person = await session.get(Person, identity.person_id)
    assert person is not None
    return person


async def identity_of(app: App, chat: Chat) -> Identity:
    async with app.sessions() as session:
        return (await session.exec(select(Identity).where(
            Identity.channel == chat.channel, Identity.external_id == chat.user))).one()


async def rows(app: App, model: type, person_id: int) -> list:  # type: ignore[type-arg]
    async with app.sessions() as session:
        return list((await session.exec(select(model).where(model.person_id == person_id))).all())  # type: ignore[attr-defined]


async def all_rows(app: App, model: type) -> list[Any]:
    async with app.sessions() as session:
        return list((await session.exec(select(model).order_by(model.id))).all())  # type: ignore[attr-defined]


async def outbox(app: App, kind: str) -> list[Outbox]:
    return [r for r in await all_rows(app, Outbox) if r.kind == kind]


async def confirmation_button(app: App, label: str) -> str:
    """The action of a button in the newest confirmation the owner was sent."""
    row = (await outbox(app, "link_confirm"))[-1]
    [action] = [a for text, a in row.payload["options"] if label in text]
    return action


async def link(app: App, owner: Chat, claimer: Chat, typed: str) -> None:
    """The claimer types the code; the owner presses "✅ Đúng, liên kết" in the message the
    outbox sends them."""
    await claimer.send(f"/lienket {typed}")
    assert "Mã đúng" in claimer.last_text
    await owner.action(await confirmation_button(app, "Đúng, liên kết"))


async def test_linking_merges_different_completions_of_both_sides_once_the_owner_confirms(
    ward: App, clock: ManualClock
) -> None:
    first, second = list(ward.lessons)[:2]
    tg, zl = telegram(ward), zalo(ward)
    await join(tg)
    await pass_lesson(tg, first)
    await join(zl)
    await pass_lesson(zl, second)
    zalo_person = await person_of(ward, zl)

    code = await get_code(tg)
    assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    assert f"/lienket {code}" in tg.last_text and "10 phút" in tg.last_text
    clock.advance(minutes=3)
    await zl.send(f"/lienket {code}")
    assert "Mã đúng" in zl.last_text and "xác nhận ở ứng dụng đã tạo mã" in zl.last_text
    assert OWNER not in zl.texts()  # whose code it is, is never said
    # Nothing is joined yet: the owner is asked on their own channel, now.
    assert (await person_of(ward, zl)).id == zalo_person.id != (await person_of(ward, tg)).id
    [ask] = await outbox(ward, "link_confirm")
    assert ask.identity_id == (await identity_of(ward, tg)).id and ask.due_at == clock.now()
    assert "Có người vừa gõ mã liên kết của bạn trên Zalo" in ask.payload["text"]
    [used] = await all_rows(ward, LinkCode)
    assert used.claimed_by == (await identity_of(ward, zl)).id and used.used_at is None
    assert [o[0] for o in ask.payload["options"]] == ["✅ Đúng, liên kết", "❌ Không phải tôi"]
    await tg.action(await confirmation_button(ward, "Đúng, liên kết"))
    assert "Đã liên kết xong với tài khoản Zalo" in tg.last_text
    [done] = await outbox(ward, "link_done")
    assert done.identity_id == (await identity_of(ward, zl)).id and "Đã liên kết xong" in done.payload["text"]

    person = await person_of(ward, tg)
    assert (await person_of(ward, zl)).id == person.id  # one person, two identities
    progress = {p.lesson_id: p for p in await rows(ward, LessonProgress, person.id)}
    assert {k: (p.status, p.score) for k, p in progress.items()} == {
        first.id: (ProgressStatus.COMPLETED, 3), second.id: (ProgressStatus.COMPLETED, 3)}
    assert len(await rows(ward, QuizAnswer, person.id)) == 6
    await zl.send("/tiendo")
    assert f"2/{len(ward.lessons)}" in zl.last_text

    async with ward.sessions() as session:
        tombstone = await session.get(Person, zalo_person.id)
        [entry] = (await session.exec(select(AuditLog).where(AuditLog.action == "identity.link"))).all()
        [used] = (await session.exec(select(LinkCode))).all()
    assert tombstone is not None and tombstone.deleted_at is not None
    assert (tombstone.display_name, tombstone.group_id, tombstone.consent_at) == (None, None, None)
    assert await rows(ward, LessonProgress, zalo_person.id) == []
    assert entry.actor == f"person:{person.id}" and "Lan" not in str(entry.details)
    assert entry.details == {"channel": "zalo", "merged_person": zalo_person.id, "moved_lessons": 1,
                             "combined_lessons": 0, "moved_roles": 0, "moved_requests": 0}
    assert used.used_at == clock.now()

    # Single use: a third identity cannot use it again; a second press changes nothing.
    other = zalo(ward, user="zalo-222")
    await other.send(f"/lienket {code}")
    assert "không đúng hoặc đã hết hạn" in other.last_text
    await tg.action(await confirmation_button(ward, "Đúng, liên kết"))
    assert "không còn hiệu lực" in tg.last_text


async def test_both_completed_the_same_lesson_keeps_the_better_score_and_the_earlier_completion(
    ward: App, clock: ManualClock
) -> None:
    lesson = ward.lessons.first
    tg, zl = telegram(ward), zalo(ward)
    await join(tg)
    await pass_lesson(tg, lesson, correct=1)  # failed
    await pass_lesson(tg, lesson, correct=2)  # passed with 2/3, attempt 2
    earlier = clock.now()
    clock.advance(days=1)
    await join(zl)
    await pass_lesson(zl, lesson)  # passed with 3/3, attempt 1, a day later

    code = await get_code(zl)  # this time Zalo keeps, Telegram joins it
    await link(ward, zl, tg, f"{code.lower()[:3]} {code.lower()[3:]}")  # typed loosely

    person = await person_of(ward, zl)
    assert (await person_of(ward, tg)).id == person.id
    [progress] = await rows(ward, LessonProgress, person.id)
    assert (progress.status, progress.score, progress.attempts, progress.completed_at) == (
        ProgressStatus.COMPLETED, 3, 2, earlier)
    answers = await rows(ward, QuizAnswer, person.id)
    # Zalo's attempt 1 stays; Telegram's attempt 1 has the same key and is dropped; its attempt 2 moves.
    assert sorted((a.attempt, a.correct) for a in answers) == [
        (1, True), (1, True), (1, True), (2, False), (2, True), (2, True)]
    # The next attempt is number 3 and collides with nothing.
    await pass_lesson(tg, lesson)
    [progress] = await rows(ward, LessonProgress, person.id)
    assert progress.attempts == 3 and len(await rows(ward, QuizAnswer, person.id)) == 9


async def test_codes_expire_are_replaced_and_the_owner_can_answer_with_lienket(ward: App, clock: ManualClock) -> None:
    tg = telegram(ward)
    await join(tg)
    await pass_lesson(tg, ward.lessons.first)
    old = await get_code(tg)
    clock.advance(minutes=11)
    late = zalo(ward, user="late")
    await late.send(f"/lienket {old}")
    assert "đã hết hạn" in late.last_text

    replaced = await get_code(tg)
    newest = await get_code(tg)  # asking again: only the newest code works
    await late.send(f"/lienket {replaced}")
    assert "đã hết hạn" in late.last_text

    # Someone who never started on Zalo: /lienket asks for the code; the owner answers with
    # /lienket on their own channel (the message may wait for the morning).
    fresh = zalo(ward, user="fresh", name=None)
    await fresh.send("/lienket")
    assert "gõ mã liên kết" in fresh.last_text
    await fresh.send("khong phai ma")
    assert "không đúng" in fresh.last_text
    await fresh.send(newest)
    assert "Mã đúng" in fresh.last_text
    await tg.send("/lienket")
    assert "Có người vừa gõ mã liên kết của bạn trên Zalo" in tg.last_text
    await tg.press("Đúng, liên kết")
    assert (await person_of(ward, fresh)).id == (await person_of(ward, tg)).id
    await fresh.send("/tiendo")
    assert f"1/{len(ward.lessons)}" in fresh.last_text
    async with ward.sessions() as session:
        assert len((await session.exec(select(Person))).all()) == 1  # nothing to merge: no tombstone

    # The old one-sided confirmation is gone; an own code says so.
    stranger = zalo(ward, user="stranger")
    await stranger.action("link:yes")
    assert "Nút này đã cũ" in stranger.last_text
    await fresh.send(f"/lienket {await get_code(tg)}")
    assert "đã được liên kết rồi" in fresh.last_text


async def test_guessing_is_stopped_after_five_wrong_codes(ward: App, clock: ManualClock) -> None:
    tg = telegram(ward)
    await join(tg)
    code = await get_code(tg)
    wrong = "".join(ALPHABET[(ALPHABET.index(c) + 1) % len(ALPHABET)] for c in code)
    guesser = zalo(ward, user="guesser", name="Kẻ đoán mã")
    await guesser.send("/lienket")
    await guesser.send("cho tôi hỏi")  # not shaped like a code: not an attempt
    for _ in range(MAX_FAILURES - 1):
        await guesser.send(wrong)
        assert "không đúng" in guesser.last_text
    await guesser.send(wrong)  # the fifth wrong code: told at once to wait
    assert "thử lại sau khoảng 60 phút" in guesser.last_text
    clock.advance(minutes=1)
    await guesser.send(f"/lienket {code}")  # even the right code: no answer tells a guesser it is right
    assert "thử lại sau khoảng 60 phút" in guesser.last_text and "Mã đúng" not in guesser.texts()
    [row] = await all_rows(ward, LinkCode)
    assert row.claimed_by is None and await outbox(ward, "link_confirm") == []

    clock.advance(minutes=60)  # the failures left the window
    await guesser.send(f"/lienket {await get_code(tg)}")
    assert "Mã đúng" in guesser.last_text


async def test_the_owner_says_no_and_the_claimer_learns_nothing(ward: App, clock: ManualClock) -> None:
    tg, zl = telegram(ward), zalo(ward, user="attacker", name="Người lạ")
    await join(tg)
    await join(zl)
    code = await get_code(tg)
    await zl.send(f"/lienket {code}")
    before = len(zl.history)
    await tg.action(await confirmation_button(ward, "Không phải tôi"))
    assert "không ai được nối vào hồ sơ học của bạn" in tg.last_text
    assert len(zl.history) == before and await outbox(ward, "link_done") == []  # the claimer is told nothing
    assert (await person_of(ward, zl)).id != (await person_of(ward, tg)).id
    [row] = await all_rows(ward, LinkCode)
    assert (row.failed_attempts, row.used_at, row.expires_at) == (1, None, clock.now())  # dead
    await zl.send(f"/lienket {code}")
    assert "không đúng hoặc đã hết hạn" in zl.last_text
    await tg.action(await confirmation_button(ward, "Đúng, liên kết"))  # changing one's mind: too late
    assert "không còn hiệu lực" in tg.last_text
    assert (await person_of(ward, zl)).id != (await person_of(ward, tg)).id


async def test_a_code_claimed_by_two_identities_dies(ward: App, clock: ManualClock) -> None:
    tg = telegram(ward)
    await join(tg)
    code = await get_code(tg)
    first, second = zalo(ward, user="first"), zalo(ward, user="second")
    await first.send(f"/lienket {code}")
    await first.send(f"/lienket {code}")  # typed twice by the same account: still one claim
    assert "Mã đúng" in first.last_text
    await second.send(f"/lienket {code}")  # known to two accounts: compromised
    assert "không đúng hoặc đã hết hạn" in second.last_text
    [row] = await all_rows(ward, LinkCode)
    assert row.failed_attempts == 1 and row.claimed_by is None
    assert len(await outbox(ward, "link_confirm")) == 1
    await tg.action(await confirmation_button(ward, "Đúng, liên kết"))
    assert "không còn hiệu lực" in tg.last_text
    people = {p.id for p in await all_rows(ward, Person)}
    assert len(people) == 1  # first and second never consented here: nobody was joined
    assert all(i.person_id is None for i in await all_rows(ward, Identity) if i.channel == "zalo")


async def test_a_forged_confirmation_by_anyone_but_the_owner_changes_nothing(ward: App, clock: ManualClock) -> None:
    tg, zl = telegram(ward), zalo(ward, user="attacker", name="Người lạ")
    stranger = telegram(ward, user="999", name="Người khác")
    for chat in (tg, zl, stranger):
        await join(chat)
    code = await get_code(tg)
    await zl.send(f"/lienket {code}")
    ok = await confirmation_button(ward, "Đúng, liên kết")
    before = await snapshot(ward)
    codes = [(c.claimed_by, c.used_at, c.expires_at) for c in await all_rows(ward, LinkCode)]
    await zl.action(ok)  # the claimer confirms their own claim
    assert "không còn hiệu lực" in zl.last_text
    await stranger.action(ok)  # someone else entirely
    assert "không còn hiệu lực" in stranger.last_text
    await stranger.action(ok.replace("link:ok:", "link:deny:"))
    await zl.action("link:ok:999999")
    await zl.action("link:ok:x")
    assert await snapshot(ward) == before
    assert [(c.claimed_by, c.used_at, c.expires_at) for c in await all_rows(ward, LinkCode)] == codes
    await tg.action(ok)  # the owner still can
    assert (await person_of(ward, zl)).id == (await person_of(ward, tg)).id


async def test_roles_and_help_requests_move_with_a_merge(ward: App, clock: ManualClock) -> None:
    tg, zl = telegram(ward), zalo(ward, name="Ba Zalo")
    await join(tg)
    await join(zl)
    await make_leader(ward, zl, "DEMO-TDP03")
    await make_leader(ward, zl, "DEMO-TDP05")
    await make_leader(ward, tg, "DEMO-TDP05")  # both hold this one: kept once
    await zl.send("/hotro")  # a leader of their own group: nobody else to ask, kept
    await zl.press("Vẫn để lại câu hỏi")
    await zl.send("Làm sao đổi mật khẩu?")
    zalo_person, owner = await person_of(ward, zl), await person_of(ward, tg)
    [request] = await all_rows(ward, HelpRequest)
    assert request.person_id == zalo_person.id

    await link(ward, tg, zl, await get_code(tg))
    roles = sorted((r.person_id, r.kind, r.group_id) for r in await all_rows(ward, Role))
    groups = {g: (await _group_id(ward, g)) for g in ("DEMO-TDP03", "DEMO-TDP05")}
    assert roles == sorted([(owner.id, RoleKind.LEADER, groups["DEMO-TDP03"]),
                            (owner.id, RoleKind.LEADER, groups["DEMO-TDP05"])])
    [request] = await all_rows(ward, HelpRequest)
    assert request.person_id == owner.id
    [entry] = [a for a in await all_rows(ward, AuditLog) if a.action == "identity.link"]
    assert (entry.details["moved_roles"], entry.details["moved_requests"]) == (1, 1)
    await zl.send("/nhom")  # the Zalo account leads both groups now, as the person does
    assert [o.label for o in zl.menu.options][:2] == ["Tổ dân phố 3", "Tổ dân phố 5"]


async def _group_id(app: App, code: str) -> int:
    from tests.staff import group

    found = await group(app, code)
    assert found.id is not None
    return found.id


async def test_linking_a_telegram_and_a_zalo_identity_over_the_real_adapters(ward: App, clock: ManualClock) -> None:
    """Both learned the first lesson, on Telegram and on Zalo. The Zalo account types the
    Telegram account's code; the real sender brings the question to Telegram, where it is
    confirmed; the real sender tells Zalo. Linked, they share one progress."""
    async with open_driver("telegram", ward) as tg, open_driver("zalo", ward) as zl:
        for d in (tg, zl):
            await join_group(d)
            await learn_lesson(d, ward.lessons.first)
        await tg.send("/lienket")
        await tg.choose("Lấy mã liên kết")
        [code] = CODE.findall(tg.last_text().split("\n")[0])
        await zl.send(f"/lienket {code}")
        assert "Mã đúng" in zl.last_text() and "Lan Nguyễn" not in zl.last_text()

        fake_tg = tg.tg  # type: ignore[attr-defined]
        user = int(tg.external_id)
        sender = telegram_sender(ward.sessions, fake_tg, clock=clock)
        task = asyncio.create_task(sender.run())
        try:
            await fake_tg.wait_for(lambda t: "Có người vừa gõ mã" in (t.last_message(user).text or ""), timeout=10)
        finally:
            sender.stop()
            await asyncio.wait_for(task, 10)
            await sender.transport.bot.session.close()
        await tg.choose("Đúng, liên kết")
        assert "Đã liên kết xong với tài khoản Zalo" in tg.last_text()

        fake_zalo = zl.zalo  # type: ignore[attr-defined]
        client = ZaloBotClient(token=fake_zalo.token, api_url=fake_zalo.url)
        zalo_sender = Sender(sessions=ward.sessions, transport=ZaloBotTransport(
            client=client, catalog=ward.catalog, pacing=Pacing(per_second=50)), clock=clock, quiet=NO_QUIET,
            idle_seconds=0.05)
        task = asyncio.create_task(zalo_sender.run())
        try:
            await fake_zalo.wait_for(lambda: zl.said("Đã liên kết xong!"), timeout=10)
        finally:
            zalo_sender.stop()
            await asyncio.wait_for(task, 10)
            await client.close()
        await learn_lesson(zl, list(ward.lessons)[1])
        await tg.send("/tiendo")
        assert f"2/{len(ward.lessons)}" in tg.last_text()
    async with ward.sessions() as session:
        people = (await session.exec(select(Person).where(Person.deleted_at.is_(None)))).all()
        [person] = people
        identities = (await session.exec(select(Identity).where(Identity.person_id == person.id))).all()
        progress = (await session.exec(select(LessonProgress).where(LessonProgress.person_id == person.id))).all()
    assert sorted(i.channel for i in identities) == ["telegram", "zalo"]
    assert sorted((p.lesson_id, p.status) for p in progress) == [
        (lesson.id, ProgressStatus.COMPLETED) for lesson in list(ward.lessons)[:2]]
