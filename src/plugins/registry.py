"""Registries: storage backends, embedders and chat models, by name, with the plugin of each.

A registration hook is handed a ``register`` callable (tox's
``tox_register_tox_env(register)``, simonw/llm's ``register_models(register)``).
It registers a *factory*: a callable that takes the plugin's
:class:`~memoryd.plugins.context.PluginContext` and returns an async context
manager yielding the ready object, so that opening and closing live together.
``bootstrap`` opens the one the settings name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from attrs import define, field, frozen

from memoryd.core.errors import ConfigurationError
from memoryd.core.ports import ChatModel, Embedder, StorageBackend
from memoryd.plugins.context import PluginContext

T = TypeVar("T")

StorageFactory: TypeAlias = Callable[
    [PluginContext[Any]], AbstractAsyncContextManager[StorageBackend]
]
EmbedderFactory: TypeAlias = Callable[[PluginContext[Any]], AbstractAsyncContextManager[Embedder]]
ChatModelFactory: TypeAlias = Callable[[PluginContext[Any]], AbstractAsyncContextManager[ChatModel]]
#: Whether a chat model can run with these settings (blocking: it runs in a thread).
Availability: TypeAlias = Callable[[PluginContext[Any]], bool]

#: The share of the context window a chat prompt keeps free when the model's registration
#: gives none (``chat_token_headroom`` overrides both): its tokenizer may count more tokens
#: than ``token_encoding`` does.
DEFAULT_TOKEN_HEADROOM = 0.25
#: ``llm = "auto"``: not a model's name, but "the first available one".
AUTO = "auto"


class RegisterStorage(Protocol):
    """``register(name, factory)``: a storage backend for ``storage = name``."""

    def __call__(self, name: str, factory: StorageFactory) -> None: ...


class RegisterEmbedder(Protocol):
    """``register(name, factory)``: an embedder for ``embedder = name``."""

    def __call__(self, name: str, factory: EmbedderFactory) -> None: ...


class RegisterChatModel(Protocol):
    """``register(name, factory, token_headroom=..., available=...)``: a model for ``llm = name``.

    ``token_headroom`` is the share of the context window the prompt keeps free
    for this model (None: 0.25). A model registered with ``available`` takes part
    in ``llm = "auto"``, which picks the first one whose check passes.
    """

    def __call__(
        self,
        name: str,
        factory: ChatModelFactory,
        *,
        token_headroom: float | None = None,
        available: Availability | None = None,
    ) -> None: ...


@frozen
class Entry(Generic[T]):
    """One registered factory and the plugin that registered it."""

    name: str
    plugin: str
    factory: Callable[[PluginContext[Any]], AbstractAsyncContextManager[T]]


@frozen
class ChatModelEntry(Entry[ChatModel]):
    token_headroom: float = DEFAULT_TOKEN_HEADROOM
    available: Availability | None = None


E = TypeVar("E", bound=Entry[Any])


@define
class Registry(Generic[E]):
    """Entries of one kind by name, in the order the hooks were called."""

    #: The setting that picks one (``storage``, ``embedder``, ``llm``).
    setting: str
    #: What an entry is, for messages ("storage backend").
    kind: str
    entries: dict[str, E] = field(factory=dict)

    def add(self, entry: E) -> None:
        if not isinstance(entry.name, str) or not entry.name.strip():
            raise ConfigurationError(
                f"Plugin {entry.plugin!r} registered a {self.kind} without a name",
                details={"plugin": entry.plugin},
            )
        if entry.name == AUTO:
            raise ConfigurationError(
                f"Plugin {entry.plugin!r} registered a {self.kind} named {AUTO!r}, "
                "which is reserved (it means: the first available one)",
                details={"plugin": entry.plugin},
            )
        if not callable(entry.factory):
            raise ConfigurationError(
                f"Plugin {entry.plugin!r} registered {self.kind} {entry.name!r} with "
                f"{type(entry.factory).__name__}, not a factory (a callable taking the context)",
                details={"plugin": entry.plugin},
            )
        found = self.entries.get(entry.name)
        if found is not None:
            who = (
                f"plugin {found.plugin!r} twice"
                if found.plugin == entry.plugin
                else f"plugins {found.plugin!r} and {entry.plugin!r}"
            )
            raise ConfigurationError(
                f"Two {self.kind}s are named {entry.name!r}, registered by {who}: "
                "disable one of them (plugins_disabled)",
                details={"name": entry.name, "plugins": [found.plugin, entry.plugin]},
            )
        self.entries[entry.name] = entry

    def get(self, name: str, *, disabled: Iterable[str] = ()) -> E:
        """The entry named ``name``; else a ``ConfigurationError`` listing what is installed."""
        found = self.entries.get(name)
        if found is not None:
            return found
        off = sorted(disabled)
        raise ConfigurationError(
            f"{self.setting} = {name!r}: no {self.kind} of that name is installed. "
            f"Installed: {self.described() or 'none'}"
            + (f" (disabled plugins: {', '.join(off)})" if off else ""),
            details={"setting": self.setting, "installed": sorted(self.entries)},
        )

    def described(self) -> str:
        """``name (plugin), ...``, sorted by name."""
        return ", ".join(f"{n} ({self.entries[n].plugin})" for n in sorted(self.entries))

    def by_plugin(self, plugin: str) -> list[str]:
        return sorted(n for n, e in self.entries.items() if e.plugin == plugin)


@define
class Registries:
    """Every registry, and the ``register`` callable each plugin's hook is handed."""

    storage: Registry[Entry[StorageBackend]] = field(
        factory=lambda: Registry("storage", "storage backend")
    )
    embedders: Registry[Entry[Embedder]] = field(factory=lambda: Registry("embedder", "embedder"))
    chat_models: Registry[ChatModelEntry] = field(factory=lambda: Registry("llm", "chat model"))

    def storage_registrar(self, plugin: str) -> RegisterStorage:
        def register(name: str, factory: StorageFactory) -> None:
            self.storage.add(Entry(name, plugin, factory))

        return register

    def embedder_registrar(self, plugin: str) -> RegisterEmbedder:
        def register(name: str, factory: EmbedderFactory) -> None:
            self.embedders.add(Entry(name, plugin, factory))

        return register

    def chat_model_registrar(self, plugin: str) -> RegisterChatModel:
        def register(
            name: str,
            factory: ChatModelFactory,
            *,
            token_headroom: float | None = None,
            available: Availability | None = None,
        ) -> None:
            headroom = DEFAULT_TOKEN_HEADROOM if token_headroom is None else token_headroom
            if not 0 <= headroom < 1:
                raise ConfigurationError(
                    f"Plugin {plugin!r} registered chat model {name!r} with token_headroom "
                    f"{headroom!r}; it is a share of the context window, from 0 to below 1",
                    details={"plugin": plugin},
                )
            if available is not None and not callable(available):
                raise ConfigurationError(
                    f"Plugin {plugin!r} registered chat model {name!r} with available="
                    f"{available!r}; it must be a function of the context, or None",
                    details={"plugin": plugin},
                )
            self.chat_models.add(ChatModelEntry(name, plugin, factory, headroom, available))

        return register

    def registered_by(self, plugin: str) -> dict[str, list[str]]:
        """What ``plugin`` registered, by kind (kinds it registered none of left out)."""
        found = {
            "storage": self.storage.by_plugin(plugin),
            "embedders": self.embedders.by_plugin(plugin),
            "chat_models": self.chat_models.by_plugin(plugin),
        }
        return {kind: names for kind, names in found.items() if names}
