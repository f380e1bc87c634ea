"""What every command is given (:class:`Deps`, in typer's context object) and the few steps
they share: settings or exit 2, the app or exit 1, one transaction on a current schema."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import App, build_app, configure_logging, in_transaction, migrate
from bot.config import Settings, SettingsError, load_settings
from bot.core.conversation import Clock
from bot.core.i18n import Catalog
from bot.curriculum import LessonLibraryError

T = TypeVar("T")


@dataclass(frozen=True)
class Deps:
    """Built once by ``main()`` and handed to every command as ``ctx.obj``."""

    clock: Clock


def deps(ctx: typer.Context) -> Deps:
    # No silent fallback to the wall clock: whoever invokes the CLI says which clock it runs on.
    if not isinstance(ctx.obj, Deps):
        raise RuntimeError("hocvuso commands need Deps in the context object: cli(obj=Deps(clock=...))")
    return ctx.obj


def now(ctx: typer.Context) -> datetime:
    return deps(ctx).clock.now()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def settings() -> Settings:
    """The settings (logging configured from them), or exit 2 with one line naming the wrong one."""
    try:
        loaded = load_settings()
    except SettingsError as exc:
        raise fail(Catalog.load().text("cli.settings_invalid", error=str(exc)), 2) from None
    configure_logging(loaded)
    return loaded


def app(ctx: typer.Context, settings: Settings) -> App:
    try:
        return build_app(settings, clock=deps(ctx).clock)
    except LessonLibraryError as exc:
        raise fail(Catalog.load().text("cli.lessons_invalid", errors=str(exc))) from None


def run_work(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``work(session)`` in one transaction; SQLite is migrated first (one machine, one file),
    PostgreSQL must already be current (exit 1 saying so)."""
    from storage.migrate import SchemaNotCurrentError

    if settings.is_sqlite:
        migrate(settings)
    try:
        return asyncio.run(in_transaction(settings, work))
    except SchemaNotCurrentError:
        raise fail(Catalog.load().text("cli.schema_not_current")) from None
