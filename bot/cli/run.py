"""``hocvuso run`` (the bot: every configured channel, or the terminal chat without one) and
``hocvuso chat`` (the terminal chat)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from bot.app import ProcessRole, chat as terminal_chat, migrate, serve
from bot.cli import context
from bot.leadership import LeadershipLost


def run(
    ctx: typer.Context,
    role: Annotated[ProcessRole, typer.Option(
        help="all: mọi việc trong một tiến trình; web: chỉ nhận tin qua webhook (chạy được nhiều bản); "
             "worker: chỉ gửi tin và lập lịch")] = ProcessRole.ALL,
) -> None:
    """Chạy bot: Telegram nếu có TELEGRAM_BOT_TOKEN, nếu không thì trò chuyện trong cửa sổ dòng lệnh."""
    settings = context.settings()
    if settings.is_sqlite:
        migrate(settings)  # one machine, one file: keep the schema current on every start
    app = context.app(ctx, settings)
    has_zalo = settings.zalo_bot_token is not None or settings.zalo_oa_id is not None
    if settings.telegram_bot_token is None and not has_zalo:
        if role != ProcessRole.ALL:
            raise context.fail(app.catalog.text("cli.worker_needs_channel"))
        typer.echo(app.catalog.text("cli.no_token", database=settings.database_url_shown))
        asyncio.run(terminal_chat(app, stdin=sys.stdin, stdout=sys.stdout))
        return
    if role == ProcessRole.WEB:
        # Several web processes run side by side: each channel must come by webhook (two pollers
        # of one bot take each other's updates).
        polling = [name for name, set_, hooked in (
            ("Telegram", settings.telegram_bot_token is not None, settings.telegram_webhook_url is not None),
            ("Zalo Bot", settings.zalo_bot_token is not None,
             settings.zalo_webhook_secret is not None and settings.public_base_url is not None),
        ) if set_ and not hooked]
        if polling:
            raise context.fail(app.catalog.text("cli.web_needs_webhooks", channels=", ".join(polling)))
    if role != ProcessRole.WORKER and settings.telegram_bot_token is not None:
        if settings.telegram_webhook_url is not None:
            typer.echo(app.catalog.text("cli.telegram_webhook", url=settings.telegram_webhook_url))
        else:
            typer.echo(app.catalog.text("cli.telegram_polling", api=str(settings.telegram_api_url).rstrip("/")))
    if role != ProcessRole.WORKER and has_zalo:
        typer.echo(app.catalog.text("cli.zalo_receiving"))
    try:
        asyncio.run(serve(app, role=role))
    except LeadershipLost as lost:
        # Another worker may be sending already: stop now; the supervisor starts a standby.
        raise context.fail(app.catalog.text("cli.worker_lock_lost", reason=str(lost))) from None


def chat(ctx: typer.Context) -> None:
    """Trò chuyện với bot trong cửa sổ dòng lệnh (gõ số để chọn; dùng được cả với dữ liệu đưa vào qua ống)."""
    settings = context.settings()
    if settings.is_sqlite:
        migrate(settings)
    asyncio.run(terminal_chat(context.app(ctx, settings), stdin=sys.stdin, stdout=sys.stdout))
