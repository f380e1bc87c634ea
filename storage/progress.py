"""Lesson progress and quiz answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert, insert_of
from storage.driver import UpdateTransaction
from storage.models import LessonProgress, ProgressStatus, QuizAnswer


# The reads and the card's upsert of a resident's every update are built once, bound per call:
# composing a statement costs about as much CPU as running it (docs/benchmarks.md).

@cache
def _progress_statement(one_lesson: bool) -> Any:
    query = select(LessonProgress).where(LessonProgress.person_id == bindparam("person_id"))
    return query.where(LessonProgress.lesson_id == bindparam("lesson_id")) if one_lesson else query


@cache
def _answers_statement() -> Any:
    return select(QuizAnswer).where(
        QuizAnswer.person_id == bindparam("person_id"), QuizAnswer.lesson_id == bindparam("lesson_id"),
        QuizAnswer.attempt == bindparam("attempt"),
    )


@cache
def _read_to_card_statement(insert: Callable[..., Any]) -> Any:
    table = LessonProgress.__table__  # type: ignore[attr-defined]
    now, card = bindparam("now", type_=table.c.updated_at.type), bindparam("card", type_=table.c.card.type)
    return insert(table).values(
        person_id=bindparam("person_id"), lesson_id=bindparam("lesson_id"), lesson_version=bindparam("lesson_version"),
        status=ProgressStatus.IN_PROGRESS.value, attempts=0, card=card, started_at=now, updated_at=now,
    ).on_conflict_do_update(index_elements=["person_id", "lesson_id"], set_={"card": card, "updated_at": now})


async def progress_of(session: AsyncSession, *, person_id: int) -> dict[str, LessonProgress]:
    rows = await session.exec(_progress_statement(False), params={"person_id": person_id})  # type: ignore[call-overload]
    return {p.lesson_id: p for p in rows.all()}


async def progress_in(tx: UpdateTransaction, *, person_id: int) -> dict[str, LessonProgress]:
    """:func:`progress_of` in an update's transaction: by the driver's statement while nothing
    has gone through the update's session (nothing unwritten to see), else through it."""
    session = tx.session_used
    if session is not None:
        return await progress_of(session, person_id=person_id)
    rows = await tx.objects(LessonProgress, _progress_statement(False), {"person_id": person_id})
    return {p.lesson_id: p for p in rows}


async def get_progress(session: AsyncSession, *, person_id: int, lesson_id: str) -> LessonProgress | None:
    rows = await session.exec(_progress_statement(True),  # type: ignore[call-overload]
                              params={"person_id": person_id, "lesson_id": lesson_id})
    return rows.first()  # type: ignore[no-any-return]


async def start_lesson(
    session: AsyncSession, *, person_id: int, lesson_id: str, lesson_version: int, now: datetime
) -> LessonProgress:
    """The progress row for a lesson, created as *in progress* on first opening."""
    progress = await get_progress(session, person_id=person_id, lesson_id=lesson_id)
    if progress is None:
        progress = LessonProgress(
            person_id=person_id,
            lesson_id=lesson_id,
            lesson_version=lesson_version,
            started_at=now,
            updated_at=now,
        )
        session.add(progress)
        await session.flush()
    return progress


async def read_to_card(
    tx: UpdateTransaction, *, person_id: int, lesson_id: str, lesson_version: int, card: int, now: datetime
) -> None:
    """Remember ``card`` as the card of ``lesson_id`` read last, the progress row created *in
    progress* on first opening — in one statement (an upsert), since a resident turns cards
    far more often than anything else: nothing else of an existing row changes. By the
    driver's statement while the update's session is unused, else through the session."""
    params = {"person_id": person_id, "lesson_id": lesson_id, "lesson_version": lesson_version, "card": card,
              "now": now}
    session = tx.session_used
    if session is None:
        await tx.rows(_read_to_card_statement(insert_of(tx.dialect.name)), params)
    else:
        await session.exec(_read_to_card_statement(dialect_insert(session)), params=params)  # type: ignore[call-overload]
    # A row of this lesson read earlier in the transaction says the same now.
    for row in tx.loaded():
        if isinstance(row, LessonProgress) and (row.person_id, row.lesson_id) == (person_id, lesson_id):
            set_committed_value(row, "card", card)
            set_committed_value(row, "updated_at", now)


async def answers_of_attempt(
    session: AsyncSession, *, person_id: int, lesson_id: str, attempt: int
) -> Sequence[QuizAnswer]:
    rows = await session.exec(_answers_statement(),  # type: ignore[call-overload]
                              params={"person_id": person_id, "lesson_id": lesson_id, "attempt": attempt})
    return rows.all()  # type: ignore[no-any-return]


async def record_answer(
    session: AsyncSession,
    *,
    person_id: int,
    lesson_id: str,
    lesson_version: int,
    attempt: int,
    question_id: str,
    choice: int,
    correct: bool,
    now: datetime,
) -> QuizAnswer:
    answer = QuizAnswer(
        person_id=person_id,
        lesson_id=lesson_id,
        lesson_version=lesson_version,
        attempt=attempt,
        question_id=question_id,
        choice=choice,
        correct=correct,
        at=now,
    )
    session.add(answer)
    await session.flush()
    return answer


def record_result(
    progress: LessonProgress, *, score: int, passed: bool, lesson_version: int, now: datetime
) -> bool:
    """Apply a finished quiz to the progress row; returns True if it is a new completion.

    A completion is never taken away: a lower score on a later attempt keeps the earlier
    completion, its score and the version it was earned on. A re-pass on a newer version
    records that version and its score but keeps the first completion's date and who recorded
    it (``assisted_by``): the reports count completions by their first date (storage.figures).
    """
    progress.updated_at = now
    already = progress.status == ProgressStatus.COMPLETED
    if passed and (not already or lesson_version > progress.lesson_version):
        progress.status = ProgressStatus.COMPLETED
        progress.score = score
        progress.lesson_version = lesson_version
        if not already:
            progress.completed_at = now
        return not already
    if already and lesson_version != progress.lesson_version:
        return False  # a failed attempt on another version leaves the completion as earned
    progress.score = max(score, progress.score or 0)
    return False


async def count_completed(session: AsyncSession, *, person_id: int) -> int:
    query = select(func.count()).where(
        LessonProgress.person_id == person_id, LessonProgress.status == ProgressStatus.COMPLETED
    )
    return (await session.exec(query)).one()
