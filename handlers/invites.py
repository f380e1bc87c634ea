"""Accepting a leader invitation: ``/start ld_<code>`` (the link an admin made in the chat).

Someone new gives consent first (nothing is stored before it), then the invitation is
used. An unknown, used or expired link, or one whose group was removed, is refused kindly
and changes nothing. Accepting is audited; the new leader's own group becomes the invited
group if they had none yet.
"""

from __future__ import annotations

from bot.core.conversation import Context
from storage import audit
from storage.models import ResidentGroup
from storage.roles import INVITE_PREFIX, Accepted, InviteProblem, consume_invite

REFUSALS = {
    InviteProblem.UNKNOWN: "invite.unknown",
    InviteProblem.USED: "invite.used",
    InviteProblem.EXPIRED: "invite.expired",
    InviteProblem.NO_GROUP: "invite.no_group",
}


def invite_code_from(args: tuple[str, ...]) -> str | None:
    if args and args[0].startswith(INVITE_PREFIX) and len(INVITE_PREFIX) < len(args[0]) <= 64:
        return args[0][len(INVITE_PREFIX) :]
    return None


async def accept(ctx: Context, code: str) -> ResidentGroup | None:
    """Use the invitation for the person in ``ctx``; says what happened. Returns the group
    led, or None when refused."""
    assert ctx.person is not None and ctx.person.id is not None
    result = await consume_invite(ctx.session, code=code, person_id=ctx.person.id, now=ctx.now, ward_id=ctx.ward_scope)
    if not isinstance(result, Accepted):
        ctx.say(ctx.t(REFUSALS[result]))
        return None
    group = result.group
    if result.new:
        audit.record(ctx.session, actor=f"person:{ctx.person.id}", action="invite.accept",
                     target=f"group:{group.id}", now=ctx.now,
                     details={"invite": result.invite.id, "granted_by": result.role.granted_by})
        ctx.say(ctx.t("invite.accepted", group=group.name))
    else:
        ctx.say(ctx.t("invite.already", group=group.name))
    if ctx.person.group_id is None:
        ctx.person.group_id = group.id
    return group
