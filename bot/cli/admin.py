"""``hocvuso admin add``: the first ward admin, appointed from the shell; ``hocvuso admin
remove-leader``: a leader role removed from the shell, the person told as in the chat."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cli import context
from bot.core.i18n import Catalog

commands = typer.Typer(help="Cán bộ quản trị phường/xã.", no_args_is_help=True)

ADMIN_REFUSALS = {
    "needs_start": "cli.admin_needs_start",
    "ward_unknown": "cli.admin_ward_unknown",
    "ward_required": "cli.admin_ward_required",
}

LEADER_REFUSALS = {
    "group_unknown": "cli.leader_group_unknown",
    "account_unknown": "cli.leader_account_unknown",
    "not_leader": "cli.leader_not_leader",
}


def _account(catalog: Catalog, account: str) -> tuple[str, str]:
    """``channel:external_id`` as typed by the operator (``telegram:123456789``), or a precise error."""
    channel, _, external_id = account.partition(":")
    if not channel or not external_id:
        raise context.fail(catalog.text("cli.admin_bad_account", account=account))
    return channel, external_id


@commands.command("add")
def admin_add(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Tài khoản người đó đã dùng để mở bot, ví dụ telegram:123456789")],
    ward: Annotated[str | None, typer.Option("--ward", help="Mã phường/xã (bỏ trống nếu chỉ có một)")] = None,
    city: Annotated[bool, typer.Option("--city", help="Quản trị mọi phường/xã (cán bộ của thành phố)")] = False,
) -> None:
    """Cấp quyền cán bộ quản trị phường/xã cho một người đã mở bot và đồng ý (việc đầu tiên khi triển khai)."""
    from storage import audit
    from storage.roles import RoleError, add_admin

    settings = context.settings()
    catalog = Catalog.load()
    channel, external_id = _account(catalog, account)

    async def work(session: AsyncSession) -> tuple[str, str, bool]:
        now = context.now(ctx)
        person, chosen, new = await add_admin(session, channel=channel, external_id=external_id, ward_code=ward,
                                              now=now, city=city)
        if new:
            audit.record(session, actor="cli", action="role.grant", target=f"person:{person.id}", now=now,
                         details={"kind": "admin", "ward": chosen.id if chosen else "city"})
        return person.display_name or account, chosen.name if chosen else catalog.text("cli.admin_city"), new

    try:
        name, ward_name, new = context.run_work(settings, work)
    except RoleError as exc:
        raise context.fail(catalog.text(ADMIN_REFUSALS[exc.reason], **exc.values)) from None
    typer.echo(catalog.text("cli.admin_added" if new else "cli.admin_already", name=name, ward=ward_name))


@commands.command("remove-leader")
def admin_remove_leader(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Tài khoản của tổ trưởng, ví dụ telegram:123456789")],
    group: Annotated[str, typer.Option("--group", help="Mã tổ người đó đang làm tổ trưởng")],
) -> None:
    """Bỏ quyền tổ trưởng của một người ở một tổ; người đó được báo trong chat (như khi cán bộ bỏ quyền trong chat)."""
    from handlers.admin_groups import tell_role_removed
    from storage import audit
    from storage.members import leader_role
    from storage.roles import revoke

    settings = context.settings()
    catalog = Catalog.load()
    channel, external_id = _account(catalog, account)

    async def work(session: AsyncSession) -> tuple[str, str, bool] | str:
        now = context.now(ctx)
        found = await leader_role(session, channel=channel, external_id=external_id, group_code=group)
        if isinstance(found, str):
            return found
        assert found.role.id is not None
        await revoke(session, role_id=found.role.id)
        # The same message (and dedupe key) as a removal in the chat.
        told = await tell_role_removed(session, role=found.role, group=found.group, ward=found.ward,
                                       catalog=catalog, now=now)
        audit.record(session, actor="cli", action="role.revoke", target=f"person:{found.person.id}", now=now,
                     details={"kind": "leader", "group": found.group.id, "told": told})
        return found.person.display_name or account, found.group.name, told

    done = context.run_work(settings, work)
    if isinstance(done, str):
        raise context.fail(catalog.text(LEADER_REFUSALS[done], account=account, group=group))
    name, group_name, told = done
    typer.echo(catalog.text("cli.leader_removed", name=name, group=group_name)
               + (" " + catalog.text("cli.leader_removed_told") if told else ""))
