"""Learning: continue where you left off, the list of lessons, cards turned one by one."""

from __future__ import annotations

from bot.core.conversation import Context
from bot.curriculum import Lesson
from handlers import menu
from handlers.fallback import stale_action
from handlers.common import int_arg, page_count, paginate
from handlers.steps import Step
from storage.models import ProgressStatus
from storage.progress import progress_of, start_lesson


async def continue_learning(ctx: Context) -> None:
    """``/hoc`` and "Học tiếp": the lesson in progress, else the first not completed."""
    assert ctx.person is not None and ctx.person.id is not None
    progress = await progress_of(ctx.session, person_id=ctx.person.id)
    lessons = list(ctx.lessons)
    in_progress = [l for l in lessons if l.id in progress and progress[l.id].status == ProgressStatus.IN_PROGRESS]
    not_done = [
        l for l in lessons if l.id not in progress or progress[l.id].status != ProgressStatus.COMPLETED
    ]
    chosen = (in_progress or not_done or [None])[0]
    if chosen is None:
        await menu.show_main_menu(ctx, ctx.t("lessons.all_done", total=len(lessons)))
        return
    await _open(ctx, chosen)


async def list_lessons(ctx: Context) -> None:
    """``/baihoc`` and ``lessons:<page>``: every lesson, ✅ for those completed."""
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    lessons = list(ctx.lessons)
    progress = await progress_of(ctx.session, person_id=ctx.person.id)
    shown = paginate(lessons, int_arg(ctx, 0, high=page_count(lessons)) or 0)
    options = []
    for lesson in shown.items:
        done = lesson.id in progress and progress[lesson.id].status == ProgressStatus.COMPLETED
        mark = "✅" if done else "▫️"
        options.append((f"{mark} {ctx.lessons.position(lesson.id)}. {lesson.title}", f"lesson:{lesson.id}"))
    options += shown.nav(ctx, "lessons:")
    options.append((t("menu.back"), "menu"))
    ctx.goto(Step.MENU)
    ctx.ask(t("lessons.list", hint=shown.hint(ctx)), options,
            replace=ctx.incoming.action is not None and shown.number > 0)


async def open_lesson(ctx: Context) -> None:
    """``lesson:<id>``: the first card of a lesson."""
    lesson = ctx.lessons.get(ctx.args[0]) if ctx.args else None
    if lesson is None:
        await stale_action(ctx)
        return
    await _open(ctx, lesson)


async def _open(ctx: Context, lesson: Lesson) -> None:
    assert ctx.person is not None and ctx.person.id is not None
    await start_lesson(
        ctx.session, person_id=ctx.person.id, lesson_id=lesson.id, lesson_version=lesson.version, now=ctx.now
    )
    show_card(ctx, lesson, 0, replace=False)


async def turn_card(ctx: Context) -> None:
    """``card:<id>:<n>``: next or previous card, edited in place where the channel can."""
    lesson = ctx.lessons.get(ctx.args[0]) if ctx.args else None
    number = int_arg(ctx, 1, high=len(lesson.cards)) if lesson else None
    if lesson is None or number is None:
        await stale_action(ctx)
        return
    show_card(ctx, lesson, number, replace=True)


def show_card(ctx: Context, lesson: Lesson, number: int, *, replace: bool) -> None:
    t = ctx.t
    total = len(lesson.cards)
    header = t(
        "lesson.card_header",
        number=ctx.lessons.position(lesson.id),
        title=lesson.title,
        card=number + 1,
        cards=total,
    )
    intro = t("lesson.intro", minutes=lesson.minutes) + "\n\n" if number == 0 else ""
    options: list[tuple[str, str]] = []
    if number + 1 < total:
        options.append((t("lesson.next"), f"card:{lesson.id}:{number + 1}"))
    else:
        options.append((t("lesson.quiz"), f"quiz:{lesson.id}"))
    if number > 0:
        options.append((t("lesson.prev"), f"card:{lesson.id}:{number - 1}"))
    options.append((t("menu.back"), "menu"))
    ctx.goto(Step.LESSON, lesson=lesson.id, card=number)
    ctx.ask(f"{header}\n\n{intro}{lesson.cards[number].text}", options, replace=replace)
