"""Built-in behaviour, shipped as plugins registered like any other."""

from __future__ import annotations

from types import ModuleType


def modules() -> list[ModuleType]:
    """The built-in plugin modules, in registration order."""
    from memoryd.plugins.builtin import parts

    return [parts]
