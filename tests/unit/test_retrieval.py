"""Search: scope, fusion, threshold, cache; and the chat context rule on fixed scores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from memoryd.core.errors import Forbidden
from memoryd.core.filters import Condition, MemoryFilter
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.model import Caller, Memory, Message, ScoredMemory
from memoryd.core.ports import Candidate, IndexChange, IndexQuery, KeywordFirstIndex, KeywordHit
from memoryd.core.retrieval import (
    ContextRule,
    FusionSettings,
    SearchRequest,
    SearchService,
    fuse,
    scope,
    select_context,
)
from memoryd.testing import FakeEmbedder, InMemoryIndex


async def seed(ingest: IngestService, caller: Caller) -> None:
    for cid, text, tags, meta in [
        ("c1", "I adopted a dog named Rex", ("pets",), {"year": 2021, "mood": "happy"}),
        ("c2", "My cat sleeps all day", ("pets",), {"year": 2023, "mood": "calm"}),
        ("c3", "Quarterly budget review meeting", ("work",), {"year": 2023, "mood": "calm"}),
    ]:
        await ingest.ingest(
            caller,
            IngestRequest(
                conversation_id=cid,
                messages=(Message.from_text("user", text),),
                container_tags=tags,
                metadata=meta,
            ),
        )


async def test_search_finds_best_first(
    ingest: IngestService, search: SearchService, caller: Caller
) -> None:
    await seed(ingest, caller)
    results = await search.search(caller, SearchRequest(q="dog named Rex"))
    assert results[0].memory.conversation_id == "c1"
    assert results[0].similarity > results[-1].similarity


class OneCallIndex:
    """An index without the keyword-first capability: both sides run in ``search``."""

    def __init__(self, inner: InMemoryIndex) -> None:
        self.inner = inner
        self.searches: list[IndexQuery] = []

    async def apply(self, change: IndexChange) -> None:
        await self.inner.apply(change)

    async def clear(self, tenant_id: str | None = None) -> None:
        await self.inner.clear(tenant_id)

    async def check(self) -> None:
        await self.inner.check()

    async def search(self, query: IndexQuery) -> list[Candidate]:
        self.searches.append(query)
        return await self.inner.search(query)

    async def fetch(self, tenant_id: str, memory_ids: Sequence[str]) -> list[Memory]:
        return await self.inner.fetch(tenant_id, memory_ids)

    async def generation(self, tenant_id: str) -> int:
        return await self.inner.generation(tenant_id)


class CountingIndex(InMemoryIndex):
    keyword_calls = 0

    async def keyword_search(
        self, memory_filter: MemoryFilter, text: str, k: int
    ) -> tuple[KeywordHit, ...]:
        self.keyword_calls += 1
        return await super().keyword_search(memory_filter, text, k)


async def test_keyword_first_is_an_optional_capability_of_the_index(
    ingest: IngestService, index: InMemoryIndex, embedder: FakeEmbedder, caller: Caller
) -> None:
    await seed(ingest, caller)
    plain = OneCallIndex(index)
    assert isinstance(index, KeywordFirstIndex)
    assert not isinstance(plain, KeywordFirstIndex)
    request = SearchRequest(q="dog named Rex")

    ahead = await SearchService(index=index, embedder=embedder).search(caller, request)
    in_one = await SearchService(index=plain, embedder=embedder).search(caller, request)

    # The same results: without the capability, the index runs the keyword side itself.
    assert [r.memory.id for r in in_one] == [r.memory.id for r in ahead]
    assert [q.keyword_hits for q in plain.searches] == [None]
    counting = CountingIndex(
        memories=index.memories, vectors=index.vectors, contexts=index.contexts
    )
    await SearchService(index=counting, embedder=embedder).search(caller, request)
    assert counting.keyword_calls == 1


async def test_tags_and_metadata_filter(
    ingest: IngestService, search: SearchService, caller: Caller
) -> None:
    await seed(ingest, caller)
    found = await search.search(caller, SearchRequest(q="day", container_tags=("work",)))
    assert {r.memory.conversation_id for r in found} == {"c3"}
    found = await search.search(
        caller,
        SearchRequest(q="dog cat budget", conditions=(Condition("year", "gte", 2022),)),
    )
    assert {r.memory.conversation_id for r in found} == {"c2", "c3"}


async def test_tag_limited_caller_sees_only_its_tags(
    ingest: IngestService, search: SearchService, caller: Caller
) -> None:
    await seed(ingest, caller)
    limited = Caller(tenant_id="t1", key_id="k", tags=("work",))
    found = await search.search(limited, SearchRequest(q="dog cat budget"))
    assert {r.memory.conversation_id for r in found} == {"c3"}
    with pytest.raises(Forbidden):
        await search.search(limited, SearchRequest(q="dog", container_tags=("pets",)))


async def test_threshold_and_limit(
    ingest: IngestService, search: SearchService, caller: Caller
) -> None:
    await seed(ingest, caller)
    everything = await search.search(caller, SearchRequest(q="dog", limit=10))
    assert len(everything) == 3
    assert len(await search.search(caller, SearchRequest(q="dog", limit=1))) == 1
    high = await search.search(caller, SearchRequest(q="dog", threshold=0.3))
    assert high
    assert all(r.similarity >= 0.3 for r in high)
    assert len(high) < 3


async def test_cache_serves_repeats_and_misses_after_a_write(
    ingest: IngestService, search: SearchService, caller: Caller, embedder: FakeEmbedder
) -> None:
    await seed(ingest, caller)
    first = await search.search(caller, SearchRequest(q="a dog"))
    again = await search.search(caller, SearchRequest(q="  A   DOG "))
    assert again is first
    assert search.cache.hits == 1
    await ingest.ingest(
        caller,
        IngestRequest(conversation_id="c9", messages=(Message.from_text("user", "dog dog"),)),
    )
    fresh = await search.search(caller, SearchRequest(q="a dog"))
    assert fresh is not first
    assert "c9" in {r.memory.conversation_id for r in fresh}


def test_scope_uses_key_tags_when_request_names_none() -> None:
    limited = Caller(tenant_id="t", key_id="k", tags=("a", "b"))
    assert scope(limited, SearchRequest(q="x")).container_tags == ("a", "b")
    assert scope(limited, SearchRequest(q="x", container_tags=("a",))).container_tags == ("a",)


def test_weighted_fusion_sums_min_max_normalised_scores() -> None:
    a = Candidate("a", 0.9, 0, None)  # best cosine, no keyword match
    b = Candidate("b", 0.7, 1, 0, keyword_score=12.0)  # best keyword match
    c = Candidate("c", 0.5, 2, 1, keyword_score=6.0)
    fused = {x.memory_id: s for x, s in fuse([a, b, c], FusionSettings())}
    # dense: a 1.0, b 0.5, c 0.0; keyword: a 0.0, b 1.0, c 0.5
    assert fused == {"b": 0.6 * 0.5 + 0.4 * 1.0, "a": 0.6, "c": 0.4 * 0.5}
    assert [x.memory_id for x, _ in fuse([a, b, c], FusionSettings())] == ["b", "a", "c"]
    dense_only = fuse([a, b, c], FusionSettings(keyword_weight=0.0))
    assert [x.memory_id for x, _ in dense_only] == ["a", "b", "c"]


def test_rrf_fusion_rewards_agreement_and_breaks_ties_by_similarity() -> None:
    both = Candidate("both", 0.5, 1, 1)
    dense_top = Candidate("dense", 0.9, 0, None)
    kw_top = Candidate("kw", 0.2, None, 0)
    tie = Candidate("tie", 0.95, None, 0)
    rrf = FusionSettings(method="rrf", dense_weight=1.0, keyword_weight=1.0)
    order = [c.memory_id for c, _ in fuse([dense_top, kw_top, both, tie], rrf)]
    assert order[0] == "both"
    assert order.index("tie") < order.index("kw")


def test_fusion_of_equal_scores_and_of_nothing() -> None:
    same = [Candidate("x", 0.5, 0, None), Candidate("y", 0.5, 1, None)]
    assert [s for _, s in fuse(same, FusionSettings())] == [0.6, 0.6]
    assert fuse([], FusionSettings()) == []


def memory(mid: str, conv: str) -> Memory:
    return Memory(
        id=mid,
        tenant_id="t",
        conversation_id=conv,
        text=mid,
        positions=(0,),
        said_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def scored(*pairs: tuple[str, str, float]) -> list[ScoredMemory]:
    return [ScoredMemory(memory(m, c), s, s) for m, c, s in pairs]


def test_context_rule_threshold() -> None:
    out = select_context(scored(("a", "1", 0.9), ("b", "2", 0.41), ("c", "3", 0.4)), ContextRule())
    assert [r.memory.id for r in out] == ["a", "b"]


def test_context_rule_unique_documents() -> None:
    results = scored(
        ("a1", "A", 0.95),
        ("a2", "A", 0.94),
        ("b", "B", 0.9),
        ("c", "C", 0.85),
        ("d", "D", 0.8),
        ("e", "E", 0.75),
        ("f", "F", 0.7),
    )
    out = select_context(results, ContextRule(min_normalised=-1.0, min_keep=0))
    assert [r.memory.id for r in out] == ["a1", "b", "c", "d", "e"]


def test_context_rule_normalises_min_max() -> None:
    out = select_context(
        scored(("a", "1", 0.9), ("b", "2", 0.7), ("c", "3", 0.5)),
        ContextRule(min_normalised=-1.0, min_keep=0),
    )
    assert [round(r.score, 6) for r in out] == [1.0, 0.5, 0.0]
    assert [r.similarity for r in out] == [0.9, 0.7, 0.5]


def test_context_rule_keeps_above_cut_or_top_three() -> None:
    # Normalised: 1.0, 0.95, 0.9, 0.05, 0.0 -> three pass 0.6.
    many = scored(
        ("a", "1", 0.90), ("b", "2", 0.89), ("c", "3", 0.88), ("d", "4", 0.71), ("e", "5", 0.70)
    )
    assert [r.memory.id for r in select_context(many, ContextRule())] == ["a", "b", "c"]
    # Normalised: 1.0, 0.1, 0.05, 0.0 -> only one passes, so the top 3 are kept.
    few = scored(("a", "1", 0.9), ("b", "2", 0.52), ("c", "3", 0.51), ("d", "4", 0.5))
    assert [r.memory.id for r in select_context(few, ContextRule())] == ["a", "b", "c"]
    # Four pass the cut: all four are kept, not just three.
    four = scored(
        ("a", "1", 0.9), ("b", "2", 0.89), ("c", "3", 0.88), ("d", "4", 0.87), ("e", "5", 0.5)
    )
    assert len(select_context(four, ContextRule())) == 4
