"""PluginContext: what every hook, and every factory a hook registers, is given."""

from __future__ import annotations

import logging
from typing import Generic, TypeVar

import aiohttp
from attrs import Factory, field, frozen

from memoryd.adapters._fetch_guard import Fetch, fetcher
from memoryd.core.ports import Embedder, TokenCounter
from memoryd.settings import Settings

C = TypeVar("C")


@frozen(kw_only=True)
class PluginContext(Generic[C]):
    """One plugin's view of the server: its settings and the shared resources that exist.

    Registration hooks run before any resource is open, so their context has
    no ``session``, ``embedder`` or ``tokens``; the factories they register
    (and the part-handler, reranker and lifespan hooks) get each resource that
    exists by then: see docs/plugins.md for which one has what.
    """

    #: The plugin's name (its entry-point name; a built-in's module name).
    plugin: str
    #: Every core setting.
    settings: Settings
    #: The plugin's own section, an instance of the class ``memoryd_plugin_settings``
    #: returned, validated at start; None if the plugin declares no settings.
    config: C
    #: The app's one HTTP client session (never close it).
    session: aiohttp.ClientSession | None = None
    #: The configured embedder, once it is open.
    embedder: Embedder | None = None
    #: The token counter (``token_encoding``), once it is loaded.
    tokens: TokenCounter | None = None
    #: ``await fetch(url) -> Fetched``: an http(s) URL's bytes through the fetch guard
    #: (docs/security.md, "Fetching URLs"), raising ``FetchRefused``; None unless the
    #: ``fetch_urls`` setting is on. Part handlers never fetch any other way.
    fetch: Fetch | None = field(
        default=Factory(lambda self: fetcher(self.settings), takes_self=True)
    )

    @property
    def log(self) -> logging.Logger:
        """A logger named after the plugin (``memoryd.plugins.NAME``)."""
        return logging.getLogger(f"memoryd.plugins.{self.plugin}")
