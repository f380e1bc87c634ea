"""Every text key used in the code and in the dashboard's templates exists in the Vietnamese
catalogue, with the same placeholders as the call passes, and no catalogue entry is unused."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from jinja2 import Environment, nodes

from bot.core.i18n import Catalog
from bot.dashboard.groups import COLUMNS
from bot.dashboard.reports import FILES
from handlers import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "bot" / "dashboard" / "templates"


def _templates() -> list[tuple[str, nodes.Template]]:
    """(file, parsed tree) of every dashboard template (Jinja2's own parser: comments are gone)."""
    env = Environment()
    return [(str(path.relative_to(ROOT)), env.parse(path.read_text(encoding="utf-8")))
            for path in sorted(TEMPLATES.glob("*.html"))]


def _template_calls() -> list[tuple[str, str, set[str] | None]]:
    """(file, key, keyword names or None if unknown) for every ``t("key", …)`` of a template."""
    found = []
    for name, tree in _templates():
        for call in tree.find_all(nodes.Call):
            if not (isinstance(call.node, nodes.Name) and call.node.name == "t" and call.args):
                continue
            first = call.args[0]
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                keywords = None if call.dyn_kwargs is not None else {k.key for k in call.kwargs}
                found.append((name, first.value, keywords))
    return found


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
    return found + _template_calls()


def test_every_key_used_exists_with_matching_placeholders(catalog: Catalog) -> None:
    calls = _calls()
    assert len(calls) > 80 and len(_template_calls()) > 200
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
    for _, tree in _templates():
        constants |= {c.value for c in tree.find_all(nodes.Const) if isinstance(c.value, str)}
    assert sorted(catalog.keys() - constants) == []


def test_keys_the_dashboard_chooses_at_run_time_exist(catalog: Catalog) -> None:
    """A template's ``t(column.title)`` or ``t(f.label)``: the key is a constant of the code,
    so the check above cannot see it; these are all of them."""
    dynamic = {(name, call.args[0].__class__.__name__) for name, tree in _templates()
               for call in tree.find_all(nodes.Call)
               if isinstance(call.node, nodes.Name) and call.node.name == "t"
               and not isinstance(call.args[0], nodes.Const)}
    assert dynamic == {("bot/dashboard/templates/groups_table.html", "Getattr"),
                       ("bot/dashboard/templates/report.html", "Getattr")}
    chosen = [c.title for c in COLUMNS] + [f.label for f in FILES.values()]
    assert [key for key in chosen if key not in catalog.keys()] == []


# -- forms of address (the rule at the top of the catalogue) -------------------------------

# Greeting, thanking or congratulating the reader by their own name.
_BY_NAME = re.compile(r"(?:\b(?:chào mừng|chào|cảm ơn|chúc mừng)\s+\{name\})|(?:\{name\}\s+ơi\b)",
                      re.IGNORECASE)
_BAN = re.compile(r"\bbạn\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…:\n]")
# Texts where {name} is someone else and "bạn" is the reader (a leader or an admin).
THIRD_PERSON_NAME = {"assisted.choose_lesson"}


def _addressed_by_name(catalog: Catalog) -> dict[str, str]:
    return {k: catalog.text(k) for k in catalog.keys("vi") if _BY_NAME.search(catalog.text(k))}


def test_a_text_that_addresses_the_reader_by_name_never_also_calls_them_ban(catalog: Catalog) -> None:
    addressed = _addressed_by_name(catalog)
    # The rule finds the greetings it is about (else it would pass by finding nothing).
    assert {"onboarding.joined", "menu.welcome_back", "reminders.message", "certificate.caption",
            "leader.nudge_message"} <= set(addressed)
    assert {k: v for k, v in addressed.items() if _BAN.search(v)} == {}


def test_no_sentence_names_someone_and_then_says_ban_unless_they_are_a_third_person(catalog: Catalog) -> None:
    """"Cảm ơn Bà Tư, bạn …" / "Chị Hoa … Bạn …" in one sentence: two forms of address for one
    reader. Allowed only where {name} is a third person (listed, and checked to still apply)."""
    mixed = set()
    for key in catalog.keys("vi"):
        for sentence in _SENTENCE_END.split(catalog.text(key)):
            at = sentence.find("{name}")
            if at >= 0 and _BAN.search(sentence, at):
                mixed.add(key)
    assert mixed == THIRD_PERSON_NAME


def test_the_start_command_says_what_it_does(catalog: Catalog) -> None:
    """/start opens the menu (or begins); it resets nothing, so it must not promise to."""
    descriptions = {command: catalog.text(key) for command, key in COMMANDS}
    assert "quay lại từ đầu" not in descriptions["start"] and "menu" in descriptions["start"]
    for key in catalog.keys("vi"):
        if key.startswith(("command.", "help.")):
            assert "từ đầu" not in catalog.text(key), key
