"""Where a resident left off: the lesson, the card she read last, a quiz half answered.

Leaving a lesson (a command, the menu, a reminder) loses nothing: "📖 Học tiếp" and
``/hoc`` open the same card again, and a quiz attempt with questions still unanswered is
resumed at the first of them with the answers already given (never a new attempt).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.conversation import Context
from bot.curriculum import Lesson
from handlers.steps import Step
from storage.models import LessonProgress, ProgressStatus
from storage.progress import answers_of_attempt, progress_in


@dataclass(frozen=True)
class OpenQuiz:
    """An attempt begun and not finished: its number and the questions answered (by id)."""

    attempt: int
    answered: frozenset[str]

    def next_question(self, lesson: Lesson) -> int:
        return next(i for i, q in enumerate(lesson.quiz.questions) if q.id not in self.answered)


@dataclass(frozen=True)
class Place:
    lesson: Lesson
    progress: LessonProgress | None
    quiz: OpenQuiz | None


async def open_quiz(ctx: Context, lesson: Lesson, progress: LessonProgress | None) -> OpenQuiz | None:
    """The attempt of ``lesson`` begun and not finished, if there is one."""
    assert ctx.person is not None and ctx.person.id is not None
    if progress is None or progress.attempts < 1:
        return None
    answers = await answers_of_attempt(ctx.session, person_id=ctx.person.id, lesson_id=lesson.id,
                                       attempt=progress.attempts)
    answered = frozenset(a.question_id for a in answers)
    if all(q.id in answered for q in lesson.quiz.questions):
        return None  # finished (passed or not): "Làm lại" begins a new attempt
    return OpenQuiz(progress.attempts, answered)


async def where_she_was(ctx: Context) -> Place | None:
    """The lesson to go on with: the one whose quiz she is in, else the lesson in progress she
    touched last, else the first not completed; None once every lesson is completed."""
    assert ctx.person is not None and ctx.person.id is not None
    progress = await progress_in(ctx.transaction, person_id=ctx.person.id)
    current = ctx.lessons.get(str(ctx.data.get("lesson", ""))) if ctx.state.step == Step.QUIZ else None
    if current is None:
        begun = [(row.updated_at, ctx.lessons.get(row.lesson_id)) for row in progress.values()
                 if row.status == ProgressStatus.IN_PROGRESS]
        begun = [(at, lesson) for at, lesson in begun if lesson is not None and at is not None]
        if begun:
            current = max(begun, key=lambda pair: (pair[0], -ctx.lessons.position(pair[1].id)))[1]
    if current is None:
        current = next((lesson for lesson in ctx.lessons if lesson.id not in progress
                        or progress[lesson.id].status != ProgressStatus.COMPLETED), None)
    if current is None:
        return None
    row = progress.get(current.id)
    return Place(current, row, await open_quiz(ctx, current, row))


async def next_unfinished(ctx: Context, after: Lesson) -> Lesson | None:
    """The first lesson after ``after`` not completed, going round to the first ones."""
    assert ctx.person is not None and ctx.person.id is not None
    progress = await progress_in(ctx.transaction, person_id=ctx.person.id)
    lessons = list(ctx.lessons)
    start = ctx.lessons.position(after.id)
    for lesson in lessons[start:] + lessons[: start - 1]:
        if lesson.id not in progress or progress[lesson.id].status != ProgressStatus.COMPLETED:
            return lesson
    return None
