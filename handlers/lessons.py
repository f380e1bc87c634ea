"""Learning: continue where you left off, the list of lessons, cards turned one by one.

The card shown last is kept on the lesson's progress row, so leaving a lesson (a command,
the menu, a reminder) and coming back opens the same card (``handlers.resume``).
"""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.i18n import Translate
from bot.curriculum import Lesson
from handlers import menu, resume
from handlers.common import PAGE_SIZE, int_arg, page_count, paginate
from handlers.fallback import stale_action
from handlers.steps import Step
from storage.models import ProgressStatus
from storage.progress import progress_in, read_to_card


async def continue_learning(ctx: Context) -> None:
    """``/hoc`` and "Học tiếp": the card she read last, or, in the middle of a quiz, the offer
    to go on with it; else the first lesson not completed."""
    place = await resume.where_she_was(ctx)
    if place is None:
        await menu.show_main_menu(ctx, ctx.t("lessons.all_done", total=len(ctx.lessons)))
        return
    if place.quiz is not None:
        t = ctx.t
        lesson = place.lesson
        ctx.goto(Step.MENU)
        ctx.ask(
            t("lessons.quiz_open", number=ctx.lessons.position(lesson.id), title=lesson.title,
              answered=len(place.quiz.answered), total=len(lesson.quiz.questions)),
            [(t("menu.continue_quiz"), f"quiz:{lesson.id}"), (t("quiz.review"), f"lesson:{lesson.id}:0"),
             (t("menu.back"), "menu")],
        )
        return
    card = place.progress.card if place.progress is not None else 0
    await _open(ctx, place.lesson, card)


async def list_lessons(ctx: Context) -> None:
    """``/baihoc`` and ``lessons:<page>``: every lesson, ✅ for those completed, one number
    per line. Where menus are numbered lines (Zalo, the terminal) the whole list is one page
    and each line's number is the lesson's ("9. ▫️ …": typing 9 opens lesson 9); buttons
    carry the number in their label, a page at a time."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    lessons = list(ctx.lessons)
    progress = await progress_in(ctx.transaction, person_id=ctx.person.id)
    numbered = ctx.capabilities.numbered_menus
    size = max(len(lessons), 1) if numbered else PAGE_SIZE
    shown = paginate(lessons, int_arg(ctx, 0, high=page_count(lessons, size)) or 0, size=size)
    options = []
    for lesson in shown.items:
        done = lesson.id in progress and progress[lesson.id].status == ProgressStatus.COMPLETED
        mark = "✅" if done else "▫️"
        label = lesson.title if numbered else t("lessons.item", number=ctx.lessons.position(lesson.id), title=lesson.title)
        options.append((f"{mark} {label}", f"lesson:{lesson.id}"))
    options += shown.nav(ctx, "lessons:")
    options.append((t("menu.back"), "menu"))
    ctx.goto(Step.MENU)
    ctx.ask(t("lessons.list", hint=shown.hint(ctx)), options,
            replace=ctx.incoming.action is not None and shown.number > 0)


async def open_lesson(ctx: Context) -> None:
    """``lesson:<id>``: a lesson begun opens at the card read last (a completed one at its
    first card, to review it); ``lesson:<id>:<card>`` at that card."""
    assert ctx.person is not None and ctx.person.id is not None
    lesson = ctx.lessons.get(ctx.args[0]) if ctx.args else None
    card = int_arg(ctx, 1, high=len(lesson.cards)) if lesson is not None and len(ctx.args) == 2 else None
    if lesson is None or (len(ctx.args) == 2 and card is None) or len(ctx.args) > 2:
        await stale_action(ctx)
        return
    if card is None:
        row = (await progress_in(ctx.transaction, person_id=ctx.person.id)).get(lesson.id)
        card = row.card if row is not None and row.status == ProgressStatus.IN_PROGRESS else 0
    await _open(ctx, lesson, card)


async def _open(ctx: Context, lesson: Lesson, card: int) -> None:
    await show_card(ctx, lesson, min(max(card, 0), len(lesson.cards) - 1), replace=False)


async def turn_card(ctx: Context) -> None:
    """``card:<id>:<n>``: next or previous card, edited in place where the channel can."""
    lesson = ctx.lessons.get(ctx.args[0]) if ctx.args else None
    number = int_arg(ctx, 1, high=len(lesson.cards)) if lesson else None
    if lesson is None or number is None:
        await stale_action(ctx)
        return
    await show_card(ctx, lesson, number, replace=True)


async def show_card(ctx: Context, lesson: Lesson, number: int, *, replace: bool) -> None:
    """Card ``number`` of ``lesson``, remembered as the place to come back to."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    await read_to_card(ctx.transaction, person_id=ctx.person.id, lesson_id=lesson.id, lesson_version=lesson.version,
                       card=number, now=ctx.now)
    total = len(lesson.cards)
    options: list[tuple[str, str]] = []
    if number + 1 < total:
        options.append((t("lesson.next"), f"card:{lesson.id}:{number + 1}"))
    else:
        options.append((t("lesson.quiz"), f"quiz:{lesson.id}"))
    if number > 0:
        options.append((t("lesson.prev"), f"card:{lesson.id}:{number - 1}"))
    options.append((t("menu.back"), "menu"))
    ctx.goto(Step.LESSON, lesson=lesson.id, card=number)
    ctx.ask(card_text(t, lesson, number, position=ctx.lessons.position(lesson.id)), options, replace=replace)


def card_text(t: Translate, lesson: Lesson, number: int, *, position: int) -> str:
    """Card ``number`` as a resident reads it (the web dashboard's lesson page shows the same words)."""
    header = t("lesson.card_header", number=position, title=lesson.title, card=number + 1, cards=len(lesson.cards))
    intro = t("lesson.intro", minutes=lesson.minutes) + "\n\n" if number == 0 else ""
    return f"{header}\n\n{intro}{lesson.cards[number].text}"
