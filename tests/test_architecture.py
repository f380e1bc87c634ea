"""The core stays channel-free (``bot/core`` and ``handlers/`` import no channel library), and time
is an input: only ``SystemClock.now`` reads the wall clock, only ``main()`` builds it, and no test
reads it."""

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


# -- one clock ---------------------------------------------------------------------------

# Reading any of these is reading the wall clock…
WALL_CLOCK = {"datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
              "time.time", "time.time_ns"}
# …and these read it when called with at most this many arguments (no time given: "now");
# os.utime(path) stamps a file with it.
WALL_CLOCK_BY_DEFAULT = {"time.localtime": 0, "time.gmtime": 0, "time.ctime": 0, "time.asctime": 0,
                         "time.strftime": 1, "os.utime": 1}
THE_CLOCK = ("bot/core/conversation.py", "SystemClock.now")  # the one place allowed to read it


class _WallClockReads(ast.NodeVisitor):
    """Every reference to a wall-clock function, however it was imported (``import time as t``,
    ``from datetime import datetime as D``, ``from time import time``), called or passed on."""

    def __init__(self, tree: ast.Module) -> None:
        self.aliases: dict[str, set[str]] = {}
        for node in ast.walk(tree):  # imports anywhere in the module, function-level ones too
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.aliases.setdefault(local, set()).add(alias.name if alias.asname else local)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    self.aliases.setdefault(alias.asname or alias.name, set()).add(f"{node.module}.{alias.name}")
        self.scope: list[str] = []
        self.found: list[tuple[int, str, str]] = []  # line, qualified name, enclosing class/function
        self._calls: dict[int, ast.Call] = {}

    def names(self, node: ast.expr) -> set[str]:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, set())
        if isinstance(node, ast.Attribute):
            return {f"{base}.{node.attr}" for base in self.names(node.value)}
        return set()

    def _check(self, node: ast.expr) -> None:
        call = self._calls.get(id(node))
        arguments = len(call.args) + len(call.keywords) if call is not None else None
        for name in self.names(node):
            if name in WALL_CLOCK or (name in WALL_CLOCK_BY_DEFAULT and (
                    arguments is None or arguments <= WALL_CLOCK_BY_DEFAULT[name])):
                self.found.append((node.lineno, name, ".".join(self.scope)))

    def visit_Call(self, node: ast.Call) -> None:
        self._calls[id(node.func)] = node
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self._check(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check(node)  # the longest name first: "datetime.datetime.now", not "datetime.datetime"
        if not self.names(node):
            self.generic_visit(node)

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _scoped


def _wall_clock_reads(source: str) -> list[tuple[int, str, str]]:
    tree = ast.parse(source)
    finder = _WallClockReads(tree)
    finder.visit(tree)
    return finder.found


def test_the_finder_sees_the_wall_clock_under_any_name() -> None:
    source = """
import datetime as dt, os, time as t
from datetime import UTC, date, datetime as D, time
from time import time as wall, monotonic
from dataclasses import field

a = dt.datetime.now(UTC)
b = D.utcnow()
c = date.today()
d = t.time()
e = wall()
f = field(default_factory=D.now)
def later(clock):
    g = os.utime("f")
    h = t.localtime()
    i = t.strftime("%H:%M")
    return t.strftime("%H", t.gmtime(0)), clock.now(), monotonic(), t.perf_counter(), D.fromtimestamp(0), t.localtime(0), time(21), os.utime("f", (0, 0))
"""
    found = [(line, name) for line, name, _ in _wall_clock_reads(source)]
    assert found == [(7, "datetime.datetime.now"), (8, "datetime.datetime.utcnow"), (9, "datetime.date.today"),
                     (10, "time.time"), (11, "time.time"), (12, "datetime.datetime.now"), (14, "os.utime"),
                     (15, "time.localtime"), (16, "time.strftime")]


def test_nothing_reads_the_wall_clock_but_the_system_clock() -> None:
    """"Now" is an input: bot/, handlers/ and storage/ get it from the one Clock (tests give a
    ManualClock); only SystemClock.now reads the wall clock. time.monotonic and
    time.perf_counter measure durations and are not the wall clock."""
    files = [f for folder in ("bot", "handlers", "storage") for f in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50
    reads = {
        f"{path.relative_to(ROOT)}:{line} {name} (in {scope or 'the module'})"
        for path in files
        for line, name, scope in _wall_clock_reads(path.read_text(encoding="utf-8"))
        if (str(path.relative_to(ROOT)), scope) != THE_CLOCK
    }
    assert reads == set()
    allowed = _wall_clock_reads((ROOT / THE_CLOCK[0]).read_text(encoding="utf-8"))
    assert [(name, scope) for _, name, scope in allowed] == [("datetime.datetime.now", THE_CLOCK[1])]


def _uses_of_system_clock(path: Path) -> list[int]:
    """Lines of ``path`` that import, name or call SystemClock (its own ``class`` line aside)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and any(alias.name == "SystemClock" for alias in node.names):
            lines.append(node.lineno)
        elif (isinstance(node, ast.Name) and node.id == "SystemClock") or (
                isinstance(node, ast.Attribute) and node.attr == "SystemClock"):
            lines.append(node.lineno)
    return lines


def test_only_main_builds_the_system_clock() -> None:
    """No constructor or default falls back to the wall clock (``clock or SystemClock()``,
    ``default_factory=SystemClock``): ``main()`` builds the one SystemClock and the composition
    root passes it on."""
    files = [f for folder in ("bot", "handlers", "storage") for f in sorted((ROOT / folder).rglob("*.py"))]
    uses = {str(path.relative_to(ROOT)) for path in files if _uses_of_system_clock(path)}
    assert uses == {"bot/__main__.py"}


def test_the_tests_never_read_the_wall_clock() -> None:
    """Tests move a ManualClock (or a RunningClock from a fixed start) and pass "now" on; only
    the fakes of the network peers stamp their wire messages with their own time, as the real
    servers do (the bot reads nothing from those stamps but the OA signature input)."""
    files = [f for f in sorted((ROOT / "tests").rglob("*.py")) if "fakes" not in f.relative_to(ROOT).parts]
    reads = {f"{path.relative_to(ROOT)}:{line} {name}"
             for path in files for line, name, _ in _wall_clock_reads(path.read_text(encoding="utf-8"))}
    assert reads == set()
    assert [str(path.relative_to(ROOT)) for path in files if _uses_of_system_clock(path)] == []
