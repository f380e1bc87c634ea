"""``/xoadulieu``: delete my personal data, after a confirmation.

Everything that is theirs or carries their name or words goes (``storage.people.erase_person``:
name, channel identities and conversations, quiz answers, help questions and the messages
that carried them, roles, link codes); the group keeps an anonymous count of completed
lessons. The action is only carried out when it follows the confirmation question, never
from a forged button alone. Leaders and admins erase someone they added by name (no phone)
from the assisted-completion flow (``handlers.assisted``), with the same function.
"""

from __future__ import annotations

from bot.core.conversation import Context
from handlers import menu
from handlers.common import words
from handlers.steps import Step
from storage import audit
from storage.people import erase_person, forget_identities


async def ask_erase(ctx: Context) -> None:
    t = ctx.t
    ctx.goto(Step.CONFIRM_ERASE)
    key = "privacy.confirm" if ctx.person is not None else "privacy.confirm_nothing"
    ctx.ask(t(key), [(t("privacy.yes"), "erase:yes"), (t("privacy.no"), "erase:no", words(ctx, "words.no"))])


async def answer_erase(ctx: Context) -> None:
    t = ctx.t
    if ctx.args != ("yes",) or ctx.state.step != Step.CONFIRM_ERASE:
        if ctx.person is not None:
            await menu.show_main_menu(ctx, t("privacy.kept"))
        else:
            ctx.say(t("privacy.kept"))
        return
    if ctx.person is not None and ctx.person.id is not None:
        person_id = ctx.person.id
        await erase_person(ctx.session, person_id=person_id, now=ctx.now)
        audit.record(ctx.session, actor=f"person:{person_id}", action="person.erase",
                     target=f"person:{person_id}", now=ctx.now)
    else:
        assert ctx.identity.id is not None
        await forget_identities(ctx.session, identity_id=ctx.identity.id)
    ctx.person = None
    ctx.erased = True
    ctx.say(t("privacy.done"))
