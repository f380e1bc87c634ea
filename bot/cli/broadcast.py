"""``hocvuso broadcast send | status | cancel``: the same broadcast service as the chat's composer."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import quiet_hours
from bot.cli import context
from bot.core.i18n import Catalog
from bot.curriculum import load_library

commands = typer.Typer(help="Thông báo tới người dân (gửi qua hàng đợi, ngoài giờ yên lặng).", no_args_is_help=True)


@commands.command("send")
def broadcast_send(
    ctx: typer.Context,
    text: Annotated[str, typer.Option("--text", help="Nội dung thông báo")],
    to: Annotated[str, typer.Option("--to", help="all | group:MÃ_TỔ[,MÃ_TỔ] | not-completed:MÃ_BÀI | leaders[:MÃ_PHƯỜNG]")],
    at: Annotated[str | None, typer.Option("--at", help="Giờ gửi theo giờ địa phương: '2026-12-10 08:00', '10/12 8h', '8 giờ sáng mai', '20h hôm nay'")] = None,
    image: Annotated[str | None, typer.Option("--image", help="Ảnh .jpg/.png gửi kèm")] = None,
    ward: Annotated[str | None, typer.Option(
        "--ward", help="Mã phường gửi thông báo: chỉ gửi người dân của phường đó, dòng đầu ghi "
                       "«📢 UBND phường …». Bỏ trống: phường duy nhất trong dữ liệu (nhiều phường: "
                       "tên chương trình)")] = None,
    learn: Annotated[bool, typer.Option(
        "--learn", help="Thông báo mời bà con học bài: thêm nút «📖 Học tiếp»")] = False,
) -> None:
    """Lên lịch một thông báo: gửi ngay hoặc vào giờ đã chọn (tin chờ qua giờ yên lặng).
    Người dân nhận đúng như tin soạn trong bot: dòng đầu ghi ai gửi, rồi nội dung."""
    from bot.broadcasting import BroadcastError, Scheduled, TimeError, explain, parse_time, resident_message, schedule
    from storage.broadcasts import invites_to_learn, sender_ward

    settings = context.settings()
    catalog = Catalog.load()
    lessons = load_library()
    try:
        when = parse_time(at, now=context.now(ctx), zone=settings.zone) if at else None
    except TimeError as exc:
        error = explain(catalog.translator(None), exc).rstrip(".")
        raise context.fail(catalog.text("cli.broadcast_invalid", error=error)) from None

    async def work(session: AsyncSession) -> tuple[Scheduled, str]:
        done = await schedule(
            session, author="cli", text=text, audience_text=to, lesson_ids={l.id for l in lessons},
            now=context.now(ctx), quiet=quiet_hours(settings), at=when, image=image, ward=ward, learn=learn,
            catalog=catalog,
        )
        sender = await sender_ward(session, broadcast=done.broadcast)
        message = resident_message(catalog.translator(None), text=done.broadcast.text,
                                   ward_name=sender.name if sender else None,
                                   learn=invites_to_learn(done.broadcast))
        shown = "\n".join([message.text, *(f"[{o.label}]" for o in message.options)])
        return done, shown

    try:
        done, shown = context.run_work(settings, work)
    except BroadcastError as exc:
        raise context.fail(catalog.text("cli.broadcast_invalid", error=str(exc))) from None
    local = done.sends_at.astimezone(settings.zone).strftime("%H:%M %d/%m/%Y")
    key = "cli.broadcast_queued" if done.recipients is not None else "cli.broadcast_scheduled"
    typer.echo(catalog.text(key, id=done.broadcast.id, recipients=done.expected, when=local))
    typer.echo(catalog.text("cli.broadcast_preview", message=shown))


@commands.command("status")
def broadcast_status(ctx: typer.Context, broadcast_id: Annotated[int, typer.Argument(help="Số thông báo")]) -> None:
    """Kết quả gửi: đã gửi / bị chặn / lỗi / đang chờ, tổng và theo từng tổ."""
    from bot.broadcasting import format_report, views
    from storage.models import Broadcast
    from storage.outbox import delivery_report

    settings = context.settings()
    catalog = Catalog.load()
    now = context.now(ctx)

    async def work(session: AsyncSession) -> str | None:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            return None
        [view] = await views(session, [broadcast], t=catalog.translator(None), lessons=load_library(),
                             quiet=quiet_hours(settings), now=now)
        return format_report(catalog, view, await delivery_report(session, broadcast_id=broadcast_id),
                             zone=settings.zone)

    text = context.run_work(settings, work)
    if text is None:
        raise context.fail(catalog.text("cli.broadcast_unknown", id=broadcast_id))
    typer.echo(text)


@commands.command("cancel")
def broadcast_cancel(ctx: typer.Context, broadcast_id: Annotated[int, typer.Argument(help="Số thông báo")]) -> None:
    """Hủy một thông báo đã lên lịch (hoặc phần chưa gửi của nó)."""
    from storage import audit
    from storage.broadcasts import cancel_broadcast

    settings = context.settings()
    catalog = Catalog.load()

    async def work(session: AsyncSession) -> bool:
        cancelled = await cancel_broadcast(session, broadcast_id=broadcast_id)
        if cancelled:
            audit.record(session, actor="cli", action="broadcast.cancel", target=f"broadcast:{broadcast_id}",
                         now=context.now(ctx))
        return cancelled

    if not context.run_work(settings, work):
        raise context.fail(catalog.text("cli.broadcast_unknown", id=broadcast_id))
    typer.echo(catalog.text("cli.broadcast_cancelled", id=broadcast_id))
