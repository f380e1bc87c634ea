"""Every word of the dashboard comes from the catalogue (issue 13): no template of
``bot/dashboard/templates`` and no string of ``bot/dashboard/*.py`` holds Vietnamese of its own.

Vietnamese is written with letters outside ASCII, so the check is: no character outside ASCII
in a template's text, attributes and expressions (its ``{# comments #}`` are for developers), nor
in a string literal of the dashboard's Python (docstrings and comments aside) — except a few
typographic symbols that are no words. A Vietnamese word typed without its diacritics would slip
through; review catches that, this test catches the rest. That every ``t("key")`` exists, with
its placeholders, is ``tests/test_catalog.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from jinja2 import Environment, nodes
from markupsafe import Markup

from bot.dashboard.pages import markup_translator

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "bot" / "dashboard"

# Symbols a page may write itself: they are no words and no language has another for them.
SYMBOLS = {
    "–",  # a figure that has no value (an empty rate, a group without members)
    "·",  # between two pieces of a line, each from the catalogue
    "▲", "▼",  # the sorted column's direction, hidden from screen readers (its aria-sort says it)
}
# Strings of the dashboard's Python that are not the catalogue's to hold.
NOT_WORDS = {
    "CHỦ TỊCH",  # the default of REPORT_SIGNER_TITLE (bot.config): the operator's own words for the signature
}


def foreign(text: str) -> str:
    """The characters of ``text`` that would need the catalogue (outside ASCII, not a symbol)."""
    return "".join(c for c in text if not c.isascii() and c not in SYMBOLS)


def template_words(source: str) -> list[tuple[int, str]]:
    """(line, text) of each piece of a template — its HTML or a string in an expression —
    holding characters that belong in the catalogue."""
    tree = Environment().parse(source)
    pieces = [(n.lineno, n.data) for n in tree.find_all(nodes.TemplateData)]
    pieces += [(n.lineno, n.value) for n in tree.find_all(nodes.Const) if isinstance(n.value, str)]
    return sorted((line, text.strip()) for line, text in pieces if foreign(text))


def python_words(source: str) -> list[tuple[int, str]]:
    """(line, string) of each string literal holding characters that belong in the catalogue;
    docstrings say what the code does, to developers, and are left out."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                  and node.value not in NOT_WORDS and foreign(node.value))


def test_the_finders_find_words_and_leave_comments_docstrings_and_symbols() -> None:
    template = ('{# Tổ của tôi: a comment #}\n<h1>{{ t("web.title_leader") }}</h1>\n<p>–</p>\n'
                '{{ "Chưa học" if x else "–" }} · ▲\n<p>Xin chào</p>')
    assert template_words(template) == [(4, "Chưa học"), (4, "· ▲\n<p>Xin chào</p>")]
    assert template_words('<p class="ok">{{ t("web.common.meets_target") }}</p> · –') == []
    code = ('"""Trang quản lý: a docstring."""\n'
            'def f() -> str:\n    """Chưa ghi."""\n    return "chưa ghi"  # một ghi chú\n'
            'LABEL = f"{1} người"\nNONE = "–"\nSIGNER = "CHỦ TỊCH"\n')
    assert python_words(code) == [(4, "chưa ghi"), (5, " người")]


def test_no_template_holds_words_of_its_own() -> None:
    found = {path.name: template_words(path.read_text(encoding="utf-8"))
             for path in sorted((DASHBOARD / "templates").glob("*.html"))}
    assert len(found) >= 19
    assert {name: words for name, words in found.items() if words} == {}


def test_no_dashboard_module_holds_words_of_its_own() -> None:
    found = {path.name: python_words(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARD.glob("*.py"))}
    assert "pages.py" in found and "groups.py" in found
    assert {name: words for name, words in found.items() if words} == {}


def test_a_catalogue_text_is_plain_text_and_only_the_templates_markup_stays_markup() -> None:
    texts = {"x.plain": "Tom & Jerry <b>", "x.sentence": "Gửi tới {audience}: {total} người."}
    t = markup_translator(lambda key, /, **values: texts[key].format(**values) if values else texts[key])
    assert t("x.plain") == "Tom &amp; Jerry &lt;b&gt;" and isinstance(t("x.plain"), Markup)
    shown = t("x.sentence", audience="<i>Tổ 3</i>", total=Markup("<strong>4</strong>"))
    assert shown == "Gửi tới &lt;i&gt;Tổ 3&lt;/i&gt;: <strong>4</strong> người."
