"""``hocvuso admin add``: the first ward admin, appointed from the shell."""

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


@commands.command("add")
def admin_add(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Tài khoản người đó đã dùng để mở bot, ví dụ telegram:123456789")],
    ward: Annotated[str | None, typer.Option("--ward", help="Mã phường/xã (bỏ trống nếu chỉ có một)")] = None,
) -> None:
    """Cấp quyền cán bộ quản trị phường/xã cho một người đã mở bot và đồng ý (việc đầu tiên khi triển khai)."""
    from storage import audit
    from storage.roles import RoleError, add_admin

    settings = context.settings()
    catalog = Catalog.load()
    channel, _, external_id = account.partition(":")
    if not channel or not external_id:
        raise context.fail(catalog.text("cli.admin_bad_account", account=account))

    async def work(session: AsyncSession) -> tuple[str, str, bool]:
        now = context.now(ctx)
        person, chosen, new = await add_admin(session, channel=channel, external_id=external_id, ward_code=ward, now=now)
        if new:
            audit.record(session, actor="cli", action="role.grant", target=f"person:{person.id}", now=now,
                         details={"kind": "admin", "ward": chosen.id})
        return person.display_name or account, chosen.name, new

    try:
        name, ward_name, new = context.run_work(settings, work)
    except RoleError as exc:
        raise context.fail(catalog.text(ADMIN_REFUSALS[exc.reason], **exc.values)) from None
    typer.echo(catalog.text("cli.admin_added" if new else "cli.admin_already", name=name, ward=ward_name))
