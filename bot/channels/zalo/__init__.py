"""Zalo: the Bot Platform adapter and the Official Account adapter, their outbox
transports, and :func:`build_zalo_channels`, which builds what the settings configure.

Modules: ``client`` (Bot API over httpx), ``bot_platform`` (the Bot adapter), ``oa_client``
(OA API and token rotation), ``oa`` (the OA adapter), ``render`` (replies → Zalo sends),
``transport`` (outbox transports). Per-chat order is ``bot.channels.ordering``; repeats are
dropped by the engine (``Incoming.event_id``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bot.accounts import Account, AccountKind, default_accounts
from bot.channels.zalo.bot_platform import WEBHOOK_PATH as BOT_WEBHOOK_PATH, ZaloBotChannel
from bot.channels.zalo.client import ZaloBotClient, ZaloBotError
from bot.channels.zalo.oa import WEBHOOK_PATH as OA_WEBHOOK_PATH, ZaloOAChannel
from bot.channels.zalo.oa_client import OATokens, ZaloOAClient, ZaloOAError
from bot.channels.zalo.transport import ZaloBotTransport, ZaloOATransport
from bot.config import Settings
from bot.core.conversation import Clock, Conversation
from bot.core.i18n import Catalog
from bot.delivery.transport import Pacing
from bot.media import MediaStore
from storage.db import SessionFactory

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "ZaloBotChannel", "ZaloBotClient", "ZaloBotError", "ZaloBotTransport", "ZaloChannels", "ZaloOAChannel",
    "ZaloOAClient", "ZaloOAError", "ZaloOATransport", "build_zalo_channels",
]

DEFAULT_MEDIA_DIR = Path("data/media")


@dataclass
class ZaloChannels:
    """The configured Zalo channels, their outbox transports and the media they publish."""

    channels: list[ZaloBotChannel | ZaloOAChannel] = field(default_factory=list)
    transports: list[ZaloBotTransport | ZaloOATransport] = field(default_factory=list)
    media: MediaStore | None = None

    def __bool__(self) -> bool:
        return bool(self.channels)

    def __iter__(self) -> Iterator[ZaloBotChannel | ZaloOAChannel]:
        return iter(self.channels)

    @property
    def needs_web(self) -> bool:
        """Whether the web endpoint must listen: an OA (webhook only), a Bot webhook, or
        images published for Zalo to fetch."""
        return any(
            isinstance(c, ZaloOAChannel) or (isinstance(c, ZaloBotChannel) and c.uses_webhook)
            for c in self.channels
        ) or bool(self.media and self.media.serves_urls)

    def web_app(self) -> web.Application:
        """An aiohttp application with the webhook routes, ``/media`` and ``/healthz``."""
        from bot.web import create_web_app

        return create_web_app(channels=self.channels, media=self.media)

    async def run(self) -> None:
        """Receive on every channel until :meth:`stop` (polling or waiting for webhooks)."""
        await asyncio.gather(*(channel.run() for channel in self.channels))

    async def stop(self) -> None:
        for channel in self.channels:
            await channel.stop()

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


def build_zalo_channels(
    settings: Settings,
    *,
    conversation: Conversation,
    catalog: Catalog,
    sessions: SessionFactory,
    clock: Clock,
    media_dir: Path = DEFAULT_MEDIA_DIR,
    files_dir: Path | None = None,
    accounts: Sequence[Account] | None = None,
) -> ZaloChannels:
    """Build a Bot Platform channel for every Zalo bot account and an OA channel for every Zalo
    Official Account (``accounts``, by default the single-ward settings' ones: ``ZALO_BOT_TOKEN``;
    ``ZALO_OA_ID`` with ``ZALO_OA_APP_ID``, ``ZALO_OA_APP_SECRET`` and ``ZALO_OA_SECRET_KEY``).
    An account of the accounts file answers on ``<webhook path>/<key>``. A Bot channel uses its webhook when it has a webhook secret and ``PUBLIC_BASE_URL``
    is set, else long polling."""
    public = str(settings.public_base_url).rstrip("/") if settings.public_base_url else None
    media = MediaStore(media_dir, clock=clock, public_base_url=public)
    result = ZaloChannels(media=media)

    for account in accounts if accounts is not None else default_accounts(settings):
        if account.kind != AccountKind.ZALO_BOT or account.token is None:
            continue
        client = ZaloBotClient(token=account.token.get_secret_value(), api_url=account.api_url or str(settings.zalo_api_url))
        secret = account.webhook_secret.get_secret_value() if account.webhook_secret else None
        path = account.webhook_path(BOT_WEBHOOK_PATH)
        bot = ZaloBotChannel(
            client=client,
            conversation=conversation,
            catalog=catalog,
            media=media,
            webhook_secret=secret,
            webhook_url=f"{public}{path}" if public and secret else None,
            files_dir=files_dir,
            channel=account.key,
            webhook_path=path,
        )
        result.channels.append(bot)
        pacing = Pacing(per_second=account.rate or settings.zalo_rate, per_chat_interval=1.0)
        result.transports.append(
            ZaloBotTransport(client=client, catalog=catalog, pacing=pacing, media=media, channel=account.key))

    for account in accounts if accounts is not None else default_accounts(settings):
        if account.kind != AccountKind.ZALO_OA or account.oa is None:
            continue
        oa = account.oa
        http = httpx.AsyncClient(timeout=15.0)
        tokens = OATokens(
            sessions=sessions, http=http, oauth_url=oa.oauth_url or str(settings.zalo_oauth_url), oa_id=oa.oa_id,
            app_id=oa.app_id, app_secret=oa.app_secret.get_secret_value(),
            seed_refresh_token=oa.refresh_token.get_secret_value() if oa.refresh_token else None, clock=clock,
        )
        oa_client = ZaloOAClient(api_url=account.api_url or str(settings.zalo_oa_api_url), tokens=tokens, http=http)
        result.channels.append(ZaloOAChannel(
            client=oa_client, conversation=conversation, catalog=catalog, sessions=sessions,
            oa_id=oa.oa_id, app_id=oa.app_id, secret_key=oa.secret_key.get_secret_value(), media=media, clock=clock,
            channel=account.key, webhook_path=account.webhook_path(OA_WEBHOOK_PATH),
        ))
        # Conservative: the OA app limit (~4,000 calls/min) is shared with every other call.
        pacing = Pacing(per_second=account.rate or settings.zalo_rate, per_chat_interval=1.0)
        result.transports.append(ZaloOATransport(client=oa_client, catalog=catalog, pacing=pacing, media=media,
                                                 clock=clock, channel=account.key))
    return result
