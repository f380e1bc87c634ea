"""The message catalogue: every text people read, by key, per language.

Texts live in gettext ``.po`` files (``bot/locales/<lang>/LC_MESSAGES/messages.po``) with
symbolic message ids such as ``onboarding.consent``; Vietnamese is the default and the
fallback for any key another language lacks. Babel reads the files at start-up, so there
is no compile step. Placeholders use ``str.format`` names: ``{name}``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from string import Formatter

from babel.messages.pofile import read_po

DEFAULT_LOCALE = "vi"

Translate = Callable[..., str]


class Catalog:
    def __init__(self, messages: dict[str, dict[str, str]], *, default: str = DEFAULT_LOCALE) -> None:
        if default not in messages:
            raise ValueError(f"no catalogue for the default language {default!r}")
        self._messages = messages
        self.default = default

    @classmethod
    def load(cls, directory: Path | None = None) -> Catalog:
        root = directory or Path(str(resources.files("bot") / "locales"))
        messages: dict[str, dict[str, str]] = {}
        for po in sorted(root.glob("*/LC_MESSAGES/messages.po")):
            locale = po.parent.parent.name
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            messages[locale] = {
                str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy
            }
        return cls(messages)

    @property
    def locales(self) -> list[str]:
        return sorted(self._messages)

    def keys(self, locale: str | None = None) -> set[str]:
        return set(self._messages[locale or self.default])

    def text(self, key: str, locale: str | None = None, /, **values: object) -> str:
        """The text for ``key`` in ``locale`` (falling back to the default language)."""
        table = self._messages.get(locale or self.default, {})
        template = table.get(key) or self._messages[self.default][key]  # KeyError: a missing text is a bug
        return template.format(**values) if values else template

    def translator(self, locale: str | None) -> Translate:
        chosen = locale if locale in self._messages else self.default

        def translate(key: str, /, **values: object) -> str:
            return self.text(key, chosen, **values)

        return translate

    def placeholders(self, key: str, locale: str | None = None) -> set[str]:
        template = self._messages[locale or self.default][key]
        return {name for _, name, _, _ in Formatter().parse(template) if name}
