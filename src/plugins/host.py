"""PluginHost: the typed facade over pluggy's PluginManager.

The host loads the built-in plugins, the installed ones (entry-point group
``memoryd``, filtered by ``plugins_allowed`` and ``plugins_disabled``) and any
given in code; checks them (``check_pending()``, unmarked or async hooks,
their settings); and calls each plugin's hook implementation itself, with the
plugin's own context, so that every registration, error and log line names
the plugin it came from.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from types import ModuleType
from typing import Any, TypeVar

import aiohttp
import pluggy
from attrs import define, field, frozen

from memoryd import __version__
from memoryd.core.contain import (
    ContainedDraftFilter,
    ContainedPartHandler,
    ContainedReranker,
    ContainedResultFilter,
    Limits,
)
from memoryd.core.errors import ConfigurationError, MemorydError
from memoryd.core.ports import (
    ChatModel,
    DraftFilter,
    Embedder,
    PartHandler,
    Reranker,
    ResultFilter,
    StorageBackend,
    TokenCounter,
)
from memoryd.plugins import hookspecs
from memoryd.plugins._checks import check_hooks, installed_plugins, plugin_config, redacted
from memoryd.plugins._running import checked_objects, enter_all, open_entry
from memoryd.plugins.context import PluginContext
from memoryd.plugins.registry import AUTO, ChatModelEntry, Entry, Registries
from memoryd.settings import Settings, plugin_key

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What each kind of object must have (checked when its factory yields it).
_STORAGE = ("conversations", "threads", "keys", "index")
_EMBEDDER = ("model_name", "dimension", "embed_documents", "embed_query")
_CHAT_MODEL = ("name", "context_window", "stream")

#: Where a plugin came from, for ``memoryd plugins``.
BUILTIN = "built in"
GIVEN = "given in code"


@frozen
class PluginInfo:
    """A loaded plugin, as ``memoryd plugins`` lists it."""

    name: str
    version: str
    #: ``built in``, ``given in code``, or the distribution that installed it.
    source: str
    hooks: tuple[str, ...]
    #: What it registered, by kind: ``{"storage": ["sqlite"], ...}`` (empty kinds left out).
    registers: dict[str, list[str]]


@define
class _Loaded:
    name: str
    plugin: object
    version: str
    source: str
    config: Any = None


@frozen
class PluginFilters:
    """Every plugin's filters, contained: ingest's (``on_draft``) and search's (``on_result``)."""

    drafts: tuple[DraftFilter, ...] = ()
    results: tuple[ResultFilter, ...] = ()


def plugin_name(plugin: object) -> str:
    """A plugin object's name: its ``PLUGIN_NAME`` if it has one (a built-in module such as
    ``http_rerank`` is the plugin ``http-rerank``), a module's last dotted part, else its
    class's name."""
    declared = getattr(plugin, "PLUGIN_NAME", None)
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(plugin, ModuleType):
        return plugin.__name__.rsplit(".", 1)[-1]
    return str(getattr(plugin, "__name__", None) or type(plugin).__name__)


