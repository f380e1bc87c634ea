"""Every text key used in the code exists in the Vietnamese catalogue, with the same
placeholders as the call passes, and no catalogue entry is unused."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.core.i18n import Catalog
from handlers import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def _calls() -> list[tuple[str, str, set[str] | None]]:
    """(file, key, keyword names or None if unknown) for every catalogue lookup in the code."""
    found = []
    for path in sorted((ROOT / "bot").rglob("*.py")) + sorted((ROOT / "handlers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            args = node.args[1:] if name == "words" else node.args
            if name not in {"t", "text", "words"} or not args:
                continue
            first = args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and "." in first.value:
                keywords = None if any(k.arg is None for k in node.keywords) else {k.arg for k in node.keywords}
                found.append((str(path.relative_to(ROOT)), first.value, keywords))
    return found


def test_every_key_used_exists_with_matching_placeholders(catalog: Catalog) -> None:
    calls = _calls()
    assert len(calls) > 80
    keys = catalog.keys("vi")
    missing = sorted({(f, k) for f, k, _ in calls if k not in keys})
    assert missing == []
    mismatched = [
        (f, k, sorted(kw), sorted(catalog.placeholders(k)))
        for f, k, kw in calls
        if kw is not None and kw != catalog.placeholders(k)
    ]
    assert mismatched == []


def test_command_descriptions_exist_and_fit_telegram(catalog: Catalog) -> None:
    for command, key in COMMANDS:
        description = catalog.text(key)
        assert 3 <= len(description) <= 256 and command.isascii() and command.islower()


def test_no_unused_texts(catalog: Catalog) -> None:
    # A key may be chosen at run time (``key = "a.x" if ... else "a.y"``): count every string
    # constant of the code that names a key as a use.
    constants = set()
    for path in sorted((ROOT / "bot").rglob("*.py")) + sorted((ROOT / "handlers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
    assert sorted(catalog.keys() - constants) == []
