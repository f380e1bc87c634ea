"""Small helpers shared by the features: argument parsing, paging, generated files, local times."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.core.conversation import Context
from bot.core.text import is_plain_int

T = TypeVar("T")

PAGE_SIZE = 8  # options per page: a phone screen without scrolling
FILES_KEPT_SECONDS = 24 * 3600


def int_arg(ctx: Context, index: int, *, low: int = 0, high: int | None = None) -> int | None:
    """The ``index``-th action argument as an int in ``[low, high)``, or None if forged."""
    try:
        raw = ctx.args[index]
    except IndexError:
        return None
    if not is_plain_int(raw, max_digits=6):
        return None
    value = int(raw)
    if value < low or (high is not None and value >= high):
        return None
    return value


def page_count(items: Sequence[object], size: int = PAGE_SIZE) -> int:
    return max(1, -(-len(items) // size))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a long list of options: its items, and the ◀ / ▶ options and the
    "(Trang 2/3)" hint that go with it."""

    items: Sequence[T]
    number: int  # 0-based, within range
    count: int

    def nav(self, ctx: Context, action: str) -> list[tuple[str, str]]:
        """◀ / ▶ options whose action is ``action`` followed by the page number."""
        options = []
        if self.number > 0:
            options.append((ctx.t("common.page_prev"), f"{action}{self.number - 1}"))
        if self.number + 1 < self.count:
            options.append((ctx.t("common.page_next"), f"{action}{self.number + 1}"))
        return options

    def hint(self, ctx: Context) -> str:
        return ctx.t("common.page_of", page=self.number + 1, pages=self.count) if self.count > 1 else ""


def paginate(items: Sequence[T], page: int, *, size: int = PAGE_SIZE) -> Page[T]:
    """The page ``page`` of ``items`` (a page past the end shows the last one)."""
    count = page_count(items, size)
    number = max(0, min(page, count - 1))
    return Page(items[number * size : (number + 1) * size], number, count)


def words(ctx: Context, key: str) -> tuple[str, ...]:
    """A comma-separated list of words from the catalogue (typed answers such as "có")."""
    return tuple(w.strip() for w in ctx.t(key).split(",") if w.strip())


def write_file(ctx: Context, *, prefix: str, suffix: str, data: bytes) -> Path:
    """A generated file (report, chart, certificate, QR code) under the files folder, with a
    name nobody can guess; a reply carries its path to the adapter. Files written more than
    a day before ``ctx.now`` are deleted on the way."""
    folder = ctx.services.files_dir / "out"
    folder.mkdir(parents=True, exist_ok=True)
    # Sent files are not needed for long (Zalo serves its own copy): keep a day of them.
    # A file's modification time is set to ctx.now, so its age is measured on the one clock.
    now = ctx.now.timestamp()
    for old in folder.iterdir():
        if old.is_file() and old.stat().st_mtime < now - FILES_KEPT_SECONDS:
            old.unlink(missing_ok=True)
    path = folder / f"{prefix}-{secrets.token_urlsafe(9)}{suffix}"
    path.write_bytes(data)
    os.utime(path, (now, now))
    return path


def local_time(ctx: Context, moment: datetime | None, fmt: str = "%H:%M %d/%m/%Y") -> str:
    """A stored UTC time as the ward reads it."""
    return moment.astimezone(ctx.services.zone).strftime(fmt) if moment is not None else "—"
