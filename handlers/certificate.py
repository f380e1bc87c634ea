"""The completion certificate: a PNG with the resident's name, group, ward and the date
they completed the last lesson (in the ward's time zone), sent when the last lesson is
completed and again from ``/tiendo`` ("🎓 Giấy chứng nhận", action ``cert``).

The wording (``bot.reports.certificate``) makes it the ward programme's own certificate,
not the official VNeID confirmation.
"""

from __future__ import annotations

import asyncio

from bot.core.conversation import Context, Later
from bot.core.messages import Image, Reply
from handlers import menu
from handlers.common import write_file
from handlers.steps import Step
from storage.groups import get_group, get_ward
from storage.models import ProgressStatus
from storage.db import SessionFactory
from storage.progress import progress_in


async def certificate(ctx: Context) -> Later | None:
    """The certificate of the person in ``ctx`` — read now, drawn after the transaction — or
    None while a lesson is not completed."""
    assert ctx.person is not None and ctx.person.id is not None
    progress = await progress_in(ctx.transaction, person_id=ctx.person.id)
    done = [progress[l.id] for l in ctx.lessons if l.id in progress and progress[l.id].status == ProgressStatus.COMPLETED]
    if len(done) < len(ctx.lessons) or not done:
        return None
    last = max(row.completed_at for row in done if row.completed_at is not None)
    group = await get_group(ctx.session, group_id=ctx.person.group_id) if ctx.person.group_id else None
    ward = await get_ward(ctx.session, ward_id=group.ward_id) if group is not None else None
    name, lessons = ctx.person.display_name or "", len(ctx.lessons)
    fields = {"name": name, "group": group.name if group else "", "ward": ward.name if ward else "",
              "completed_on": last.astimezone(ctx.services.zone).date(), "lessons": lessons}
    caption = ctx.t("certificate.caption", name=name, lessons=lessons)

    async def draw(_sessions: SessionFactory) -> list[Reply]:
        from bot.reports.certificate import certificate_png  # PIL and fonts load only when needed

        data = await asyncio.to_thread(certificate_png, **fields)
        path = await asyncio.to_thread(write_file, ctx, prefix="chung-nhan", suffix=".png", data=data)
        return [Image(path, caption)]

    return Later(draw)


async def show_certificate(ctx: Context) -> None:
    """``cert``: the certificate again (refused kindly while lessons remain)."""
    made = await certificate(ctx)
    if made is None:
        await menu.show_main_menu(ctx, ctx.t("certificate.not_yet", total=len(ctx.lessons)))
        return
    ctx.replies.append(made)
    ctx.goto(Step.MENU)
    ctx.ask(ctx.t("certificate.more"), [(ctx.t("menu.progress"), "progress"), (ctx.t("menu.back"), "menu")])
