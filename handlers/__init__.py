"""Conversation features, channel-free. ``build_router()`` registers them in order.

Commands first, then actions (pressed options, by prefix), then free text for the
current step; whatever none of them takes goes to ``handlers.fallback``.
"""

from __future__ import annotations

from bot.core.conversation import Fallbacks, Router
from handlers import (
    admin,
    assisted,
    certificate,
    composer,
    fallback,
    help,
    leader,
    lessons,
    linking,
    menu,
    onboarding,
    privacy,
    progress,
    quiz,
    reminders,
    support,
)
from handlers.steps import Step

# Commands shown in the channel's command menu, in this order, with their catalogue key.
COMMANDS: list[tuple[str, str]] = [
    ("hoc", "command.hoc"),
    ("baihoc", "command.baihoc"),
    ("tiendo", "command.tiendo"),
    ("menu", "command.menu"),
    ("nhacnho", "command.nhacnho"),
    ("dung", "command.dung"),
    ("batdau", "command.batdau"),
    ("hotro", "command.hotro"),
    ("trogiup", "command.trogiup"),
    ("doiten", "command.doiten"),
    ("doito", "command.doito"),
    ("lienket", "command.lienket"),
    ("xoadulieu", "command.xoadulieu"),
    ("start", "command.start"),
]
# Shown (in the help text, and where a channel has per-chat command menus) only to people
# with the role; the handlers check the role again in any case.
LEADER_COMMANDS: list[tuple[str, str]] = [("nhom", "command.nhom")]
ADMIN_COMMANDS: list[tuple[str, str]] = [("quantri", "command.quantri")]


def build_router() -> Router:
    router = Router(
        Fallbacks(
            text=fallback.unexpected_text,
            attachment=fallback.attachment,
            unknown_command=fallback.unknown_command,
            stale_action=fallback.stale_action,
            needs_start=onboarding.start_over,
        )
    )
    # Commands.
    router.command("start", onboarding.start, needs_person=False)
    router.command("menu", menu.open_menu)
    router.command("hoc", lessons.continue_learning)
    router.command("baihoc", lessons.list_lessons)
    router.command("tiendo", progress.show_progress)
    router.command("trogiup", help.show_help, needs_person=False)
    router.command("help", help.show_help, needs_person=False)
    router.command("doiten", onboarding.ask_name)
    router.command("doito", onboarding.change_group)
    router.command("xoadulieu", privacy.ask_erase, needs_person=False)
    router.command("lienket", linking.start_linking, needs_person=False)
    router.command("nhacnho", reminders.show_reminders)
    router.command("dung", reminders.stop_reminders)
    router.command("batdau", reminders.resume_reminders)
    router.command("hotro", support.ask_for_help)
    router.command("nhom", leader.open_group_menu)
    router.command("quantri", admin.open_admin_menu)
    # Actions: the payloads of options shown by the handlers.
    router.action("begin", onboarding.start, needs_person=False)
    router.action("consent", onboarding.answer_consent, needs_person=False)
    router.action("name", onboarding.answer_name)
    router.action("group", onboarding.group_action)
    router.action("menu", menu.open_menu)
    router.action("help", help.show_help, needs_person=False)
    router.action("next", lessons.continue_learning)
    router.action("lessons", lessons.list_lessons)
    router.action("lesson", lessons.open_lesson)
    router.action("card", lessons.turn_card)
    router.action("quiz", quiz.start_quiz)
    router.action("ans", quiz.answer)
    router.action("progress", progress.show_progress)
    router.action("erase", privacy.answer_erase, needs_person=False)
    router.action("link", linking.link_action, needs_person=False, free={"ok", "deny"})
    router.action("reminders", reminders.reminders_action)
    router.action("cert", certificate.show_certificate)
    router.action("hotro", support.support_action)
    router.action("lead", leader.lead_action)
    router.action("adm", admin.admin_action)
    router.action("bc", composer.composer_action)
    # Free text in a step that expects it.
    router.step(Step.ASK_NAME, onboarding.receive_name, needs_person=True)
    router.step(Step.CHOOSE_GROUP, onboarding.search_group, needs_person=True)
    router.step(Step.LINK_CODE, linking.receive_code)
    router.step(Step.HELP_TEXT, support.receive_request, needs_person=True)
    router.step(Step.HELP_REPLY, support.receive_reply, needs_person=True)
    router.step(Step.ASSIST_NAME, assisted.receive_name, needs_person=True)
    router.step(Step.COMPOSE_TEXT, composer.receive_text, needs_person=True, media=True)
    router.step(Step.COMPOSE_TIME, composer.receive_time, needs_person=True)
    return router
