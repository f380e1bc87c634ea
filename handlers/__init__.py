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
    web,
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
LEADER_COMMANDS: list[tuple[str, str]] = [("nhom", "command.nhom"), ("web", "command.web")]
ADMIN_COMMANDS: list[tuple[str, str]] = [("quantri", "command.quantri"), ("web", "command.web")]


def build_router() -> Router:
    """Every command, action and text step, in order.

    Actions are *step-bound* unless marked ``free``: a bound action is honoured only while it is
    one of the options the bot offered last (consent, name, group, quiz answers, erasure,
    linking, the composer, confirmations…), so a double tap, an old button or a forged payload
    changes nothing. Free actions are navigation and actions authorised from the database alone
    (they also come in messages sent through the outbox). ``onboarding`` marks what may run
    before a resident has a name and a group.
    """
    router = Router(
        Fallbacks(
            text=fallback.unexpected_text,
            attachment=fallback.attachment,
            unknown_command=fallback.unknown_command,
            stale_action=fallback.stale_action,
            needs_start=onboarding.start_over,
            repeated_action=fallback.repeated_action,
            confused=fallback.confused,
            greeted=fallback.greeted,
            cancelled=fallback.cancelled,
            ambiguous=fallback.ambiguous,
            incomplete=onboarding.resume_incomplete,
            onboarded=onboarding.is_onboarded,
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
    router.command("doiten", onboarding.ask_name, onboarding=True)
    router.command("doito", onboarding.change_group, onboarding=True)
    router.command("xoadulieu", privacy.ask_erase, needs_person=False)
    router.command("lienket", linking.start_linking, needs_person=False)
    router.command("nhacnho", reminders.show_reminders)
    router.command("dung", reminders.stop_reminders)
    router.command("batdau", reminders.resume_reminders)
    router.command("hotro", support.ask_for_help)
    router.command("nhom", leader.open_group_menu)
    router.command("quantri", admin.open_admin_menu)
    router.command("web", web.send_sign_in_link)
    # Actions: the payloads of options shown by the handlers.
    router.action("begin", onboarding.start, needs_person=False, free=True)
    router.action("consent", onboarding.answer_consent, needs_person=False)
    router.action("name", onboarding.answer_name, onboarding=True)
    router.action("group", onboarding.group_action, onboarding=True)
    router.action("menu", menu.open_menu, free=True)
    router.action("help", help.show_help, needs_person=False, free=True)
    router.action("next", lessons.continue_learning, free=True)
    router.action("lessons", lessons.list_lessons, free=True)
    router.action("lesson", lessons.open_lesson, free=True)
    router.action("card", lessons.turn_card)
    router.action("quiz", quiz.start_quiz)
    router.action("ans", quiz.answer)
    router.action("progress", progress.show_progress, free=True)
    router.action("erase", privacy.answer_erase, needs_person=False)
    # The owner's answer to a link request comes in a message sent through the outbox.
    router.action("link", linking.link_action, needs_person=False, free={"ok", "deny"})
    router.action("reminders", reminders.reminders_action, free=True)  # settings, also in reminders sent
    router.action("cert", certificate.show_certificate, free=True)
    # "✍️ Trả lời" and "🙋 Hỏi thêm" come in messages sent through the outbox.
    router.action("hotro", support.support_action, free={"", "ask", "rep", "list", "no"})
    # Leaders' and admins' views and idempotent actions are authorised from the database on
    # every press (the digest carries "lead:g:…"); a nudge, a new invitation and what is asked
    # to confirm (erase a person, cancel a broadcast, remove a leader) stay bound.
    router.action("lead", leader.lead_action, free={"", "g", "m", "p", "as", "al", "an", "ac", "ad", "ud"})
    router.action("adm", admin.admin_action,
                  free={"", "w", "ov", "rk", "bl", "rp", "br", "bx", "jl", "jq", "il", "iv", "rv",
                        "gl", "g", "nl", "hq", "bk"})
    router.action("bc", composer.composer_action, free={"new"})
    # Free text in a step that expects it.
    router.step(Step.ASK_NAME, onboarding.receive_name, needs_person=True, onboarding=True)
    router.step(Step.CHOOSE_GROUP, onboarding.search_group, needs_person=True, onboarding=True)
    router.step(Step.LINK_CODE, linking.receive_code)
    router.step(Step.HELP_TEXT, support.receive_request, needs_person=True)
    router.step(Step.HELP_REPLY, support.receive_reply, needs_person=True)
    router.step(Step.ASSIST_NAME, assisted.receive_name, needs_person=True)
    router.step(Step.COMPOSE_TEXT, composer.receive_text, needs_person=True, media=True)
    router.step(Step.COMPOSE_TIME, composer.receive_time, needs_person=True)
    router.step(Step.GROUP_ADULTS, admin_groups.receive_adults, needs_person=True)
    return router
