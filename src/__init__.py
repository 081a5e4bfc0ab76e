"""memoryd: a self-hosted memory server for AI applications."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    # ``hookimpl`` comes from pluggy, which the core must not import: load it on first use.
    if name == "hookimpl":
        from memoryd.plugins.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'memoryd' has no attribute {name!r}")
