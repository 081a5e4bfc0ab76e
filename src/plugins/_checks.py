"""What the host checks at load: installed plugins, their hooks, their settings."""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import attrs
import pluggy
from attrs import frozen

from memoryd.core.errors import ConfigurationError
from memoryd.settings import plugin_key, structure_plugin_settings

PREFIX = "memoryd_"


@frozen
class Installed:
    """An installed plugin (an entry point), not imported yet."""

    name: str
    version: str
    #: The distribution that installed it.
    source: str
    _entry_point: importlib.metadata.EntryPoint

    def load(self) -> object:
        """Import it; a ``ConfigurationError`` naming it and its distribution if that fails."""
        try:
            return self._entry_point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"Plugin {self.name!r} (from {self.source}) failed to import: "
                f"{type(exc).__name__}: {exc}. Fix or uninstall it, or add {self.name!r} to "
                "plugins_disabled",
                details={"plugin": self.name},
            ) from exc


def installed_plugins(group: str) -> list[Installed]:
    """The entry points of ``group``, by name."""
    found = []
    for ep in importlib.metadata.entry_points(group=group):
        dist = ep.dist
        name = dist.metadata["Name"] if dist is not None else "an unknown distribution"
        version = dist.version if dist is not None else ""
        found.append(Installed(ep.name, version, f"{name} {version}".strip(), ep))
    return sorted(found, key=lambda i: i.name)


def hook_names(specs: ModuleType) -> list[str]:
    return sorted(
        n for n, f in inspect.getmembers(specs, inspect.isfunction) if n.startswith(PREFIX)
    )


def check_hooks(manager: pluggy.PluginManager, specs: ModuleType) -> None:
    """``check_pending()``, and no hook left unmarked or made a wrapper; errors name the plugin."""
    known = hook_names(specs)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or "?"
        unknown = sorted(
            hook
            for hook, caller in vars(manager.hook).items()
            if not hook.startswith("_")
            and not caller.has_spec()
            and any(i.plugin is exc.plugin for i in caller.get_hookimpls())
        )
        raise ConfigurationError(
            f"Plugin {name!r} implements unknown hook(s): "
            + ", ".join(_with_hint(h, known) for h in unknown)
            + f". memoryd's hooks are: {', '.join(known)}",
            details={"plugin": name, "unknown": unknown},
        ) from exc
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        for attr in dir(plugin):
            if not attr.startswith(PREFIX):
                continue
            function = _function(inspect.getattr_static(plugin, attr, None))
            if function is None or hasattr(function, "memoryd_spec"):
                continue
            if not hasattr(function, "memoryd_impl"):
                raise ConfigurationError(
                    f"Plugin {name!r}: {attr} is not marked with @memoryd.hookimpl, so it "
                    f"would never be called ({_with_hint(attr, known)})",
                    details={"plugin": name, "hook": attr},
                )
    for hook in known:
        for impl in getattr(manager.hook, hook).get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                raise ConfigurationError(
                    f"Plugin {impl.plugin_name!r}: {hook} is a hook wrapper; memoryd calls "
                    "each plugin's hook itself, so its hooks take no wrappers",
                    details={"plugin": impl.plugin_name, "hook": hook},
                )


def _function(found: object) -> Callable[..., Any] | None:
    if isinstance(found, staticmethod | classmethod):
        found = found.__func__
    return found if inspect.isfunction(found) or inspect.ismethod(found) else None


def _with_hint(hook: str, known: list[str]) -> str:
    close = difflib.get_close_matches(hook, known, n=1)
    return f"{hook} (did you mean {close[0]}?)" if close else hook


def plugin_config(
    plugin: str, declared: list[Any], sections: Mapping[str, Mapping[str, Any]]
) -> Any:
    """The plugin's settings section, validated against the class it declared (or None)."""
    section = {plugin_key(k): v for k, v in sections.items()}.get(plugin_key(plugin))
    classes = [c for c in declared if c is not None]
    if not classes:
        if section:
            raise ConfigurationError(
                f"There are settings for plugin {plugin!r} ([plugins.{plugin_key(plugin)}] or "
                f"MEMORYD_PLUGIN_{plugin_key(plugin).upper()}__*), but it declares none: "
                "remove them",
                details={"plugin": plugin},
            )
        return None
    cls = classes[0]
    if not (isinstance(cls, type) and attrs.has(cls)):
        raise ConfigurationError(
            f"Plugin {plugin!r}: memoryd_plugin_settings returned {cls!r}, not an attrs class",
            details={"plugin": plugin},
        )
    return structure_plugin_settings(plugin, section or {}, cls)


def redacted(value: Any) -> Any:
    """An attrs instance as a dict, its secrets (fields with ``repr=False``) as ``***``."""
    if not attrs.has(type(value)):
        return value
    out: dict[str, Any] = {}
    for a in attrs.fields(type(value)):
        item = getattr(value, a.name)
        out[a.name] = "***" if a.repr is False and item is not None else redacted(item)
    return out
