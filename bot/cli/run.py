"""``hocvuso run`` (the bot: every configured channel, or the terminal chat without one) and
``hocvuso chat`` (the terminal chat)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from bot.app import ProcessRole, chat as terminal_chat, migrate, serve
from bot.cli import context


def run(
    ctx: typer.Context,
    role: Annotated[ProcessRole, typer.Option(help="all: mọi việc trong một tiến trình; worker: chỉ gửi tin và lập lịch")] = ProcessRole.ALL,
) -> None:
    """Chạy bot: Telegram nếu có TELEGRAM_BOT_TOKEN, nếu không thì trò chuyện trong cửa sổ dòng lệnh."""
    settings = context.settings()
    if settings.is_sqlite:
        migrate(settings)  # one machine, one file: keep the schema current on every start
    app = context.app(ctx, settings)
    has_zalo = settings.zalo_bot_token is not None or settings.zalo_oa_id is not None
    if settings.telegram_bot_token is None and not has_zalo:
        if role == ProcessRole.WORKER:
            raise context.fail(app.catalog.text("cli.worker_needs_channel"))
        typer.echo(app.catalog.text("cli.no_token", database=settings.database_url_shown))
        asyncio.run(terminal_chat(app, stdin=sys.stdin, stdout=sys.stdout))
        return
    if role == ProcessRole.ALL and settings.telegram_bot_token is not None:
        typer.echo(app.catalog.text("cli.telegram_polling", api=str(settings.telegram_api_url).rstrip("/")))
    if role == ProcessRole.ALL and has_zalo:
        typer.echo(app.catalog.text("cli.zalo_receiving"))
    asyncio.run(serve(app, role=role))


def chat(ctx: typer.Context) -> None:
    """Trò chuyện với bot trong cửa sổ dòng lệnh (gõ số để chọn; dùng được cả với dữ liệu đưa vào qua ống)."""
    settings = context.settings()
    if settings.is_sqlite:
        migrate(settings)
    asyncio.run(terminal_chat(context.app(ctx, settings), stdin=sys.stdin, stdout=sys.stdout))
