"""Unit tests: the core with the fakes from memoryd.testing; no I/O."""

from __future__ import annotations

import pytest

from memoryd.core.ingest import IngestService
from memoryd.core.memories import MemoryPolicy
from memoryd.core.model import Caller
from memoryd.core.retrieval import SearchService
from memoryd.testing import FakeEmbedder, FixedClock, InMemoryIndex, InMemoryStore, WordCounter


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def index() -> InMemoryIndex:
    return InMemoryIndex()


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def ingest(
    store: InMemoryStore, index: InMemoryIndex, embedder: FakeEmbedder, clock: FixedClock
) -> IngestService:
    return IngestService(
        store=store,
        index=index,
        embedder=embedder,
        tokens=WordCounter(),
        clock=clock,
        policy=MemoryPolicy(context_before=0),
    )


@pytest.fixture
def search(index: InMemoryIndex, embedder: FakeEmbedder) -> SearchService:
    return SearchService(index=index, embedder=embedder)


@pytest.fixture
def caller() -> Caller:
    return Caller(tenant_id="t1", key_id="k1")
