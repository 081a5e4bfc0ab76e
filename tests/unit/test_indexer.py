"""The outbox and the indexer: a failed index update is finished by a retry, or at start."""

from __future__ import annotations

import pytest

from memoryd.core.conversations import ConversationService
from memoryd.core.errors import NotFound, StoreUnavailable
from memoryd.core.indexer import Indexer
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.memories import MemoryPolicy
from memoryd.core.model import Caller, Message
from memoryd.core.retrieval import SearchRequest, SearchService
from memoryd.testing import (
    FakeEmbedder,
    FixedClock,
    FlakyIndex,
    InMemoryIndex,
    InMemoryStore,
    WordCounter,
)

CALLER = Caller(tenant_id="t1", key_id="k1")


async def no_sleep(_: float) -> None:
    return None


class World:
    """The services of one app over the fakes, with an index that can be made to fail."""

    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.store = store or InMemoryStore()
        self.real = InMemoryIndex()
        self.index = FlakyIndex(self.real)
        self.embedder = FakeEmbedder()
        self.indexer = Indexer(self.store, self.index, sleep=no_sleep)
        self.ingest = IngestService(
            store=self.store,
            index=self.index,
            embedder=self.embedder,
            tokens=WordCounter(),
            clock=FixedClock(),
            policy=MemoryPolicy(context_before=0),
            indexer=self.indexer,
        )
        self.conversations = ConversationService(
            self.store, self.index, self.store, indexer=self.indexer
        )
        self.search = SearchService(index=self.index, embedder=self.embedder)

    async def texts(self, q: str) -> list[str]:
        found = await self.search.search(CALLER, SearchRequest(q=q, limit=50))
        return sorted(r.memory.text for r in found)


def request(*texts: str) -> IngestRequest:
    roles = ("user", "assistant")
    return IngestRequest(
        "c1", tuple(Message.from_text(roles[i % 2], t) for i, t in enumerate(texts))
    )


async def test_a_failed_apply_is_retried_inside_the_request() -> None:
    world = World()
    world.index.fail_next(world.indexer.attempts - 1)
    result = await world.ingest.ingest(CALLER, request("kayak trip"))
    assert result.kind == "created"
    assert await world.texts("kayak") == ["kayak trip"]
    assert world.store.outbox == []


async def test_a_replace_whose_apply_fails_converges_when_the_request_is_retried() -> None:
    world = World()
    await world.ingest.ingest(CALLER, request("kayak trip", "lovely lake"))
    assert await world.texts("kayak lake") == ["kayak trip", "lovely lake"]

    # Committed, then the index fails on every try: the request fails, the change waits.
    world.index.fail_next(world.indexer.attempts)
    with pytest.raises(StoreUnavailable, match="send the same request again"):
        await world.ingest.ingest(CALLER, request("kayak canyon", "windy lake"))
    assert len(world.store.outbox) == 1
    assert world.store.conversations[("t1", (), "c1")].messages[0].message.text == "kayak canyon"

    # The same request: unchanged for the store, and it finishes the index update.
    retried = await world.ingest.ingest(CALLER, request("kayak canyon", "windy lake"))
    assert retried.kind == "unchanged"
    assert world.store.outbox == []
    assert await world.texts("kayak lake") == ["kayak canyon", "windy lake"]


async def test_a_delete_whose_apply_fails_converges_when_it_is_retried() -> None:
    world = World()
    await world.ingest.ingest(CALLER, request("kayak trip"))
    world.index.fail_next(world.indexer.attempts)
    with pytest.raises(StoreUnavailable):
        await world.conversations.forget(CALLER, "c1")
    with pytest.raises(NotFound):
        await world.conversations.forget(CALLER, "c1")
    assert world.store.outbox == []
    assert await world.texts("kayak") == []


async def test_what_is_pending_at_start_is_replayed() -> None:
    first = World()
    await first.ingest.ingest(CALLER, request("kayak trip", "lovely lake"))
    first.index.fail_next(first.indexer.attempts)
    with pytest.raises(StoreUnavailable):
        await first.ingest.ingest(CALLER, request("kayak canyon"))

    # A new process over the same store: a fresh, empty index, then the replay.
    again = World(first.store)
    # The fakes' index keeps nothing, so fill it as a rebuild would, then replay.
    for entry in list(first.index.applied):
        await again.real.apply(entry)
    assert await again.texts("kayak") == ["kayak trip", "lovely lake"]
    assert await again.indexer.replay() == 1
    assert await again.texts("kayak lake") == ["kayak canyon"]
    assert again.store.outbox == []


async def test_replay_at_start_logs_and_keeps_the_change_if_the_index_fails() -> None:
    world = World()
    world.index.fail_next(world.indexer.attempts)
    with pytest.raises(StoreUnavailable):
        await world.ingest.ingest(CALLER, request("kayak trip"))
    world.index.fail_next(world.indexer.attempts)
    assert await world.indexer.replay() == 0
    assert len(world.store.outbox) == 1
    assert await world.indexer.replay() == 1
    assert await world.texts("kayak") == ["kayak trip"]


async def test_applying_a_change_twice_changes_nothing() -> None:
    world = World()
    await world.ingest.ingest(CALLER, request("kayak trip", "lovely lake"))
    await world.ingest.ingest(CALLER, request("kayak canyon"))
    before = dict(world.real.memories)
    for change in world.index.applied:
        await world.real.apply(change)
    # Every change again, in order: the same memories (the replace removed the first ones).
    assert world.real.memories.keys() == before.keys()
