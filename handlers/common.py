"""Small helpers shared by the features: argument parsing and paging."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from bot.core.conversation import Context

T = TypeVar("T")

PAGE_SIZE = 8  # options per page: a phone screen without scrolling


def int_arg(ctx: Context, index: int, *, low: int = 0, high: int | None = None) -> int | None:
    """The ``index``-th action argument as an int in ``[low, high)``, or None if forged."""
    try:
        raw = ctx.args[index]
    except IndexError:
        return None
    if not raw.isdigit() or len(raw) > 6:
        return None
    value = int(raw)
    if value < low or (high is not None and value >= high):
        return None
    return value


def page_of(items: Sequence[T], page: int) -> tuple[Sequence[T], bool, bool]:
    """The items on ``page`` and whether a previous / next page exists."""
    start = page * PAGE_SIZE
    return items[start : start + PAGE_SIZE], page > 0, start + PAGE_SIZE < len(items)


def page_count(items: Sequence[object]) -> int:
    return max(1, -(-len(items) // PAGE_SIZE))


def words(ctx: Context, key: str) -> tuple[str, ...]:
    """A comma-separated list of words from the catalogue (typed answers such as "có")."""
    return tuple(w.strip() for w in ctx.t(key).split(",") if w.strip())
