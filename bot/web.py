"""The bot's own web endpoint (aiohttp): channel webhooks, published media, a health check.

- ``POST <channel.webhook_path>`` for every channel given (``/webhooks/zalo-bot``,
  ``/webhooks/zalo-oa``): the channel verifies its secret or signature, parses the body
  and starts handling it as a task, so the answer is quick (Zalo OA wants it within 2 s).
- ``GET /media/{name}``: files of the :class:`~bot.media.MediaStore` by their unguessable
  names; any other name is 404, so there is no way out of the folder. They carry residents'
  names (certificates, ward workbooks), so no cache may keep a copy (``private, no-store``).
- ``GET /healthz``: ``{"ok": true}`` for load balancers and compose health checks.
- ``GET /metrics``: the process's metrics in the Prometheus text format (``bot.metrics``), the
  outbox depth read from the database at each scrape.
- ``/web/…``: the dashboard for leaders and ward staff (``bot.dashboard``), when given.

No error escapes as a 500 page with a traceback: a middleware logs it and answers a bare
JSON 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from bot.media import MediaStore
from storage.db import SessionFactory

if TYPE_CHECKING:
    from bot.dashboard import Dashboard

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # webhook bodies are small; refuse anything bigger


class WebhookChannel(Protocol):
    """A channel that receives updates by webhook (the Zalo adapters)."""

    webhook_path: str

    async def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> int: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _no_tracebacks(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        # The route's pattern, never the path: a path can hold a secret (a sign-in link's
        # token, /web/vao/<token>; a media name; a ward bot's webhook key). The exception types
        # raised by our clients carry no request URL.
        log.exception("web request %s %s failed", request.method, route_of(request))
        return web.json_response({"ok": False}, status=500)


def route_of(request: web.Request) -> str:
    """The pattern of the route that matched (``/web/vao/{token}``), for logs."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def _webhook_handler(channel: WebhookChannel) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        status = await channel.handle_webhook(request.headers, body)
        return web.json_response({"ok": status == 200}, status=status)

    return handle


def _media_handler(media: MediaStore) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = media.resolve(name)
        if path is None:
            raise web.HTTPNotFound()
        # Personal data: no shared cache (a proxy, a CDN) or browser may keep a copy.
        return web.FileResponse(path, headers={"Content-Type": media.content_type(name),
                                               "Cache-Control": "private, no-store"})

    return handle


async def _health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


def _metrics_handler(sessions: SessionFactory | None) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        from bot import metrics

        if sessions is not None:
            await metrics.read_outbox_depth(sessions)
        return web.Response(body=metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE})

    return handle


def create_web_app(*, channels: Sequence[WebhookChannel] = (), media: MediaStore | None = None,
                   sessions: SessionFactory | None = None, dashboard: Dashboard | None = None) -> web.Application:
    """The web application; nothing listens until it is started (see :func:`start_web`).
    ``sessions``: the database the metrics read the outbox depth from; ``dashboard``: serve
    the web dashboard under ``/web/``."""
    middlewares = [_no_tracebacks]
    if dashboard is not None:
        from bot.dashboard.pages import Pages, security_headers

        # Outermost (the first runs first): the bare 500 of _no_tracebacks gets the headers too.
        middlewares.insert(0, security_headers)
    app = web.Application(client_max_size=MAX_BODY, middlewares=middlewares)
    if dashboard is not None:
        app.router.add_routes(Pages(dashboard).routes())
    for channel in channels:
        app.router.add_post(channel.webhook_path, _webhook_handler(channel))
    if media is not None:
        app.router.add_get("/media/{name}", _media_handler(media))
    app.router.add_get("/healthz", _health)
    app.router.add_get("/metrics", _metrics_handler(sessions))
    return app


async def start_web(app: web.Application, *, host: str, port: int) -> web.AppRunner:
    """Listen on ``host:port``; stop with ``await runner.cleanup()``. Port 0 picks a free
    port (``runner.addresses[0][1]``)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
