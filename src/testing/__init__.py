"""Fakes for every port, shipped so that plugin authors can test with them too.

They are small, in-memory and deterministic, and they follow the ports'
documented behaviour (the adapters' integration tests check the real ones
against the same expectations).
"""

from __future__ import annotations

from memoryd.testing._fakes import (
    CountingEmbedder,
    FakeEmbedder,
    FixedClock,
    InMemoryIndex,
    InMemoryStore,
    ReversingReranker,
    ScriptedChatModel,
    WordCounter,
)
from memoryd.testing._flaky import FlakyIndex
from memoryd.testing._plugins import LoadedPlugin, plugin_host
from memoryd.testing.conformance import NotConforming, check_part_handler, check_reranker

__all__ = [
    "CountingEmbedder",
    "FakeEmbedder",
    "FixedClock",
    "FlakyIndex",
    "InMemoryIndex",
    "InMemoryStore",
    "LoadedPlugin",
    "NotConforming",
    "ReversingReranker",
    "ScriptedChatModel",
    "WordCounter",
    "check_part_handler",
    "check_reranker",
    "plugin_host",
]
