"""Links that start a conversation with a parameter: join a group (``g_<code>``) or accept a
leader invitation (``ld_<code>``).

Telegram has deep links (``https://t.me/<bot>?start=<param>``, parameter ≤ 64 characters of
``A-Za-z0-9_-``). Zalo's Bot Platform documents none, so there the link is the text to send
(``/start g_TDP01``), which the engine reads the same way.
"""

from __future__ import annotations

import re

PARAM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def start_link(channel: str, param: str, *, telegram_username: str | None) -> str:
    """A link (or, where the channel has none, the message to send) that starts the bot
    with ``param``."""
    if not PARAM.match(param):
        raise ValueError(f"start parameter {param!r} must be 1–64 characters of A-Z a-z 0-9 _ -")
    if channel == "telegram" and telegram_username:
        return f"https://t.me/{telegram_username.lstrip('@')}?start={param}"
    return f"/start {param}"


def group_param(group_code: str) -> str:
    """The start parameter of a group's join link, ``g_<code>``: also the short code printed
    under its QR code, which a resident may type to the bot where there is no deep link (Zalo)."""
    return f"g_{group_code}"


def group_link(group_code: str, *, telegram_username: str | None, channel: str = "telegram") -> str:
    return start_link(channel, group_param(group_code), telegram_username=telegram_username)


def invite_link(code: str, *, telegram_username: str | None, channel: str = "telegram") -> str:
    return start_link(channel, f"ld_{code}", telegram_username=telegram_username)
