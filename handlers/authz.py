"""Who may do what — asked of the database every time a leader or admin action runs.

Buttons are never trusted: ``lead:g:7`` pressed by someone who does not lead group 7 (a
forged callback, an old message after a role was revoked, a leader of another group) is
refused kindly and changes nothing but one ``refused`` audit row (at most one per actor a
minute). Every action that is allowed is written to the audit log with ids only (no names,
no message texts).
"""

from __future__ import annotations

from typing import Any

from bot.core.conversation import Context
from handlers import menu
from handlers.common import int_arg
from storage import audit
from storage.groups import get_group, get_ward
from storage.models import ResidentGroup, Ward
from storage.roles import administers, leads


def actor(ctx: Context) -> str:
    assert ctx.person is not None
    return f"person:{ctx.person.id}"


def record(ctx: Context, action: str, target: str, **details: Any) -> None:
    """Audit a leader or admin action (ids and counts only)."""
    audit.record(ctx.session, actor=actor(ctx), action=action, target=target, now=ctx.now, details=details)


async def refuse(ctx: Context) -> None:
    """The kind answer to an action this person may not take: nothing happens but a
    ``refused`` audit row naming the attempted action (at most one per actor a minute)."""
    who = actor(ctx) if ctx.person is not None else f"identity:{ctx.identity.id}"
    # A pressed action holds ids only; of a typed command only the command (no words of theirs).
    attempted = ctx.incoming.action or ((ctx.incoming.text or "").split() or [""])[0]
    await audit.record_refusal(ctx.session, actor=who, attempted=attempted, now=ctx.now)
    await menu.show_main_menu(ctx, ctx.t("roles.not_allowed"))


async def led_group(ctx: Context, index: int = 1) -> ResidentGroup | None:
    """The group named by action argument ``index`` if this person leads it; else refuse."""
    group_id = int_arg(ctx, index, low=1)
    group = await get_group(ctx.session, group_id=group_id) if group_id is not None else None
    if group is None or ctx.person is None or ctx.person.id is None or not await leads(
        ctx.session, person_id=ctx.person.id, group_id=group_id  # type: ignore[arg-type]
    ):
        await refuse(ctx)
        return None
    return group


async def admin_ward(ctx: Context, index: int = 1) -> Ward | None:
    """The ward named by action argument ``index`` if this person administers it; else refuse."""
    return await administered(ctx, int_arg(ctx, index, low=1))


async def administered(ctx: Context, ward_id: int | None) -> Ward | None:
    """The ward if this person administers it; else refuse."""
    ward = await get_ward(ctx.session, ward_id=ward_id) if ward_id is not None else None
    if ward is None or ctx.person is None or ctx.person.id is None or not await administers(
        ctx.session, person_id=ctx.person.id, ward_id=ward.id  # type: ignore[arg-type]
    ):
        await refuse(ctx)
        return None
    return ward


async def admin_group(ctx: Context, index: int = 1) -> tuple[Ward, ResidentGroup] | None:
    """The group named by argument ``index`` if this person administers its ward; else refuse."""
    group_id = int_arg(ctx, index, low=1)
    group = await get_group(ctx.session, group_id=group_id) if group_id is not None else None
    ward = await get_ward(ctx.session, ward_id=group.ward_id) if group is not None else None
    if group is None or ward is None or ctx.person is None or ctx.person.id is None or not await administers(
        ctx.session, person_id=ctx.person.id, ward_id=group.ward_id
    ):
        await refuse(ctx)
        return None
    return ward, group
