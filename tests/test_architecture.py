"""The core stays channel-free: ``bot/core`` and ``handlers/`` import no channel library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"aiogram", "httpx", "aiohttp", "telegram", "zalo_bot", "bot.channels"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_core_and_handlers_source_import_no_channel_library() -> None:
    files = sorted((ROOT / "bot" / "core").rglob("*.py")) + sorted((ROOT / "handlers").rglob("*.py"))
    assert len(files) > 10
    offenders = {str(f.relative_to(ROOT)): sorted(n for n in _imports(f) if _forbidden(n)) for f in files}
    assert {f: n for f, n in offenders.items() if n} == {}


def test_importing_core_and_handlers_loads_no_channel_library() -> None:
    # Catches indirect imports too (a helper module that pulls aiogram in).
    code = (
        "import sys, bot.core.conversation, bot.core.render, handlers; handlers.build_router();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'aiogram','httpx','aiohttp'}"
        " or m.startswith('bot.channels')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
