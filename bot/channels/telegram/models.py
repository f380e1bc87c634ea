"""aiogram's Telegram types, each one's validator built when it is first used.

aiogram 3 declares its 403 Telegram types (pydantic models) with ``defer_build``, then, at the end of
``aiogram.types``, calls ``model_rebuild`` on every one of them with the namespace that resolves
their forward references. Each type then gets its own validator and serializer, and each of those
holds its own copy of every type it contains (a ``Message`` holds a ``Chat``, a ``User``, a
``Poll``…, and so does every type that holds a ``Message``). Measured here (aiogram 3.31.0,
pydantic 2.13.5): ``import aiogram`` takes a process from 17 MB to 165 MB, and a bot uses a few
dozen of those types.

``import_aiogram`` imports aiogram with those rebuilds turned into what ``defer_build`` asks for:
the namespace is kept on the type as its ``__pydantic_parent_namespace__`` (pydantic's own "parent
namespace of the model, used for automatic rebuilding"), and pydantic builds the type the first time
it validates or serializes one. A process that has imported aiogram so holds 59 MB instead of 165
(docs/benchmarks.md, "Memory").

aiogram's session parses every answer of the Bot API into ``Response[T]`` (``T`` the method's
result), a class pydantic creates on first use and keeps only weakly: the collector takes it
between two answers and the next one creates it again — 32 times in 3,000 ``sendMessage`` here,
~4 ms each with aiogram's own import and ~70 ms with types built on first use (``Message`` built
into it each time). ``import_aiogram`` keeps each ``Response[T]`` once created.

What the bot uses on every update — ``Update`` and the methods it calls, with their answers — is
built by :func:`build` when the adapter is imported, before anything is served: built on first use
instead, a resident's first update and first reply of each kind would wait for it on the event
loop (measured on a quiet machine: ``Update`` 120 ms, ``sendMessage`` and ``editMessageText`` with
their answers 121 and 122 ms).

It must run before anything imports aiogram; ``bot/channels/telegram/__init__.py`` calls it, so
every import of the Telegram adapter does. If aiogram was already imported, it changes nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

_responses: dict[Any, type[BaseModel]] = {}  # aiogram's Response[T], by T: kept for the process
_namespace: dict[str, Any] = {}  # the names aiogram's types resolve theirs from (``aiogram.types``)


def import_aiogram() -> None:
    """Import ``aiogram.types`` with its types' validators left to be built on first use."""
    if "aiogram.types" in sys.modules:
        return
    eager = BaseModel.__dict__["model_rebuild"]

    def deferred(cls: type[BaseModel], *, _types_namespace: Any = None, **kwargs: Any) -> bool | None:
        if _types_namespace is None or not cls.model_config.get("defer_build") or kwargs.get("force"):
            return eager.__func__(cls, _types_namespace=_types_namespace, **kwargs)  # type: ignore[no-any-return]
        _namespace.update(_types_namespace)  # the same namespace for every type
        return None

    BaseModel.model_rebuild = classmethod(deferred)  # type: ignore[assignment, method-assign]
    try:
        import aiogram.types  # noqa: F401
    finally:
        BaseModel.model_rebuild = eager  # type: ignore[method-assign]
    # Every model of aiogram's (the types, the methods that hold them, the generic ``Response``)
    # resolves the types' names from this namespace when it is built.
    for name, module in list(sys.modules.items()):
        if name == "aiogram" or name.startswith("aiogram."):
            for value in vars(module).values():
                if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == name:
                    value.__pydantic_parent_namespace__ = _namespace
    _keep_responses()


def build(*models: type[BaseModel], methods: tuple[type[Any], ...] = ()) -> None:
    """Build ``models``, ``methods`` and the model of each method's answer now (once; a model
    built already is left as it is). A subclass of aiogram's declared elsewhere (a method whose
    answer is read differently) resolves its fields' types from aiogram's namespace too."""
    from aiogram.methods.base import Response

    for model in (*models, *methods):
        if not model.__module__.startswith("aiogram."):
            model.__pydantic_parent_namespace__ = _namespace
        model.model_rebuild()
    for method in methods:
        Response[method.__returning__]  # created, built and kept


def _keep_responses() -> None:
    from aiogram.methods.base import Response

    create = BaseModel.__dict__["__class_getitem__"].__func__

    def kept(cls: type[BaseModel], params: Any) -> Any:
        if cls is not Response:  # a subclass of it, parametrised: pydantic's own way
            return create(cls, params)
        if params not in _responses:
            _responses[params] = create(cls, params)
        return _responses[params]

    Response.__class_getitem__ = classmethod(kept)  # type: ignore[assignment, method-assign]
