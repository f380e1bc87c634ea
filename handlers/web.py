"""``/web``: a one-time link to the web dashboard, for leaders and admins.

The link (``<web address>/web/vao/<token>``) opens a confirmation page; its button signs the
browser in (``bot.dashboard``). It works once, for 10 minutes (``storage.web_access``); a new
``/web`` makes the earlier unused link stop working. Only its hash is stored, and the token
is written nowhere but in this reply (no log line, no audit detail).
"""

from __future__ import annotations

from bot.core.conversation import Context
from handlers import authz, menu
from storage import audit
from storage.roles import roles_of
from storage.web_access import LINK_TTL, create_link

SIGN_IN_PATH = "/web/vao/"


async def send_sign_in_link(ctx: Context) -> None:
    assert ctx.person is not None and ctx.person.id is not None
    if not await roles_of(ctx.session, person_id=ctx.person.id):
        await audit.record_refusal(ctx.session, actor=authz.actor(ctx), attempted="/web", now=ctx.now)
        await menu.show_main_menu(ctx, ctx.t("web.not_allowed"))
        return
    token = await create_link(ctx.session, person_id=ctx.person.id, now=ctx.now)
    authz.record(ctx, "web.link", "web")
    url = ctx.services.web_url.rstrip("/") + SIGN_IN_PATH + token
    ctx.say(ctx.t("web.link", url=url, minutes=int(LINK_TTL.total_seconds() // 60)))
