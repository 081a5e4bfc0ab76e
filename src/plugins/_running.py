"""Running what plugins hand over: opening factories, entering lifespans, checking returns.

Every error names the plugin; a plugin's own ``MemorydError`` (which already
tells the user what to do) passes through as it is.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from memoryd.core.errors import ConfigurationError, MemorydError
from memoryd.plugins.context import PluginContext
from memoryd.plugins.registry import Entry

log = logging.getLogger("memoryd.plugins.host")

T = TypeVar("T")


@contextlib.asynccontextmanager
async def open_entry(
    entry: Entry[T], context: PluginContext[Any], what: str, members: tuple[str, ...]
) -> AsyncIterator[T]:
    """Enter ``entry``'s factory; check that what it yields has ``members``."""
    label = f"{what} {entry.name!r} of plugin {entry.plugin!r}"
    async with contextlib.AsyncExitStack() as stack:
        try:
            manager = entry.factory(context)
            if not hasattr(manager, "__aenter__"):
                raise ConfigurationError(
                    f"The factory of {label} returned {type(manager).__name__}, not an "
                    "async context manager (decorate it with @contextlib.asynccontextmanager)",
                    details={"plugin": entry.plugin},
                )
            value = await stack.enter_async_context(manager)
        except MemorydError:
            raise
        except Exception as exc:
            raise ConfigurationError(
                f"The {label} failed to start: {type(exc).__name__}: {exc}",
                details={"plugin": entry.plugin},
            ) from exc
        missing = [m for m in members if not hasattr(value, m)]
        if missing:
            raise ConfigurationError(
                f"The {label} gave a {type(value).__name__}, which has no {', '.join(missing)}",
                details={"plugin": entry.plugin},
            )
        yield value


@contextlib.asynccontextmanager
async def enter_all(hook: str, answers: Iterator[tuple[str, Any]]) -> AsyncIterator[None]:
    """Enter each plugin's lifespan manager in turn; leave them in reverse, logging errors."""
    entered: list[tuple[str, AbstractAsyncContextManager[Any]]] = []
    try:
        for name, manager in answers:
            if manager is None:
                continue
            if not hasattr(manager, "__aenter__"):
                raise ConfigurationError(
                    f"Plugin {name!r}: {hook} returned {type(manager).__name__}, "
                    "not an async context manager or None",
                    details={"plugin": name},
                )
            try:
                await manager.__aenter__()
            except MemorydError:
                raise
            except Exception as exc:
                raise ConfigurationError(
                    f"Plugin {name!r} failed to start: {type(exc).__name__}: {exc}",
                    details={"plugin": name},
                ) from exc
            entered.append((name, manager))
        yield
    finally:
        for name, manager in reversed(entered):
            try:
                await manager.__aexit__(None, None, None)
            except Exception:
                log.exception("plugin %r failed to shut down", name)


def checked_objects(plugin: str, hook: str, result: Any, methods: tuple[str, ...]) -> list[Any]:
    """The objects a hook returned (None: none), each checked to have ``methods``."""
    if result is None:
        return []
    if isinstance(result, str | bytes) or not isinstance(result, Iterable):
        raise ConfigurationError(
            f"Plugin {plugin!r}: {hook} returned {type(result).__name__}, not a list",
            details={"plugin": plugin, "hook": hook},
        )
    found = list(result)
    for item in found:
        missing = [m for m in methods if not callable(getattr(item, m, None))]
        if missing:
            raise ConfigurationError(
                f"Plugin {plugin!r}: {hook} returned a {type(item).__name__}, which has no "
                f"{', '.join(missing)}()",
                details={"plugin": plugin, "hook": hook},
            )
    return found
