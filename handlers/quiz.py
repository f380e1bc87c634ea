"""The quiz after a lesson: one question at a time, instant feedback, then the score.

An answer's action names the lesson, the attempt and the question
(``ans:<lesson>:<attempt>:<question>:<option>``). Answers are step-bound actions: the engine
honours one only while it is offered (the current question), so an answer pressed twice, an
old button from an earlier attempt or forged data is never counted; the unique key of
``quiz_answer`` is the last line of defence.
"""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.i18n import Translate
from bot.core.messages import Marks
from bot.curriculum import Lesson
from handlers import certificate, resume
from handlers.common import int_arg
from handlers.fallback import stale_action
from handlers.steps import Step
from storage.models import ProgressStatus
from storage.progress import answers_of_attempt, get_progress, record_answer, record_result, start_lesson


async def start_quiz(ctx: Context) -> None:
    """``quiz:<lesson>``: the attempt begun and not finished, at its first unanswered question
    (the answers given stay); else a new attempt, first question."""
    assert ctx.person is not None and ctx.person.id is not None
    lesson = ctx.lessons.get(ctx.args[0]) if ctx.args and len(ctx.args) == 1 else None
    if lesson is None:
        await stale_action(ctx)
        return
    progress = await start_lesson(
        ctx.session, person_id=ctx.person.id, lesson_id=lesson.id, lesson_version=lesson.version, now=ctx.now
    )
    begun = await resume.open_quiz(ctx, lesson, progress)
    if begun is not None:
        number = begun.next_question(lesson)
        ctx.goto(Step.QUIZ, lesson=lesson.id, attempt=begun.attempt, question=number)
        ctx.say(ctx.t("quiz.resumed", answered=len(begun.answered), total=len(lesson.quiz.questions)))
        _ask(ctx, lesson, begun.attempt, number)
        return
    progress.attempts += 1
    progress.updated_at = ctx.now
    ctx.session.add(progress)
    ctx.goto(Step.QUIZ, lesson=lesson.id, attempt=progress.attempts, question=0)
    ctx.say(ctx.t("quiz.intro", count=len(lesson.quiz.questions), pass_mark=lesson.quiz.pass_mark))
    _ask(ctx, lesson, progress.attempts, 0)


def question_text(t: Translate, lesson: Lesson, number: int) -> str:
    """Question ``number`` as a resident reads it (the web dashboard's lesson page shows the same words)."""
    question = lesson.quiz.questions[number]
    return t("quiz.question", number=number + 1, total=len(lesson.quiz.questions), text=question.text)


def _ask(ctx: Context, lesson: Lesson, attempt: int, number: int) -> None:
    question = lesson.quiz.questions[number]
    options = [(text, f"ans:{lesson.id}:{attempt}:{number}:{i}") for i, text in enumerate(question.options)]
    # Lettered: an answer's own words may hold a number ("Mức 2"), which then never picks by place.
    ctx.ask(question_text(ctx.t, lesson, number), options, marks=Marks.LETTERS)


async def answer(ctx: Context) -> None:
    """``ans:<lesson>:<attempt>:<question>:<option>``."""
    assert ctx.person is not None and ctx.person.id is not None
    lesson = ctx.lessons.get(ctx.args[0]) if ctx.args else None
    attempt = int_arg(ctx, 1, low=1)
    number = int_arg(ctx, 2, high=len(lesson.quiz.questions)) if lesson else None
    choice = (
        int_arg(ctx, 3, high=len(lesson.quiz.questions[number].options))
        if lesson is not None and number is not None
        else None
    )
    if lesson is None or attempt is None or number is None or choice is None or len(ctx.args) != 4:
        await stale_action(ctx)
        return

    data = ctx.data
    if (data.get("lesson"), data.get("attempt"), data.get("question")) != (lesson.id, attempt, number):
        # The engine honours an answer only while it is offered, so this is the current question;
        # were it not, nothing is recorded.
        await stale_action(ctx)
        return

    question = lesson.quiz.questions[number]
    correct = choice == question.answer_index
    await record_answer(
        ctx.session,
        person_id=ctx.person.id,
        lesson_id=lesson.id,
        lesson_version=lesson.version,
        attempt=attempt,
        question_id=question.id,
        choice=choice,
        correct=correct,
        now=ctx.now,
    )
    if correct:
        feedback = ctx.t("quiz.correct", explanation=question.explanation)
    else:
        feedback = ctx.t(
            "quiz.wrong", answer=question.options[question.answer_index], explanation=question.explanation
        )
    chosen = ctx.t("quiz.your_choice", choice=question.options[choice])
    # Replace the question (and its buttons) with the answer given: it reads like a worksheet.
    ctx.say(f"{question_text(ctx.t, lesson, number)}\n\n{chosen}\n{feedback}", replace=True)

    following = next((i for i, q in enumerate(lesson.quiz.questions) if i > number), None)
    if following is not None:
        ctx.goto(Step.QUIZ, lesson=lesson.id, attempt=attempt, question=following)
        _ask(ctx, lesson, attempt, following)
    else:
        await _finish(ctx, lesson, attempt)


async def _finish(ctx: Context, lesson: Lesson, attempt: int) -> None:
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    answers = await answers_of_attempt(ctx.session, person_id=ctx.person.id, lesson_id=lesson.id, attempt=attempt)
    asked = {q.id for q in lesson.quiz.questions}
    score = sum(1 for a in answers if a.correct and a.question_id in asked)
    total = len(lesson.quiz.questions)
    passed = score >= lesson.quiz.pass_mark
    progress = await get_progress(ctx.session, person_id=ctx.person.id, lesson_id=lesson.id)
    assert progress is not None
    was_completed = progress.status == ProgressStatus.COMPLETED
    new_completion = record_result(progress, score=score, passed=passed, lesson_version=lesson.version, now=ctx.now)
    ctx.session.add(progress)
    ctx.goto(Step.MENU)
    if not passed:
        key = "quiz.failed_still_completed" if was_completed else "quiz.failed"
        ctx.ask(
            t(key, score=score, total=total, pass_mark=lesson.quiz.pass_mark, title=lesson.title),
            [(t("quiz.retry"), f"quiz:{lesson.id}"), (t("quiz.review"), f"lesson:{lesson.id}:0"),
             (t("menu.back"), "menu")],
        )
        return
    text = t("quiz.passed", score=score, total=total, title=lesson.title)
    if lesson.links:
        text += "\n\n" + t("quiz.links") + "\n" + "\n".join(f"• {link.title}: {link.url}" for link in lesson.links)
    await ctx.session.flush()
    following = await resume.next_unfinished(ctx, lesson)
    options: list[tuple[str, str]] = []
    if following is not None:
        options.append((t("quiz.next_lesson", number=ctx.lessons.position(following.id), title=following.title),
                        f"lesson:{following.id}"))
    options.append((t("menu.progress"), "progress"))
    options.append((t("menu.back"), "menu"))
    if new_completion:
        made = await certificate.certificate(ctx)  # None while other lessons remain
        if made is not None:
            ctx.replies.append(made)  # before the menu, so the options stay the last thing shown
    ctx.ask(text, options)
