"""Shared fixtures. See tests/README.md for how the suite is built.

- Every test gets a fresh database (a SQLite file in tmp_path, or a fresh PostgreSQL
  schema for tests parametrised over both).
- Real network access is refused: only loopback and Unix sockets may be opened.
- Time is a ManualClock: tests move it, nothing sleeps.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import bot.channels.telegram  # noqa: F401  (first: aiogram imported as the bot does, types built when used)
import storage.models  # noqa: F401  (registers the tables)
from bot.app import App, build_app
from bot.config import Settings
from bot.core.i18n import Catalog
from bot.curriculum import LessonLibrary, load_library
from bot.group_import import import_groups, parse_groups_csv
from tests.support import ManualClock

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
START = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # a Monday, 10:00 in Hà Nội


# -- no real network -----------------------------------------------------------------

def _is_local(host: object) -> bool:
    if not isinstance(host, str):
        return True  # Unix sockets and socketpairs
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_external_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guard(address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if not _is_local(host):
            raise OSError(f"test tried to reach {address!r}: only loopback is allowed")

    def connect(self: socket.socket, address: object) -> None:
        guard(address)
        return real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        guard(address)
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if host is not None and not _is_local(host if isinstance(host, str) else str(host)):
            raise OSError(f"test tried to resolve {host!r}: only loopback is allowed")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# -- content ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture(scope="session")
def library() -> LessonLibrary:
    return load_library()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


# -- databases -------------------------------------------------------------------------

@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards."""
    name = f"hocvuso_t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        async with postgres_database() as url:
            yield url


async def _make_app(url: str, clock: ManualClock, library: LessonLibrary, files: Path) -> App:
    app = build_app(Settings(database_url=url, _env_file=None), clock=clock, lessons=library,  # type: ignore[call-arg]
                    files_dir=files)
    async with app.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    app.conversation.reraise = True  # an unexpected error fails the test instead of apologising
    return app


@pytest.fixture
async def app(sqlite_url: str, clock: ManualClock, library: LessonLibrary, tmp_path: Path) -> AsyncIterator[App]:
    app = await _make_app(sqlite_url, clock, library, tmp_path / "files")
    yield app
    await app.close()


@pytest.fixture
async def any_app(any_db_url: str, clock: ManualClock, library: LessonLibrary, tmp_path: Path) -> AsyncIterator[App]:
    app = await _make_app(any_db_url, clock, library, tmp_path / "files")
    yield app
    await app.close()


async def seed_demo_groups(app: App) -> None:
    rows, errors = parse_groups_csv((ROOT / "examples" / "demo-ward.csv").read_bytes())
    assert not errors
    async with app.sessions() as session, session.begin():
        await import_groups(session, rows=rows, actor="test", now=START)


@pytest.fixture
async def ward(app: App) -> App:
    """The app with the demo ward's ten groups."""
    await seed_demo_groups(app)
    return app
