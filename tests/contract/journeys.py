"""Journeys written once against :class:`~tests.contract.drivers.Driver`, and what each
leaves in the database (channel-free, so outcomes can be compared across channels)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from bot.app import App
from bot.curriculum import Lesson, LessonLibrary
from storage.models import ConversationState, Identity, LessonProgress, Person, QuizAnswer, ResidentGroup
from tests.contract.drivers import Driver

NAME = "Lan Nguyễn"


async def join_group(d: Driver, *, name: str = NAME, group_code: str = "DEMO-TDP03") -> None:
    """Consent → name (the channel's, or typed where the channel gives none) → group
    (a demo ward group ``DEMO-TDP0<n>``, "Tổ dân phố <n>")."""
    await d.send(f"/start g_{group_code}")
    assert "Bạn có đồng ý không?" in d.last_text()
    await d.choose("Đồng ý")
    if d.display_name:
        assert name in d.last_text()
        await d.choose("Đúng rồi")
    else:
        await d.send(name)
    assert f"Tổ dân phố {int(group_code[-2:])}, Phường Mẫu" in d.last_text()
    await d.choose("Đúng rồi")
    assert "Cảm ơn" in d.last_text()


async def learn_lesson(d: Driver, lesson: Lesson) -> None:
    """Read every card, pass the quiz with every answer right."""
    await d.choose("Học tiếp")
    assert lesson.cards[0].text in d.last_text()
    for number in range(1, len(lesson.cards)):
        await d.choose("Tiếp")
        assert lesson.cards[number].text in d.last_text()
    await d.choose("Làm bài kiểm tra")
    for question in lesson.quiz.questions:
        assert question.text in d.last_text()
        await d.choose(question.options[question.answer_index])
    total = len(lesson.quiz.questions)
    assert "hoàn thành" in d.last_text() and f"{total}/{total}" in d.last_text()


async def resident_journey(d: Driver, lessons: LessonLibrary) -> None:
    """consent → group → lesson → quiz → completion → progress."""
    await join_group(d)
    await learn_lesson(d, lessons.first)
    await d.send("/tiendo")
    assert f"1/{len(lessons)}" in d.last_text() and "▓" in d.last_text()


async def outcome(app: App, d: Driver) -> dict[str, Any]:
    """What a journey left in the database for this resident, without ids or times."""
    async with app.sessions() as session:
        identity = (await session.exec(select(Identity).where(
            Identity.channel == d.channel, Identity.external_id == d.external_id))).one()
        person = await session.get(Person, identity.person_id)
        assert person is not None
        group = await session.get(ResidentGroup, person.group_id) if person.group_id else None
        progress = (await session.exec(select(LessonProgress).where(LessonProgress.person_id == person.id))).all()
        answers = (await session.exec(select(QuizAnswer).where(QuizAnswer.person_id == person.id))).all()
        state = (await session.exec(select(ConversationState).where(
            ConversationState.identity_id == identity.id))).one()
        identities = (await session.exec(select(Identity).where(Identity.person_id == person.id))).all()
    return {
        "name": person.display_name,
        "group": group.code if group else None,
        "consent_version": person.consent_version,
        "progress": sorted((p.lesson_id, p.lesson_version, p.status, p.score, p.attempts,
                            p.completed_at is not None) for p in progress),
        "answers": sorted((a.lesson_id, a.lesson_version, a.attempt, a.question_id, a.choice, a.correct)
                          for a in answers),
        "step": state.step,
        "identities": len(identities),
        "seen": identity.last_seen_at is not None,
    }
