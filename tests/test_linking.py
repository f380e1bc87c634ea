"""``/lienket``: a Telegram and a Zalo identity become one person with one progress, and
no completion of either side is lost."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.app import App
from storage.linking import ALPHABET, CODE_LENGTH
from storage.models import AuditLog, Identity, LessonProgress, LinkCode, Person, ProgressStatus, QuizAnswer
from tests.contract.drivers import open_driver
from tests.contract.journeys import join_group, learn_lesson
from tests.support import BUTTONS, NUMBERED, Chat, ManualClock, join, pass_lesson

CODE = re.compile(r"\b[A-Z0-9]{6}\b")


def telegram(app: App, user: str = "111", name: str = "Lan Nguyễn") -> Chat:
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


async def rows(app: App, model: type, person_id: int) -> list:  # type: ignore[type-arg]
    async with app.sessions() as session:
        return list((await session.exec(select(model).where(model.person_id == person_id))).all())  # type: ignore[attr-defined]


async def test_linking_merges_different_completions_of_both_sides(ward: App, clock: ManualClock) -> None:
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
    assert "Lan Nguyễn" in zl.last_text and "gộp" in zl.last_text
    await zl.press("Đồng ý nối")
    assert "Đã liên kết" in zl.texts(zl.history[-1:])

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
                             "combined_lessons": 0}
    assert used.used_at == clock.now()

    # Single use: a third identity cannot use it again.
    other = zalo(ward, user="zalo-222")
    await other.send(f"/lienket {code}")
    assert "không đúng hoặc đã hết hạn" in other.last_text


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
    await tg.send(f"/lienket {code.lower()[:3]} {code.lower()[3:]}")  # typed loosely
    await tg.press("Đồng ý nối")

    person = await person_of(ward, zl)
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


async def test_codes_expire_are_replaced_and_can_be_typed_after_a_prompt(ward: App, clock: ManualClock) -> None:
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

    # Someone who never started on Zalo: /lienket asks for the code, then a confirmation.
    fresh = zalo(ward, user="fresh", name=None)
    await fresh.send("/lienket")
    assert "gõ mã liên kết" in fresh.last_text
    await fresh.send("khong phai ma")
    assert "không đúng" in fresh.last_text
    await fresh.send(newest)
    await fresh.action("link:yes")  # pressed with the confirmation pending
    assert (await person_of(ward, fresh)).id == (await person_of(ward, tg)).id
    await fresh.send("/tiendo")
    assert f"1/{len(ward.lessons)}" in fresh.last_text
    async with ward.sessions() as session:
        assert len((await session.exec(select(Person))).all()) == 1  # nothing to merge: no tombstone

    # A forged confirmation outside the question does nothing; an own code says so.
    stranger = zalo(ward, user="stranger")
    await stranger.action("link:yes")
    assert "Nút này đã cũ" in stranger.last_text
    await fresh.send(f"/lienket {await get_code(tg)}")
    assert "đã được liên kết rồi" in fresh.last_text


async def test_linking_a_telegram_and_a_zalo_identity_over_the_real_adapters(ward: App) -> None:
    """Both learned the first lesson, on Telegram and on Zalo; linked, they share one
    progress, and what either learns next shows on both."""
    async with open_driver("telegram", ward) as tg, open_driver("zalo", ward) as zl:
        for d in (tg, zl):
            await join_group(d)
            await learn_lesson(d, ward.lessons.first)
        await tg.send("/lienket")
        await tg.choose("Lấy mã liên kết")
        [code] = CODE.findall(tg.last_text().split("\n")[0])
        await zl.send(f"/lienket {code}")
        await zl.choose("Đồng ý nối")
        assert "Đã liên kết" in zl.messages[-2] + zl.last_text()
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
