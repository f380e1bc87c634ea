"""The bot's web endpoint (bot/web.py) and the Zalo factory that feeds it, over HTTP on
127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest

from bot.app import App
from bot.channels.zalo import ZaloBotChannel, ZaloBotTransport, ZaloOAChannel, ZaloOATransport, build_zalo_channels
from bot.config import Settings
from bot.media import MediaStore
from bot.web import create_web_app, start_web
from tests.support import ManualClock


class Exploding:
    webhook_path = "/webhooks/explode"

    async def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> int:
        raise RuntimeError("a bug with a secret-looking detail")


@pytest.fixture
async def media(tmp_path: Path, clock: ManualClock) -> MediaStore:
    return MediaStore(tmp_path / "media", clock=clock, public_base_url="https://bot.example")


@pytest.fixture
async def base(media: MediaStore) -> AsyncIterator[str]:
    runner = await start_web(create_web_app(channels=[Exploding()], media=media), host="127.0.0.1", port=0)
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read()


async def raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written: HTTP clients normalise ``..`` away before sending,
    and an attacker's client does not."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("ascii"))
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, _ = response.partition(b"\r\n")
    return int(status_line.split()[1]), response


async def test_health_and_published_media_only_by_their_exact_names(base: str, media: MediaStore, tmp_path: Path) -> None:
    assert await get(base + "/healthz") == (200, b'{"ok": true}')
    source = tmp_path / "poster.jpg"
    source.write_bytes(b"\xff\xd8\xff poster")
    url = await media.url_for(source)
    assert url is not None and url.startswith("https://bot.example/media/")
    name = url.rsplit("/", 1)[1]
    assert await media.publish(source) == name  # the same content keeps its name
    assert await get(f"{base}/media/{name}") == (200, source.read_bytes())
    for probe in (".salt", "x" * 32 + ".jpg", name.upper(), "poster.jpg"):
        status, _ = await get(f"{base}/media/{probe}")
        assert status == 404, probe


@pytest.mark.parametrize("target", [
    "/media/../secret.txt", "/media/..%2Fsecret.txt", "/media/%2E%2E%2Fsecret.txt", "/media/%2e%2e%2fsecret.txt",
    "/media/..%5Csecret.txt", "/media/%2E%2E/secret.txt", "/media/..%252Fsecret.txt", "/media/%2Ftmp%2Fsecret.txt",
])
async def test_no_path_leaves_the_media_folder(base: str, media: MediaStore, tmp_path: Path, target: str) -> None:
    """The request line is sent byte for byte, ``..`` and encoded slashes included."""
    secret = tmp_path / "secret.txt"  # beside the media folder: "../secret.txt" from inside it
    secret.write_text("không được công bố")
    (tmp_path / "media").mkdir()
    status, response = await raw_get(base, target)
    assert status == 404, response[:200]
    assert secret.read_bytes() not in response


async def test_an_error_in_a_handler_is_a_bare_500(base: str, caplog: pytest.LogCaptureFixture) -> None:
    async with aiohttp.ClientSession() as http, http.post(base + "/webhooks/explode", data=b"{}") as response:
        assert response.status == 500 and await response.json() == {"ok": False}
    assert "web request POST /webhooks/explode failed" in caplog.text


async def test_the_factory_builds_what_the_settings_configure(app: App, tmp_path: Path) -> None:
    def build(**values: object):  # type: ignore[no-untyped-def]
        settings = Settings(_env_file=None, database_url=app.settings.database_url, **values)  # type: ignore[call-arg]
        return build_zalo_channels(settings, conversation=app.conversation, catalog=app.catalog,
                                   sessions=app.sessions, clock=app.clock, media_dir=tmp_path / "media")

    nothing = build()
    assert not nothing and nothing.transports == [] and not nothing.needs_web

    polling = build(zalo_bot_token="1:abc")
    [bot] = polling.channels
    assert isinstance(bot, ZaloBotChannel) and not bot.uses_webhook and not polling.needs_web
    [transport] = polling.transports
    assert isinstance(transport, ZaloBotTransport) and transport.channel == "zalo"
    assert transport.pacing.per_second == 5.0 and transport.capabilities.text_limit == 2000
    await polling.close()

    everything = build(zalo_bot_token="1:abc", zalo_webhook_secret="s" * 16, public_base_url="https://bot.example",
                       zalo_oa_id="388613280878808645", zalo_oa_app_id="36", zalo_oa_app_secret="a",
                       zalo_oa_secret_key="k", zalo_rate=2)
    bot, oa = everything.channels
    assert isinstance(oa, ZaloOAChannel) and bot.uses_webhook and everything.needs_web
    assert [type(t) for t in everything.transports] == [ZaloBotTransport, ZaloOATransport]
    assert all(t.pacing.per_second == 2 and t.capabilities.images for t in everything.transports)
    paths = {r.resource.canonical for r in everything.web_app().router.routes()}  # type: ignore[union-attr]
    assert paths == {"/webhooks/zalo-bot", "/webhooks/zalo-oa", "/media/{name}", "/healthz", "/metrics"}
    await everything.close()


async def test_published_files_are_served_for_a_week_then_deleted(
    base: str, media: MediaStore, clock: ManualClock, tmp_path: Path
) -> None:
    certificate = tmp_path / "giay-chung-nhan.png"
    certificate.write_bytes(b"\x89PNG a name on it")
    name = await media.publish(certificate)
    clock.advance(days=6, hours=23)
    assert await get(f"{base}/media/{name}") == (200, certificate.read_bytes())  # still within the week
    clock.advance(hours=2)
    assert (await get(f"{base}/media/{name}"))[0] == 404  # expired: refused…
    assert not (media.folder / name).exists()  # …and gone
    other = tmp_path / "bao-cao.xlsx"
    other.write_bytes(b"PK ward report")
    old = await media.publish(other)
    clock.advance(days=3)
    again = await media.publish(certificate)
    assert again == name and (media.folder / old).exists()  # a 3-day-old file is kept
    clock.advance(days=5)
    assert await media.publish(certificate) == name and not (media.folder / old).exists()  # pruned when publishing
    assert await get(f"{base}/media/{name}") == (200, certificate.read_bytes())  # published again: served again


async def test_published_media_is_never_cached(base: str, media: MediaStore, tmp_path: Path) -> None:
    """Certificates and ward workbooks carry residents' names: no proxy or browser keeps them."""
    certificate = tmp_path / "certificate.png"
    certificate.write_bytes(b"\x89PNG name of a resident")
    name = await media.publish(certificate)
    async with aiohttp.ClientSession() as http, http.get(f"{base}/media/{name}") as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "private, no-store"
