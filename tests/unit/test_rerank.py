"""Rerankers: over the pool, before the cut, only when asked and named; chat keeps their order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
from attrs import define, evolve, field

from memoryd.core.chat import ChatPolicy, ChatRequest, ChatService
from memoryd.core.errors import ConfigurationError
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.model import Caller, Memory, Message, ScoredMemory
from memoryd.core.ports import RerankCandidate
from memoryd.core.prompt import gather_context
from memoryd.core.retrieval import (
    ContextRule,
    SearchRequest,
    SearchService,
    choose_rerankers,
    select_context,
)
from memoryd.testing import (
    FakeEmbedder,
    FixedClock,
    InMemoryIndex,
    InMemoryStore,
    ReversingReranker,
    ScriptedChatModel,
    WordCounter,
)

FACTS = [
    "Bees live on the roof",
    "Bees make honey on the roof in summer",
    "Bees sting when scared",
    "Wasps are not bees",
]


async def seed(ingest: IngestService, caller: Caller) -> None:
    for i, fact in enumerate(FACTS):
        request = IngestRequest(
            conversation_id=f"c{i}", messages=(Message.from_text("user", fact),)
        )
        await ingest.ingest(caller, request)


def ids(results: Sequence[ScoredMemory]) -> list[str]:
    return [r.memory.id for r in results]


@define
class Rescoring:
    """Puts the candidate with the fewest words first, and says so in its score."""

    name: str = "shortest"

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        ranked = sorted(pool, key=lambda c: len(c.memory.text.split()))
        return [evolve(c, score=float(len(pool) - i)) for i, c in enumerate(ranked)]


@define
class Unnamed:
    name: str
    calls: list[str] = field(factory=list)

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        self.calls.append(query)
        return list(pool)


async def test_rerankers_run_only_when_the_request_asks(
    ingest: IngestService, index: InMemoryIndex, embedder: FakeEmbedder, caller: Caller
) -> None:
    await seed(ingest, caller)
    reverse = ReversingReranker()
    search = SearchService(index=index, embedder=embedder, rerankers=[reverse])
    plain = await search.search(caller, SearchRequest(q="bees roof", limit=10))
    assert reverse.pools == []
    reranked = await search.search(caller, SearchRequest(q="bees roof", limit=10, rerank=True))
    assert ids(reranked) == ids(plain)[::-1]
    # The cache keeps the two apart: asking again without rerank gives the fused order.
    assert ids(await search.search(caller, SearchRequest(q="bees roof", limit=10))) == ids(plain)
    assert len(reverse.pools) == 1


async def test_rerankers_see_the_whole_pool_with_vectors_before_the_cut(
    ingest: IngestService, index: InMemoryIndex, embedder: FakeEmbedder, caller: Caller
) -> None:
    await seed(ingest, caller)
    reverse = ReversingReranker()
    search = SearchService(index=index, embedder=embedder, rerankers=[reverse])
    everything = await search.search(caller, SearchRequest(q="bees roof", limit=10))
    top2 = await search.search(caller, SearchRequest(q="bees roof", limit=2, rerank=True))
    # The pool was reversed, then cut: the two the fused order put last come first.
    assert ids(top2) == ids(everything)[::-1][:2]
    (pool,) = reverse.pools
    assert [c.memory.id for c in pool] == ids(everything)  # best first by the fused score
    assert [c.score for c in pool] == [r.score for r in everything]
    assert [c.similarity for c in pool] == [r.similarity for r in everything]
    query = np.asarray(await embedder.embed_query("bees roof"), np.float32)
    for candidate in pool:
        vectors = np.asarray(candidate.vectors)
        assert vectors.ndim == 2
        assert vectors.shape[1] == embedder.dimension
        assert float(np.max(vectors @ query)) == pytest.approx(candidate.similarity, abs=1e-5)


async def test_the_threshold_applies_before_the_rerankers(
    ingest: IngestService, index: InMemoryIndex, embedder: FakeEmbedder, caller: Caller
) -> None:
    await seed(ingest, caller)
    reverse = ReversingReranker()
    search = SearchService(index=index, embedder=embedder, rerankers=[reverse])
    everything = await search.search(caller, SearchRequest(q="bees roof", limit=10))
    threshold = everything[1].similarity
    await search.search(
        caller, SearchRequest(q="bees roof", limit=10, threshold=threshold, rerank=True)
    )
    (pool,) = reverse.pools
    assert all(c.similarity >= threshold for c in pool)
    assert len(pool) < len(everything)


async def test_rerankers_chain_in_order_and_may_rescore(
    ingest: IngestService, index: InMemoryIndex, embedder: FakeEmbedder, caller: Caller
) -> None:
    await seed(ingest, caller)
    reverse = ReversingReranker()
    search = SearchService(index=index, embedder=embedder, rerankers=[Rescoring(), reverse])
    results = await search.search(caller, SearchRequest(q="bees", limit=10, rerank=True))
    words = [len(r.memory.text.split()) for r in results]
    assert words == sorted(words, reverse=True)  # shortest first, then reversed
    assert [r.score for r in results] == sorted(r.score for r in results)  # its scores kept
    (pool,) = reverse.pools
    assert [len(c.memory.text.split()) for c in pool] == sorted(words)


def test_rerankers_are_chosen_and_ordered_by_name() -> None:
    a, b, c = Unnamed("a"), Unnamed("b"), Unnamed("c")
    assert choose_rerankers([a, b, c], ["c", "a"]) == [c, a]
    assert choose_rerankers([a, b, c], []) == []
    with pytest.raises(ConfigurationError) as caught:
        choose_rerankers([a, b], ["a", "cross-encoder"])
    assert "'cross-encoder'" in caught.value.message
    assert "Installed rerankers: a, b" in caught.value.message
    assert caught.value.details == {"setting": "rerankers", "installed": ["a", "b"]}
    with pytest.raises(ConfigurationError, match="two rerankers do"):
        choose_rerankers([a, Unnamed("a")], ["a"])


def scored(mid: str, conversation: str, similarity: float) -> ScoredMemory:
    memory = Memory(
        id=mid,
        tenant_id="t",
        conversation_id=conversation,
        text=mid,
        positions=(0,),
        said_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    return ScoredMemory(memory=memory, similarity=similarity, score=similarity)


def test_the_context_rule_keeps_the_incoming_order() -> None:
    # A reranker put the less similar ones first: the rule does not re-sort by cosine.
    results = [scored("m1", "c1", 0.5), scored("m2", "c2", 0.9), scored("m3", "c3", 0.7)]
    rule = ContextRule(min_similarity=0.4, min_normalised=0.0, min_keep=3)
    assert [r.memory.id for r in select_context(results, rule)] == ["m1", "m2", "m3"]
    normalised = {r.memory.id: r.score for r in select_context(results, rule)}
    assert normalised == {"m1": 0.0, "m2": 1.0, "m3": pytest.approx(0.5)}


def test_gather_context_keeps_the_incoming_order_across_documents() -> None:
    results = [
        scored("a2", "a", 0.5),
        scored("b1", "b", 0.95),
        scored("a1", "a", 0.9),
        scored("b2", "b", 0.6),
    ]
    rule = ContextRule(min_similarity=0.4, min_normalised=0.0, min_keep=2)
    chosen = gather_context(results, rule, per_document=2)
    assert [r.memory.id for r in chosen] == ["a2", "b1", "a1", "b2"]


async def test_chat_with_rerank_keeps_the_reranked_order_in_the_prompt(
    ingest: IngestService,
    index: InMemoryIndex,
    embedder: FakeEmbedder,
    store: InMemoryStore,
    clock: FixedClock,
    caller: Caller,
) -> None:
    await seed(ingest, caller)
    reverse = ReversingReranker()
    model = ScriptedChatModel()
    policy_search = SearchService(index=index, embedder=embedder, rerankers=[reverse])
    rule = ContextRule(min_similarity=-1.0, max_documents=10, min_normalised=-1.0, min_keep=10)

    async def prompt_memories(rerank: bool) -> list[str]:
        chat = ChatService(
            search=policy_search,
            threads=store,
            model=model,
            tokens=WordCounter(),
            clock=clock,
            policy=ChatPolicy(rule=rule, rerank=rerank, memories_per_document=1),
        )
        reply = await chat.start(
            caller, ChatRequest(messages=(Message.from_text("user", "bees roof"),))
        )
        return [m.memory.id for m in reply.prompt.memories]

    fused = await prompt_memories(rerank=False)
    assert reverse.pools == []
    reranked = await prompt_memories(rerank=True)
    assert len(reverse.pools) == 1
    assert len(fused) == len(FACTS)
    assert reranked == fused[::-1]
