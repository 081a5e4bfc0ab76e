"""``plugin_host(plugin)``: one plugin loaded as memoryd loads it, for a plugin author's tests.

No entry points and no built-ins: just the plugin given (a module or an
object), checked as at start (``check_pending()``: a misspelt hook fails here),
with its ``[plugins.NAME]`` settings validated. The :class:`LoadedPlugin` it
returns calls the hooks through the same host, so what a test gets is what a
server would: handlers, rerankers and filters contained (a deadline, failures
logged with the plugin's name).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import attrs
from attrs import frozen

from memoryd.core.contain import ContainedPartHandler, ContainedReranker
from memoryd.core.model import ContentPart
from memoryd.core.ports import Embedder, PartHandler, Reranker, TokenCounter
from memoryd.core.reading import PartReader, PartReading, UrlFetcher
from memoryd.plugins.context import PluginContext
from memoryd.plugins.host import PluginFilters, PluginHost, PluginInfo, plugin_name
from memoryd.settings import Settings


@frozen
class LoadedPlugin:
    """A plugin on its own :class:`PluginHost`; each method calls its hooks as memoryd does."""

    host: PluginHost
    name: str
    embedder: Embedder | None = None
    tokens: TokenCounter | None = None
    session: aiohttp.ClientSession | None = None

    @property
    def settings(self) -> Settings:
        return self.host.settings

    def _resources(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "embedder": self.embedder,
            "tokens": self.tokens,
            "session": self.session,
        }

    def context(self) -> PluginContext[Any]:
        """The plugin's context: its validated ``config``, ``log``, the resources given."""
        return self.host.context(
            self.name, embedder=self.embedder, tokens=self.tokens, session=self.session
        )

    def info(self) -> PluginInfo:
        """What ``memoryd plugins`` lists for it: version, hooks, what it registered."""
        return next(i for i in self.host.describe() if i.name == self.name)

    def part_handlers(self, *, contained: bool = True) -> list[Any]:
        """Its ``memoryd_register_part_handlers`` answer, contained as memoryd runs them.

        ``contained=False``: the objects as the plugin returned them (what the
        conformance checks should get: containment would hide their faults).
        """
        found: list[PartHandler] = self.host.part_handlers(**self._resources())
        if contained:
            return found
        return [h.handler if isinstance(h, ContainedPartHandler) else h for h in found]

    def rerankers(self, *, contained: bool = True) -> list[Any]:
        """Its ``memoryd_register_rerankers`` answer (``contained=False``: as returned)."""
        found: list[Reranker] = self.host.rerankers(**self._resources())
        if contained:
            return found
        return [r.reranker if isinstance(r, ContainedReranker) else r for r in found]

    def filters(self) -> PluginFilters:
        """Its ``memoryd_register_filters`` answer (``drafts``, ``results``), contained."""
        return self.host.filters(**self._resources())

    def reader(self, fetcher: UrlFetcher | None = None) -> PartReader:
        """Its part handlers behind memoryd's one reading rule (what ingest calls)."""
        return PartReader(self.part_handlers(), fetcher)

    async def read(self, part: ContentPart) -> PartReading:
        """``part`` read as ingest reads it: the text, and the outcome the response lists."""
        return await self.reader().read(part)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Its ``memoryd_lifespan`` code: startup on entry, shutdown on exit."""
        async with self.host.lifespan(**self._resources()):
            yield


def plugin_host(
    plugin: object,
    *,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    tokens: TokenCounter | None = None,
    session: aiohttp.ClientSession | None = None,
    also: Sequence[object] = (),
) -> LoadedPlugin:
    """Load ``plugin`` alone (no entry points, no built-ins), checked as at start.

    ``name`` is its plugin name (default: its ``PLUGIN_NAME``, a module's last
    dotted part, or its class's name); ``config`` its ``[plugins.NAME]`` table;
    ``embedder``, ``tokens`` and ``session`` the resources its contexts get
    (fakes from :mod:`memoryd.testing` do; the session is yours to close).
    ``also`` loads further plugins beside it.
    Raises ``ConfigurationError`` as a start would (a misspelt hook, an async
    hook, invalid settings).
    """
    chosen = name or plugin_name(plugin)
    base = settings or Settings()
    host = PluginHost.load(base, entry_points=False, plugins=list(also))
    if config is not None:  # its section, validated when it registers (as at start)
        host.settings = attrs.evolve(
            base, plugin_settings={**base.plugin_settings, chosen: dict(config)}
        )
    host.register(plugin, name=chosen)
    return LoadedPlugin(host, chosen, embedder=embedder, tokens=tokens, session=session)
