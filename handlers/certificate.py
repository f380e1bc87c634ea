"""The completion certificate: a PNG with the resident's name, group, ward and the date
they completed the last lesson (in the ward's time zone), sent when the last lesson is
completed and again from ``/tiendo`` ("🎓 Giấy chứng nhận", action ``cert``).

The wording (``bot.reports.certificate``) makes it the ward programme's own certificate,
not the official VNeID confirmation.
"""

from __future__ import annotations

import asyncio

from bot.core.conversation import Context
from bot.core.messages import Image
from handlers import menu
from handlers.common import write_file
from handlers.steps import Step
from storage.groups import get_group, get_ward
from storage.models import ProgressStatus
from storage.progress import progress_of


async def certificate_image(ctx: Context) -> Image | None:
    """The certificate of the person in ``ctx``, or None while a lesson is not completed."""
    from bot.reports.certificate import certificate_png  # PIL and fonts load only when needed

    assert ctx.person is not None and ctx.person.id is not None
    progress = await progress_of(ctx.session, person_id=ctx.person.id)
    done = [progress[l.id] for l in ctx.lessons if l.id in progress and progress[l.id].status == ProgressStatus.COMPLETED]
    if len(done) < len(ctx.lessons) or not done:
        return None
    last = max(row.completed_at for row in done if row.completed_at is not None)
    group = await get_group(ctx.session, group_id=ctx.person.group_id) if ctx.person.group_id else None
    ward = await get_ward(ctx.session, ward_id=group.ward_id) if group is not None else None
    data = await asyncio.to_thread(
        certificate_png, name=ctx.person.display_name or "", group=group.name if group else "",
        ward=ward.name if ward else "", completed_on=last.astimezone(ctx.services.zone).date(),
        lessons=len(ctx.lessons),
    )
    path = write_file(ctx, prefix="chung-nhan", suffix=".png", data=data)
    return Image(path, ctx.t("certificate.caption", name=ctx.person.display_name or "", lessons=len(ctx.lessons)))


async def show_certificate(ctx: Context) -> None:
    """``cert``: the certificate again (refused kindly while lessons remain)."""
    image = await certificate_image(ctx)
    if image is None:
        await menu.show_main_menu(ctx, ctx.t("certificate.not_yet", total=len(ctx.lessons)))
        return
    ctx.replies.append(image)
    ctx.goto(Step.MENU)
    ctx.ask(ctx.t("certificate.more"), [(ctx.t("menu.progress"), "progress"), (ctx.t("menu.back"), "menu")])
