"""``python -m bot`` and the ``hocvuso`` command: the composition root.

This is the only place where objects are built: settings → engine → lesson library →
catalogue → conversation → channel adapters. Nothing runs at import time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import SecretFilter, Settings, SettingsError, load_settings
from bot.core.conversation import Clock, Conversation, Services, SystemClock
from bot.core.i18n import Catalog
from bot.curriculum import LessonLibrary, LessonLibraryError, check_directory, default_lessons_dir, load_library
from storage.db import SessionFactory, create_engine, session_factory

log = logging.getLogger("bot")

cli = typer.Typer(
    name="hocvuso",
    help="Học vụ số: bài học kỹ năng số ngắn qua Telegram, Zalo và cửa sổ dòng lệnh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Cơ sở dữ liệu.", no_args_is_help=True)
groups_cli = typer.Typer(help="Tổ dân phố / thôn.", no_args_is_help=True)
lessons_cli = typer.Typer(help="Bài học.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(groups_cli, name="groups")
cli.add_typer(lessons_cli, name="lessons")


@dataclass
class App:
    """Everything a running bot needs, built once."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    catalog: Catalog
    lessons: LessonLibrary
    conversation: Conversation

    async def close(self) -> None:
        await self.engine.dispose()


def build_app(settings: Settings, *, clock: Clock | None = None, lessons: LessonLibrary | None = None) -> App:
    from handlers import build_router

    catalog = Catalog.load()
    library = lessons or load_library()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    services = Services(lessons=library, catalog=catalog, clock=clock or SystemClock())
    conversation = Conversation(router=build_router(), sessions=sessions, services=services)
    return App(settings, engine, sessions, catalog, library, conversation)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise _fail(f"Lỗi cấu hình: {exc}", 2) from None
    _configure_logging(settings)
    return settings


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(settings.secrets()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        # Libraries narrate every step at INFO; operators need their warnings only.
        for name in ("alembic", "aiosqlite", "asyncio"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _migrate(settings: Settings) -> None:
    from storage.migrate import upgrade

    upgrade(settings.database_url)


def _app(settings: Settings) -> App:
    try:
        return build_app(settings)
    except LessonLibraryError as exc:
        raise _fail("Bài học có lỗi, hãy sửa rồi chạy lại:\n" + str(exc)) from None


@cli.command()
def run() -> None:
    """Chạy bot: Telegram nếu có TELEGRAM_BOT_TOKEN, nếu không thì trò chuyện trong cửa sổ dòng lệnh."""
    settings = _settings()
    if settings.is_sqlite:
        _migrate(settings)  # one machine, one file: keep the schema current on every start
    app = _app(settings)
    if settings.telegram_bot_token is None:
        typer.echo(app.catalog.text("cli.no_token", database=settings.database_url))
        asyncio.run(_chat(app))
    else:
        typer.echo(app.catalog.text("cli.telegram_polling", api=str(settings.telegram_api_url).rstrip("/")))
        asyncio.run(_telegram(app))


@cli.command()
def chat() -> None:
    """Trò chuyện với bot trong cửa sổ dòng lệnh (gõ số để chọn; dùng được cả với dữ liệu đưa vào qua ống)."""
    settings = _settings()
    if settings.is_sqlite:
        _migrate(settings)
    asyncio.run(_chat(_app(settings)))


async def _chat(app: App) -> None:
    from bot.channels.console import ConsoleChannel, offer_demo_data

    channel = ConsoleChannel(
        conversation=app.conversation, catalog=app.catalog, stdin=sys.stdin, stdout=sys.stdout
    )
    try:
        await offer_demo_data(channel, app.sessions)
        await channel.run()
    finally:
        await app.close()


async def _telegram(app: App) -> None:
    from bot.channels.telegram import TelegramChannel
    from handlers import COMMANDS

    assert app.settings.telegram_bot_token is not None
    channel = TelegramChannel(
        token=app.settings.telegram_bot_token.get_secret_value(),
        api_url=str(app.settings.telegram_api_url),
        conversation=app.conversation,
        catalog=app.catalog,
        commands=COMMANDS,
    )
    try:
        await channel.run_polling()
    finally:
        await channel.close()
        await app.close()


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Áp dụng các bản nâng cấp cấu trúc cơ sở dữ liệu còn thiếu."""
    settings = _settings()
    _migrate(settings)
    typer.echo(Catalog.load().text("cli.db_upgraded"))


@db_cli.command("revision")
def db_revision(message: Annotated[str, typer.Option("--message", "-m")]) -> None:
    """(Cho lập trình viên) Tạo bản nâng cấp mới từ thay đổi của các bảng."""
    from storage.migrate import revision

    revision(_settings().database_url, message)


@groups_cli.command("import")
def groups_import(file: Annotated[Path, typer.Argument(help="Tệp CSV: ward_code,ward_name,group_code,group_name[,kind,target_percent]")]) -> None:
    """Nhập hoặc cập nhật danh sách tổ dân phố / thôn từ tệp CSV (không bao giờ nhập dở dang)."""
    settings = _settings()
    catalog = Catalog.load()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(catalog.text("cli.file_unreadable", file=str(file), error=exc.strerror or str(exc))) from None
    if settings.is_sqlite:
        _migrate(settings)
    from bot.group_import import GroupImportError, import_file
    from storage.migrate import SchemaNotCurrentError

    try:
        summary = asyncio.run(import_file(settings.database_url, data, source=file.name))
    except SchemaNotCurrentError:
        raise _fail(catalog.text("cli.schema_not_current")) from None
    except GroupImportError as exc:
        lines = [catalog.text("cli.import_failed", file=file.name, count=len(exc.errors))]
        lines += [f"  {error}" for error in exc.errors]
        raise _fail("\n".join(lines)) from None
    typer.echo(
        catalog.text(
            "cli.import_done",
            wards=summary.wards_created,
            created=summary.groups["created"],
            updated=summary.groups["updated"],
            unchanged=summary.groups["unchanged"],
        )
    )


@lessons_cli.command("check")
def lessons_check(
    directory: Annotated[Path | None, typer.Argument(help="Thư mục bài học (mặc định: bài học đi kèm)")] = None,
) -> None:
    """Kiểm tra mọi tệp bài học; báo tên tệp và trường có lỗi (mã thoát 1 nếu có lỗi)."""
    catalog = Catalog.load()
    folder = directory or default_lessons_dir()
    lessons, errors = check_directory(folder)
    for error in errors:
        typer.echo(str(error), err=True)
    if errors:
        raise _fail(catalog.text("cli.lessons_failed", count=len(errors), folder=str(folder)))
    typer.echo(catalog.text("cli.lessons_ok", count=len(lessons), folder=str(folder)))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
