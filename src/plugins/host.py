"""PluginHost: the typed facade over pluggy's PluginManager."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import ModuleType

import pluggy
from attrs import define, field

from memoryd.core.ports import PartHandler, Reranker
from memoryd.plugins import hookspecs

log = logging.getLogger(__name__)


@define
class PluginHost:
    """Loads plugins and answers each hook with a typed method."""

    manager: pluggy.PluginManager = field(factory=lambda: pluggy.PluginManager(hookspecs.PROJECT))

    def __attrs_post_init__(self) -> None:
        self.manager.add_hookspecs(hookspecs)

    @classmethod
    def load(
        cls,
        *,
        builtins: Iterable[ModuleType | object] = (),
        disabled: Iterable[str] = (),
        entry_points: bool = True,
    ) -> PluginHost:
        """A host with the built-in plugins and the installed ones, minus ``disabled``."""
        host = cls()
        blocked = set(disabled)
        for plugin in builtins:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            short = name.rsplit(".", 1)[-1]
            if short in blocked or name in blocked:
                continue
            host.manager.register(plugin, name=short)
        for name in blocked:
            host.manager.set_blocked(name)
        if entry_points:
            loaded = host.manager.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
            if loaded:
                log.info("loaded %d plugin(s) from entry points", loaded)
        return host

    def register(self, plugin: object, name: str | None = None) -> None:
        self.manager.register(plugin, name=name)

    @property
    def names(self) -> list[str]:
        """Names of the loaded plugins (blocked ones are left out)."""
        loaded = self.manager.list_name_plugin()
        return sorted(name for name, plugin in loaded if name is not None and plugin is not None)

    def part_handlers(self) -> list[PartHandler]:
        """Every plugin's part handlers; later-registered plugins first."""
        return [h for group in self.manager.hook.memoryd_register_part_handlers() for h in group]

    def rerankers(self) -> list[Reranker]:
        return [r for group in self.manager.hook.memoryd_register_rerankers() for r in group]
