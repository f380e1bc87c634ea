"""aiogram's HTTP session, posting a method as a JSON body when it carries no file.

aiogram's ``AiohttpSession`` posts every method as a form: each nested value (a keyboard, the
link preview options) is turned into JSON, then the whole form is percent-encoded — in Python,
byte by byte, and a Vietnamese text is mostly bytes to escape. The Bot API takes
``application/json`` for every method that uploads nothing, so here such a method is one
``json.dumps`` of the values aiogram prepares (its own ``prepare_value``, nested values left as
they are); one with a file (a certificate, a report) goes as aiogram's form, as before. Measured
in docs/benchmarks.md ("Sixth round"). ``prepare_value``'s ``_dumps_json`` argument is aiogram's
own (pinned in ``pyproject.toml``; ``tests/channels/test_telegram_session.py`` checks it).
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import TelegramMethod
from aiogram.types import InputFile
from aiohttp import FormData, JsonPayload


class JsonBodySession(AiohttpSession):
    def build_form_data(self, bot: Bot, method: TelegramMethod[Any]) -> FormData:
        files: dict[str, InputFile] = {}
        body: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None and prepared != "":  # what aiogram's form leaves out
                body[key] = prepared
        if files:
            return super().build_form_data(bot, method)
        return JsonPayload(body, dumps=self.json_dumps)  # type: ignore[return-value]  # aiohttp posts any payload
