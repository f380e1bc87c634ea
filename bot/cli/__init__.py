"""The ``hocvuso`` commands, grouped by topic: ``run`` (run, chat), ``db``, ``groups``,
``lessons``, ``broadcast``, ``reports`` (report, audit) and ``admin``.

A command parses its options, asks the composition root (``bot.app``) for what it needs,
calls the same service functions as the chat and prints the result. It takes "now" from the
clock in typer's context object (:class:`Deps`), which ``bot.__main__.main()`` builds once;
tests invoke ``cli`` with ``obj=Deps(clock=ManualClock(...))``.
"""

from __future__ import annotations

import typer

from bot.cli import admin, broadcast, db, groups, lessons, reports, run
from bot.cli.context import Deps

__all__ = ["Deps", "cli"]

cli = typer.Typer(
    name="hocvuso",
    help="Học vụ số: bài học kỹ năng số ngắn qua Telegram, Zalo và cửa sổ dòng lệnh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.command()(run.run)
cli.command()(run.chat)
cli.command()(reports.report)
cli.command()(reports.audit)
cli.add_typer(db.commands, name="db")
cli.add_typer(groups.commands, name="groups")
cli.add_typer(lessons.commands, name="lessons")
cli.add_typer(broadcast.commands, name="broadcast")
cli.add_typer(admin.commands, name="admin")
