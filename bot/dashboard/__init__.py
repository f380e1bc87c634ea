"""The web dashboard for ward staff and leaders, served by the bot's web endpoint (``bot.web``).

Server-rendered pages (Jinja2 templates in ``templates/``, one stylesheet, no script), in
Vietnamese (every word from the catalogue, ``web.*``: the templates call ``t``), for the roles
and the numbers of the chat:

- ``GET /web/vao/<token>``: the page a ``/web`` link opens. It only asks to confirm (chat apps
  fetch links to show a preview: a GET must not use the link up); its button POSTs to
  ``/web/vao``, which uses the link once and opens a session (``bot.dashboard.access``).
- ``GET /web/``: the ward's overview (an admin), a choice of wards (an admin of several), or the
  groups a leader leads. ``GET /web/phuong/<ward>``: one ward's overview.
- ``GET /web/to/<group>``: a group's members and progress (its leaders, its ward's admins).
- ``POST /web/thoat``: sign out.

Every request reads the person's roles from the database again; every POST carries the
session's CSRF token. The numbers come from ``bot.overview``, as in the chat.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import Network
from bot.core.conversation import DEFAULT_ZONE, Clock, Services
from bot.core.i18n import Catalog
from bot.delivery.quiet import QuietHours
from bot.curriculum import LessonLibrary
from storage.db import SessionFactory

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"


@dataclass(frozen=True)
class Dashboard:
    """What the pages need, built by the composition root (``bot.app``)."""

    reads: SessionFactory  # reading the pages' numbers
    writes: SessionFactory  # sign-in, sessions (on SQLite: transactions that take the write lock first)
    clock: Clock
    catalog: Catalog  # every word of the pages (the templates' ``t``, ``bot.dashboard.pages``)
    lessons: LessonLibrary
    zone: ZoneInfo
    secure: bool  # served over HTTPS (PUBLIC_BASE_URL is https): cookies are marked Secure
    # The broadcasts' pages: the chat composer's quiet hours, send rates and files folder (``Services``).
    quiet: QuietHours = field(default_factory=lambda: QuietHours(ZoneInfo(DEFAULT_ZONE), time(21), time(7)))
    send_rates: dict[str, float] = field(default_factory=dict)
    files_dir: Path = Path("data/files")
    report_signer: tuple[str, str] = ("CHỦ TỊCH", "")  # REPORT_SIGNER_TITLE, REPORT_SIGNER_NAME: the report's signature
    # The chat's services, for the actions the pages share with it (reminder policy, bots' usernames).
    services: Services | None = None
    # WEB_TRUSTED_PROXIES: peers whose X-Forwarded-For names the client (``access.client_address``).
    trusted_proxies: tuple[Network, ...] = ()
    # Keys the HMAC a refused sign-in's client address is stored as (``bot.app.client_secret``:
    # derived from the settings' secrets, so every web replica agrees; random if there are none).
    client_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))


def number(value: object) -> int | None:
    """A form's or an address's id or count: ASCII digits only, at most nine (``str.isdigit``
    also accepts "²" and other digits ``int`` refuses); anything else is None."""
    if isinstance(value, str) and 0 < len(value) <= 9 and value.isascii() and value.isdigit():
        return int(value)
    return None