@define
class PluginHost:
    """Loads plugins and answers each hook with a typed method."""

    settings: Settings = field(factory=Settings)
    manager: pluggy.PluginManager = field(factory=lambda: pluggy.PluginManager(hookspecs.PROJECT))
    #: Names that were not loaded because settings (or ``load``) disabled them.
    disabled: set[str] = field(factory=set)
    #: Installed plugins left out because ``plugins_allowed`` does not name them.
    not_allowed: set[str] = field(factory=set)
    _loaded: dict[str, _Loaded] = field(factory=dict)
    _registries: Registries | None = None

    def __attrs_post_init__(self) -> None:
        self.manager.add_hookspecs(hookspecs)

    @classmethod
    def load(
        cls,
        settings: Settings | None = None,
        *,
        builtins: Iterable[object] = (),
        plugins: Iterable[object] = (),
        disabled: Iterable[str] | None = None,
        entry_points: bool = True,
    ) -> PluginHost:
        """A checked host: ``builtins``, the installed plugins, then ``plugins`` (objects).

        ``disabled`` (default: ``settings.plugins_disabled``) names plugins not
        to load, of any origin; ``settings.plugins_allowed``, if not empty, is
        the installed plugins to load. Raises ``ConfigurationError`` naming the
        plugin for a misspelt hook, a hook that is not synchronous, a plugin
        that fails to import and invalid plugin settings.
        """
        settings = settings or Settings()
        host = cls(settings)
        blocked = set(settings.plugins_disabled if disabled is None else disabled)
        for plugin in builtins:
            host._add(plugin, plugin_name(plugin), __version__, BUILTIN, blocked)
        allowed = set(settings.plugins_allowed)
        if entry_points:
            installed = installed_plugins(hookspecs.ENTRY_POINT_GROUP)
            for found in installed:
                if found.name in blocked:
                    host._block(found.name)
                elif not allowed or found.name in allowed:
                    host._add(found.load(), found.name, found.version, found.source, blocked)
                else:
                    host.not_allowed.add(found.name)
            missing = allowed - {i.name for i in installed}
            if missing:
                log.warning(
                    "plugins_allowed names %s, which is not installed (installed plugins: %s)",
                    ", ".join(sorted(missing)),
                    ", ".join(i.name for i in installed) or "none",
                )
        for plugin in plugins:
            host._add(plugin, plugin_name(plugin), "", GIVEN, blocked)
        unknown = blocked - set(host._loaded) - host.disabled
        if unknown:
            log.warning(
                "plugins_disabled names %s, which is not installed (installed: %s)",
                ", ".join(sorted(unknown)),
                ", ".join(sorted(host._loaded)) or "none",
            )
        host._check()
        return host

    def register(self, plugin: object, name: str | None = None) -> None:
        """Add one more plugin (checked as at load)."""
        self._add(plugin, name or plugin_name(plugin), "", GIVEN, set())
        self._check()

    def _add(self, plugin: object, name: str, version: str, source: str, blocked: set[str]) -> None:
        if name in blocked:
            self._block(name)
            return
        found = self._loaded.get(name)
        if found is not None:
            raise ConfigurationError(
                f"Two plugins are named {name!r}: one {found.source}, one {source}; "
                "uninstall or disable one (plugins_disabled)",
                details={"plugin": name},
            )
        try:
            self.manager.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise ConfigurationError(
                f"Plugin {name!r} ({source}) cannot be loaded: {exc}", details={"plugin": name}
            ) from exc
        self._loaded[name] = _Loaded(name, plugin, version or _version_of(plugin), source)
        self._registries = None

    def _block(self, name: str) -> None:
        self.disabled.add(name)
        self.manager.set_blocked(name)

    def _check(self) -> None:
        check_hooks(self.manager, hookspecs)
        sections = {plugin_key(n): n for n in self._loaded}
        for name, loaded in self._loaded.items():
            declared = [cls for _, cls in self._call(name, "memoryd_plugin_settings")]
            loaded.config = plugin_config(name, declared, self.settings.plugin_settings)
        skipped = {plugin_key(n) for n in self.disabled | self.not_allowed}
        for section in self.settings.plugin_settings:
            if plugin_key(section) not in sections and plugin_key(section) not in skipped:
                raise ConfigurationError(
                    f"There are settings for plugin {section!r} ([plugins.{section}] or "
                    f"MEMORYD_PLUGIN_{section.upper()}__*), but no plugin of that name is "
                    f"installed. Installed: {', '.join(sorted(self._loaded)) or 'none'}",
                    details={"plugin": section, "installed": sorted(self._loaded)},
                )

    # --- calling hooks ---------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Names of the loaded plugins (disabled ones are left out)."""
        return sorted(self._loaded)

    def context(
        self,
        plugin: str,
        *,
        settings: Settings | None = None,
        session: aiohttp.ClientSession | None = None,
        embedder: Embedder | None = None,
        tokens: TokenCounter | None = None,
    ) -> PluginContext[Any]:
        """Plugin ``plugin``'s context, with the resources that exist.

        ``settings`` is the app's, when it is not the host's own (a host given
        to ``create_app`` through ``overrides``).
        """
        return PluginContext(
            plugin=plugin,
            settings=settings or self.settings,
            config=self._loaded[plugin].config,
            session=session,
            embedder=embedder,
            tokens=tokens,
        )

    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        """The hook's implementations in call order (the later a plugin loaded, the earlier)."""
        return list(reversed(getattr(self.manager.hook, hook).get_hookimpls()))

    def _call(
        self, only: str | None, hook: str, **arguments: Callable[[str], object]
    ) -> Iterator[tuple[str, Any]]:
        """Each plugin's answer to ``hook`` (``only``: one plugin's), in call order.

        ``arguments`` maps an argument name to a function of the plugin's name,
        so that each plugin gets its own ``register`` and ``context``.
        """
        for impl in self._impls(hook):
            name = impl.plugin_name
            if only is not None and name != only:
                continue
            args = [arguments[a](name) for a in impl.argnames]
            try:
                result = impl.function(*args)
            except MemorydError:
                raise
            except Exception as exc:
                raise ConfigurationError(
                    f"Plugin {name!r} failed in {hook}: {type(exc).__name__}: {exc}",
                    details={"plugin": name, "hook": hook},
                ) from exc
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise ConfigurationError(
                    f"Plugin {name!r}: {hook} is async, but memoryd hooks are synchronous: "
                    "return (or register) objects, and put the async work in their methods",
                    details={"plugin": name, "hook": hook},
                )
            yield name, result

    def _resources_context(self, **resources: Any) -> Callable[[str], object]:
        return lambda name: self.context(name, **resources)

    # --- registries ------------------------------------------------------------------------------

    @property
    def registries(self) -> Registries:
        if self._registries is None:
            self._registries = self._collect()
        return self._registries

    def _collect(self) -> Registries:
        found = Registries()
        context = self._resources_context()
        for hook, registrar in (
            ("memoryd_register_storage", found.storage_registrar),
            ("memoryd_register_embedders", found.embedder_registrar),
            ("memoryd_register_chat_models", found.chat_model_registrar),
        ):
            for _ in self._call(None, hook, register=registrar, context=context):
                pass
        return found

    def storage(self, name: str) -> Entry[StorageBackend]:
        return self.registries.storage.get(name, disabled=self.disabled)

    def embedder(self, name: str) -> Entry[Embedder]:
        return self.registries.embedders.get(name, disabled=self.disabled)

    def chat_model(self, name: str) -> ChatModelEntry:
        return self.registries.chat_models.get(name, disabled=self.disabled)

    async def choose_chat_model(
        self, name: str, *, settings: Settings | None = None
    ) -> ChatModelEntry:
        """``llm``'s entry; for ``auto``, the first model whose ``available`` check passes."""
        if name != AUTO:
            return self.chat_model(name)
        registry = self.registries.chat_models
        for entry in registry.entries.values():
            if entry.available is None:
                continue
            try:
                context = self.context(entry.plugin, settings=settings)
                usable = await asyncio.to_thread(entry.available, context)
            except Exception:
                log.exception(
                    "plugin %r: the availability check of chat model %r failed",
                    entry.plugin,
                    entry.name,
                )
                usable = False
            if usable:
                log.info("llm = auto: using %s (plugin %s)", entry.name, entry.plugin)
                return entry
        raise ConfigurationError(
            "llm = 'auto', but no installed chat model can run. "
            f"Installed: {registry.described() or 'none'}; set llm to one of them",
            details={"setting": "llm", "installed": sorted(registry.entries)},
        )

    def check_selection(self, settings: Settings | None = None) -> None:
        """Raise ``ConfigurationError`` unless ``storage``, ``embedder`` and ``llm`` are installed.

        Before anything opens, so that a misspelt name fails at once.
        """
        chosen = settings or self.settings
        self.storage(chosen.storage)
        self.embedder(chosen.embedder)
        if chosen.llm != AUTO:
            self.chat_model(chosen.llm)

    def open_storage(
        self, name: str, **resources: Any
    ) -> AbstractAsyncContextManager[StorageBackend]:
        """Storage backend ``name``, opened (``resources``: the context's ``settings``, ...)."""
        entry = self.storage(name)
        return self._open(entry, "storage backend", _STORAGE, resources)

    def open_embedder(self, name: str, **resources: Any) -> AbstractAsyncContextManager[Embedder]:
        entry = self.embedder(name)
        return self._open(entry, "embedder", _EMBEDDER, resources)

    def open_chat_model(
        self, entry: ChatModelEntry, **resources: Any
    ) -> AbstractAsyncContextManager[ChatModel]:
        """The chat model of ``entry`` (see :meth:`choose_chat_model`), opened."""
        return self._open(entry, "chat model", _CHAT_MODEL, resources)

    def _open(
        self, entry: Entry[T], what: str, members: tuple[str, ...], resources: dict[str, Any]
    ) -> AbstractAsyncContextManager[T]:
        return open_entry(entry, self.context(entry.plugin, **resources), what, members)

    # --- per-request plugin code, contained ------------------------------------------------------

    def limits(self, settings: Settings | None = None) -> Limits:
        """What each call of a part handler or reranker may take (``plugin_*`` settings)."""
        chosen = settings or self.settings
        return Limits(timeout=chosen.plugin_timeout, max_chars=chosen.plugin_max_chars)

    def part_handlers(self, **resources: Any) -> list[PartHandler]:
        """Every plugin's part handlers, contained; later-loaded plugins first."""
        found: list[PartHandler] = []
        limits = self.limits(resources.get("settings"))
        hook = "memoryd_register_part_handlers"
        for name, result in self._call(None, hook, context=self._resources_context(**resources)):
            for handler in checked_objects(name, hook, result, ("accepts", "to_text")):
                found.append(ContainedPartHandler(handler, name, limits))
        return found

    def rerankers(self, **resources: Any) -> list[Reranker]:
        """Every plugin's rerankers, contained, in call order.

        Two of one name (the ``rerankers`` setting picks them by name) are a
        ``ConfigurationError`` naming both plugins.
        """
        found: list[ContainedReranker] = []
        limits = self.limits(resources.get("settings"))
        hook = "memoryd_register_rerankers"
        for name, result in self._call(None, hook, context=self._resources_context(**resources)):
            for reranker in checked_objects(name, hook, result, ("rerank",)):
                contained = ContainedReranker(reranker, name, limits)
                same = next((r for r in found if r.name == contained.name), None)
                if same is not None:
                    who = (
                        f"plugin {name!r} twice"
                        if same.plugin == name
                        else f"plugins {same.plugin!r} and {name!r}"
                    )
                    raise ConfigurationError(
                        f"Two rerankers are named {contained.name!r}, registered by {who}: "
                        "disable one of them (plugins_disabled)",
                        details={"name": contained.name, "plugins": [same.plugin, name]},
                    )
                found.append(contained)
        return list(found)

    def filters(self, **resources: Any) -> PluginFilters:
        """Every plugin's filters, contained, in call order (each object may have both kinds)."""
        drafts: list[DraftFilter] = []
        results: list[ResultFilter] = []
        limits = self.limits(resources.get("settings"))
        hook = "memoryd_register_filters"
        for name, result in self._call(None, hook, context=self._resources_context(**resources)):
            for item in checked_objects(name, hook, result, ()):
                has_draft = callable(getattr(item, "on_draft", None))
                has_result = callable(getattr(item, "on_result", None))
                if not has_draft and not has_result:
                    raise ConfigurationError(
                        f"Plugin {name!r}: {hook} returned a {type(item).__name__}, which has "
                        "neither on_draft() nor on_result()",
                        details={"plugin": name, "hook": hook},
                    )
                if has_draft:
                    drafts.append(ContainedDraftFilter(item, name, limits))
                if has_result:
                    results.append(ContainedResultFilter(item, name, limits))
        return PluginFilters(tuple(drafts), tuple(results))

    def lifespan(self, **resources: Any) -> AbstractAsyncContextManager[None]:
        """Every plugin's startup code on entry, its shutdown code (in reverse) on exit."""
        hook = "memoryd_lifespan"
        return enter_all(hook, self._call(None, hook, context=self._resources_context(**resources)))

    # --- describing ------------------------------------------------------------------------------

    def describe(self) -> list[PluginInfo]:
        """Every loaded plugin: name, version, origin, hooks, what it registered."""
        registries = self.registries
        infos: list[PluginInfo] = []
        for name in sorted(self._loaded):
            loaded = self._loaded[name]
            hooks = sorted(c.name for c in self.manager.get_hookcallers(loaded.plugin) or ())
            infos.append(
                PluginInfo(
                    name=name,
                    version=loaded.version,
                    source=loaded.source,
                    hooks=tuple(hooks),
                    registers=registries.registered_by(name),
                )
            )
        return infos

    def configs(self) -> dict[str, Any]:
        """Each plugin's validated settings section (by plugin name), secrets as ``***``."""
        return {
            n: redacted(p.config) for n, p in sorted(self._loaded.items()) if p.config is not None
        }


def _version_of(plugin: object) -> str:
    return str(getattr(plugin, "__version__", "") or "")
