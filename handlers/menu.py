"""The main menu: the place every journey returns to.

Leaders and admins see their own entries ("👥 Tổ của tôi", "🏛 Quản trị phường"); the roles
are read from the database each time the menu is shown, and checked again when an entry
is used.
"""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.i18n import Translate
from handlers import resume
from handlers.steps import Step
from storage.models import RoleKind


def main_options(
    t: Translate, *, leader: bool = False, admin: bool = False, quiz: str | None = None
) -> list[tuple[str, str]]:
    """The main menu; ``quiz``: the lesson whose quiz she left half answered (its first
    entry then goes on with it)."""
    options = [
        (t("menu.continue_quiz"), f"quiz:{quiz}") if quiz else (t("menu.continue"), "next"),
        (t("menu.lessons"), "lessons:0"),
        (t("menu.progress"), "progress"),
        (t("menu.reminders"), "reminders"),
        (t("menu.ask_help"), "hotro"),
        (t("menu.help"), "help"),
    ]
    if leader:
        options.insert(3, (t("menu.my_group"), "lead"))
    if admin:
        options.insert(4 if leader else 3, (t("menu.admin"), "adm"))
    return options


async def show_main_menu(ctx: Context, text: str | None = None) -> None:
    leader = admin = False
    quiz = None
    if ctx.person is not None and ctx.person.id is not None:
        kinds = await ctx.role_kinds()
        leader, admin = RoleKind.LEADER in kinds, RoleKind.ADMIN in kinds
        place = await resume.where_she_was(ctx)  # before leaving the step: a quiz she is in
        quiz = place.lesson.id if place is not None and place.quiz is not None else None
    ctx.goto(Step.MENU)
    ctx.ask(text or ctx.t("menu.prompt"), main_options(ctx.t, leader=leader, admin=admin, quiz=quiz))


async def open_menu(ctx: Context) -> None:
    """``/menu`` and the "Menu" option everywhere."""
    await show_main_menu(ctx)
