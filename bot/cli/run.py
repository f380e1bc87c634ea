"""``hocvuso run`` (the bot: every configured channel, or the terminal chat without one) and
``hocvuso chat`` (the terminal chat)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from bot.accounts import AccountKind, AccountsError, load_accounts
from bot.app import ProcessRole, chat as terminal_chat, configure_logging, migrate, serve
from bot.cli import context
from bot.core.i18n import Catalog
from bot.leadership import LeadershipLost
from storage.accounts import UnknownWardError


def run(
    ctx: typer.Context,
    role: Annotated[ProcessRole, typer.Option(
        help="all: mọi việc trong một tiến trình; web: chỉ nhận tin qua webhook (chạy được nhiều bản); "
             "worker: chỉ gửi tin và lập lịch")] = ProcessRole.ALL,
) -> None:
    """Chạy bot: mọi tài khoản kênh đã khai báo (Telegram, Zalo), nếu không có thì trò chuyện trong cửa sổ dòng lệnh."""
    settings = context.settings()
    try:
        accounts = load_accounts(settings)
    except AccountsError as exc:
        raise context.fail(Catalog.load().text("cli.settings_invalid", error=str(exc)), 2) from None
    configure_logging(settings, accounts=accounts)
    if settings.is_sqlite:
        migrate(settings)  # one machine, one file: keep the schema current on every start
    app = context.app(ctx, settings)
    if not accounts:
        if role != ProcessRole.ALL:
            raise context.fail(app.catalog.text("cli.worker_needs_channel"))
        typer.echo(app.catalog.text("cli.no_token", database=settings.database_url_shown))
        asyncio.run(terminal_chat(app, stdin=sys.stdin, stdout=sys.stdout, with_dashboard=True))
        return
    public = settings.public_base_url is not None
    if role == ProcessRole.WEB:
        # Several web processes run side by side: each account must come by webhook (two pollers
        # of one bot take each other's updates).
        polling = [a.key for a in accounts
                   if a.kind in (AccountKind.TELEGRAM, AccountKind.ZALO_BOT) and not (public and a.webhook_secret)]
        if polling:
            raise context.fail(app.catalog.text("cli.web_needs_webhooks", channels=", ".join(polling)))
    if role != ProcessRole.WORKER:
        for account in accounts:
            if account.kind == AccountKind.TELEGRAM and public and account.webhook_secret:
                url = str(settings.public_base_url).rstrip("/") + account.webhook_path("/webhooks/telegram")
                typer.echo(app.catalog.text("cli.telegram_webhook", url=url))
            elif account.kind == AccountKind.TELEGRAM:
                typer.echo(app.catalog.text("cli.telegram_polling",
                                            api=(account.api_url or str(settings.telegram_api_url)).rstrip("/")))
        if any(a.kind in (AccountKind.ZALO_BOT, AccountKind.ZALO_OA) for a in accounts):
            typer.echo(app.catalog.text("cli.zalo_receiving"))
    try:
        asyncio.run(serve(app, role=role, accounts=accounts))
    except LeadershipLost as lost:
        # Another worker may be sending already: stop now; the supervisor starts a standby.
        raise context.fail(app.catalog.text("cli.worker_lock_lost", reason=str(lost))) from None
    except UnknownWardError as exc:
        raise context.fail(app.catalog.text("cli.account_ward_unknown", key=exc.key, ward=exc.ward), 2) from None


def chat(ctx: typer.Context) -> None:
    """Trò chuyện với bot trong cửa sổ dòng lệnh (gõ số để chọn; dùng được cả với dữ liệu đưa vào qua ống)."""
    settings = context.settings()
    if settings.is_sqlite:
        migrate(settings)
    asyncio.run(terminal_chat(context.app(ctx, settings), stdin=sys.stdin, stdout=sys.stdout))
