"""aiogram's Telegram types built when first used (``bot.channels.telegram.models``, issue 12 §3
memory): importing the adapter leaves aiogram's 403 types unbuilt (but those that hold no other
type), every type and method of aiogram's can still be validated and serialized, each built the
first time it is, and the model of the Bot API's answers is created once per result type.

The rest of the suite runs in this mode too (``tests/conftest.py`` imports the adapter before
anything imports aiogram): every update parsed and every message sent there goes through it.
"""

from __future__ import annotations

import gc
import json
import sys
import weakref
from pathlib import Path

import aiogram.types
from aiogram.methods import AnswerCallbackQuery, SendMessage
from aiogram.methods.base import Response
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

import bot.channels.telegram  # noqa: F401  (imports aiogram the way the bot does)
from bot.channels.telegram import models
from tests.clocked import environment, finish

ROOT = Path(__file__).resolve().parent.parent.parent

CALLBACK = {
    "update_id": 7,
    "callback_query": {
        "id": "42", "from": {"id": 5, "is_bot": False, "first_name": "Lan"}, "chat_instance": "c", "data": "menu",
        "message": {"message_id": 3, "date": 1_764_000_000, "chat": {"id": 5, "type": "private"}, "text": "Chào bác",
                    "reply_markup": {"inline_keyboard": [[{"text": "📖 Học tiếp", "callback_data": "learn"}]]}},
    },
}

# Run in a process of its own, so this worker's types stay as the bot leaves them.
EVERY_MODEL = """
import asyncio, json, sys
from pydantic import BaseModel
import bot.channels.telegram
import aiogram, aiogram.methods, aiogram.types
def built(model):
    return bool(model.__dict__.get("__pydantic_complete__"))
models = {name: model for name in aiogram.types.__all__ + aiogram.methods.__all__
          if isinstance(model := getattr(aiogram.types, name, None) or getattr(aiogram.methods, name, None), type)
          and issubclass(model, BaseModel)}
types = [name for name in aiogram.types.__all__ if name in models]
before = sorted(name for name in types if built(models[name]))
failed = []
async def first_use():  # in an event loop, as the bot uses them
    for name, model in models.items():
        try:
            model.__pydantic_validator__.validate_python  # builds it, if it was not
            model.__pydantic_serializer__.to_python
        except Exception as exc:
            failed.append(f"{name}: {exc}")
asyncio.run(first_use())
print(json.dumps({"models": len(models), "types": len(types), "types_built_at_import": before, "failed": failed,
                  "built_after": sum(built(model) for model in models.values())}))
"""


def test_importing_the_adapter_builds_the_types_only_when_used() -> None:
    types = [getattr(aiogram.types, name) for name in aiogram.types.__all__]
    types = [t for t in types if isinstance(t, type) and hasattr(t, "model_fields")]
    assert len(types) > 300
    # A type the bot never meets is still waiting to be built (all of them, with aiogram's own import).
    assert not aiogram.types.PassportData.__dict__.get("__pydantic_complete__")
    assert not aiogram.types.GiveawayWinners.__dict__.get("__pydantic_complete__")

    update = Update.model_validate(CALLBACK)
    assert update.callback_query is not None and isinstance(update.callback_query.message, Message)
    keyboard = update.callback_query.message.reply_markup
    assert keyboard is not None and keyboard.inline_keyboard[0][0].callback_data == "learn"

    sent = SendMessage(chat_id=5, text="Chào bác Lan", reply_markup=InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="✅ Đúng", callback_data="a:1")]]))
    assert sent.model_dump(exclude_none=True)["reply_markup"] == {
        "inline_keyboard": [[{"text": "✅ Đúng", "callback_data": "a:1"}]]}
    assert AnswerCallbackQuery(callback_query_id="42").callback_query_id == "42"
    # The generic response the session parses every reply into (a Message inside).
    answer = Response[Message].model_validate_json(json.dumps(
        {"ok": True, "result": CALLBACK["callback_query"]["message"]}))  # type: ignore[index]
    assert answer.result is not None and answer.result.chat.id == 5


def test_what_every_update_uses_is_built_before_the_first_update() -> None:
    """Built on first use, ``Update``, ``sendMessage`` and ``editMessageText`` each made a resident's
    first update or reply of its kind wait ~120 ms (more on a busy machine)."""
    for model in (Update, InlineKeyboardMarkup, SendMessage, AnswerCallbackQuery):
        assert model.__dict__.get("__pydantic_complete__"), model
    for answer in (Message, bool, list[Update], Message | bool):  # sendMessage, answerCallbackQuery, getUpdates, edit
        assert answer in models._responses, answer


def test_the_answers_model_is_created_once_and_kept() -> None:
    """aiogram parses every Bot API answer into ``Response[T]``; pydantic keeps those weakly, and
    building ``Response[Message]`` again after each collection cost ~70 ms of the event loop."""
    created = weakref.ref(Response[Message])
    gc.collect()
    assert created() is not None
    assert Response[Message] is created()
    assert Response[bool] is Response[bool]


async def test_every_type_and_method_builds_on_first_use() -> None:
    done = await finish([sys.executable, "-c", EVERY_MODEL], cwd=ROOT, env=environment())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["models"] > 450  # types and methods
    assert report["failed"] == []
    # Built at import: the types that hold no other type (with their class) and what the adapter
    # uses on every update (``Update``, the keyboards); not the hundreds that ``Update`` holds.
    assert report["types"] > 300
    assert len(report["types_built_at_import"]) < report["types"] // 5, report["types_built_at_import"]
    assert {"Update", "InlineKeyboardMarkup"} <= set(report["types_built_at_import"])
    assert "Message" not in report["types_built_at_import"]
    assert report["built_after"] == report["models"]


def test_a_keyboard_is_built_once_for_each_set_of_buttons() -> None:
    """Every resident's main menu has the same buttons: their markup is made once, then only
    serialised; other buttons or another layout make another."""
    from bot.channels.telegram.adapter import keyboard
    from bot.core.messages import Menu, Option

    options = tuple(Option(label, action) for label, action in (("📖 Học tiếp", "next"), ("❓ Hỏi", "hotro"),
                                                                  ("ℹ️ Hướng dẫn", "help")))
    first, again = keyboard(Menu("Chào Lan", options)), keyboard(Menu("Chào Hùng", options))
    assert first is again
    assert [[b.callback_data for b in row] for row in first.inline_keyboard] == [["next"], ["hotro"], ["help"]]
    wide = keyboard(Menu("Chào Lan", options, columns=2))
    assert [[b.callback_data for b in row] for row in wide.inline_keyboard] == [["next", "hotro"], ["help"]]
    assert keyboard(Menu("Chào Lan", options[:2])) is not first
