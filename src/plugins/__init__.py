"""memoryd.plugins: what a plugin author imports (see docs/plugins.md)."""

from __future__ import annotations

from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterChatModel, RegisterEmbedder, RegisterStorage

__all__ = [
    "PluginContext",
    "RegisterChatModel",
    "RegisterEmbedder",
    "RegisterStorage",
    "hookimpl",
]
