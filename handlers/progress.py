"""``/tiendo``: my progress, with a text bar every channel can show."""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.text import progress_bar
from handlers.steps import Step
from storage.groups import get_group
from storage.models import ProgressStatus
from storage.progress import progress_in


async def show_progress(ctx: Context) -> None:
    assert ctx.person is not None and ctx.person.id is not None
    t = ctx.t
    progress = await progress_in(ctx.transaction, person_id=ctx.person.id)
    lines = []
    done = 0
    for position, lesson in enumerate(ctx.lessons, 1):
        row = progress.get(lesson.id)
        if row is not None and row.status == ProgressStatus.COMPLETED:
            done += 1
            line = t("progress.done_line", number=position, title=lesson.title, score=row.score or 0,
                     total=len(lesson.quiz.questions))
            if row.lesson_version != lesson.version:
                line += " " + t("progress.old_version", version=row.lesson_version)
        elif row is not None:
            line = t("progress.started_line", number=position, title=lesson.title)
        else:
            line = t("progress.todo_line", number=position, title=lesson.title)
        lines.append(line)
    group = await get_group(ctx.session, group_id=ctx.person.group_id) if ctx.person.group_id else None
    head = t(
        "progress.summary",
        name=ctx.person.display_name or "",
        bar=progress_bar(done, len(ctx.lessons)),
        group=group.name if group else t("progress.no_group"),
    )
    ctx.goto(Step.MENU)
    options = [(t("menu.back"), "menu")]
    if done < len(ctx.lessons):
        options.insert(0, (t("menu.continue"), "next"))
    else:
        options.insert(0, (t("certificate.button"), "cert"))
    ctx.ask(head + "\n\n" + "\n".join(lines), options)
