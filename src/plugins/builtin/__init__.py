"""Built-in behaviour, shipped as plugins registered like any other.

Each module is one plugin, named after it (``plugins_disabled = ["llamacpp"]``
turns one off). Importing them is light: the adapters, and the models behind
them, are imported inside the factories.
"""

from __future__ import annotations

from types import ModuleType


def modules() -> list[ModuleType]:
    """The built-in plugin modules, in registration order.

    Hooks are called in the reverse order (installed plugins, then these from
    the last): so ``llm = "auto"`` tries ``llamacpp`` before ``extractive``.
    """
    from memoryd.plugins.builtin import (
        e5,
        elasticsearch,
        extractive,
        gguf,
        llamacpp,
        minilm,
        openai,
        parts,
        sqlite,
    )

    return [parts, sqlite, elasticsearch, minilm, e5, gguf, openai, extractive, llamacpp]
