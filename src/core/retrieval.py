"""Use case: search memories (scope, hybrid fusion, threshold, rerank, cache)."""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, TypeAlias

from attrs import define, field, frozen

from memoryd.core.errors import ConfigurationError, Forbidden
from memoryd.core.filters import Clause, MemoryFilter
from memoryd.core.model import Caller, DocumentKey, ScoredMemory
from memoryd.core.ports import (
    Candidate,
    Embedder,
    IndexQuery,
    KeywordFirstIndex,
    KeywordHit,
    MemoryIndex,
    RerankCandidate,
    Reranker,
    ResultFilter,
)
from memoryd.core.screening import screen_results


@frozen
class SearchRequest:
    q: str
    container_tags: tuple[str, ...] = ()
    limit: int = 10
    #: Results whose cosine similarity is below this are left out.
    threshold: float = 0.0
    conditions: tuple[Clause, ...] = ()
    after: datetime | None = None
    before: datetime | None = None
    #: Run the rerankers (those the ``rerankers`` setting names) over the candidate pool.
    rerank: bool = False


FusionMethod: TypeAlias = Literal["weighted", "rrf"]


@frozen
class FusionSettings:
    """How the dense and keyword sides combine.

    ``weighted`` (the default) sums min-max normalised scores over the
    candidates: cosine on the dense side, bm25 on the keyword side (0 where
    it found nothing). ``rrf`` sums reciprocal ranks instead, which ignores
    how far apart the scores are; it ranked 0.05 R@5 worse in the LoCoMo
    study (docs/retrieval.md).
    """

    method: FusionMethod = "weighted"
    #: Candidates each side contributes before fusion.
    candidates: int = 100
    #: RRF's constant: larger flattens the difference between top ranks.
    rrf_k: int = 60
    dense_weight: float = 0.6
    #: 0 turns the keyword side off (pure dense search).
    keyword_weight: float = 0.4


def scope(caller: Caller, request: SearchRequest) -> MemoryFilter:
    """The filter a search runs under: the key's tenant and tags, then the request's."""
    tags = request.container_tags
    if tags and not caller.may_use_tags(tags):
        outside = sorted(set(tags) - set(caller.tags))
        raise Forbidden(
            "This API key may not search these container tags",
            details={"containerTags": outside, "allowed": list(caller.tags)},
        )
    return MemoryFilter(
        tenant_id=caller.tenant_id,
        container_tags=tags or caller.tags,
        conditions=request.conditions,
        after=request.after,
        before=request.before,
    )


def fuse(
    candidates: Sequence[Candidate], settings: FusionSettings
) -> list[tuple[Candidate, float]]:
    """Order candidates by the fused score, best first.

    Ties break by cosine similarity, then id, so the order is deterministic.
    """
    if settings.method == "rrf":
        scores = [_reciprocal_ranks(c, settings) for c in candidates]
    else:
        dense = _min_max([c.similarity for c in candidates])
        keyword = _min_max([c.keyword_score or 0.0 for c in candidates])
        scores = [
            settings.dense_weight * d + settings.keyword_weight * k
            for d, k in zip(dense, keyword, strict=True)
        ]
    scored = list(zip(candidates, scores, strict=True))
    scored.sort(key=lambda cs: (-cs[1], -cs[0].similarity, cs[0].memory_id))
    return scored


def _reciprocal_ranks(c: Candidate, settings: FusionSettings) -> float:
    score = 0.0
    if c.dense_rank is not None:
        score += settings.dense_weight / (settings.rrf_k + c.dense_rank + 1)
    if c.keyword_rank is not None:
        score += settings.keyword_weight / (settings.rrf_k + c.keyword_rank + 1)
    return score


def _min_max(values: Sequence[float]) -> list[float]:
    """Scale to [0, 1]; equal values carry no ranking information (all 0, or 1 if positive)."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high <= low:
        return [1.0 if high > 0 else 0.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def normalise_query(text: str) -> str:
    """The cache's view of a query: case and spacing do not matter."""
    return re.sub(r"\s+", " ", text).strip().casefold()


@define
class SearchCache:
    """A small LRU of search results, keyed so that any write to the tenant misses."""

    capacity: int = 1024
    _entries: OrderedDict[tuple[object, ...], list[ScoredMemory]] = field(
        factory=OrderedDict, init=False
    )
    hits: int = field(default=0, init=False)
    misses: int = field(default=0, init=False)

    def get(self, key: tuple[object, ...]) -> list[ScoredMemory] | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: tuple[object, ...], results: list[ScoredMemory]) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = results
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


@define
class SearchService:
    """Finds a caller's memories for a query, best first.

    The index's candidates are fused, those below the request's threshold
    left out, and, when the request asks for it, the ``rerankers`` reorder
    that pool (each on the order of the one before) before it is cut to the
    request's limit, counting only the results the ``filters`` let out.
    """

    index: MemoryIndex
    embedder: Embedder
    fusion: FusionSettings = field(factory=FusionSettings)
    rerankers: Sequence[Reranker] = ()
    #: The plugins' result filters (contained): each result passes them before it is
    #: returned (and so before a chat sees or cites it); a dropped one makes room.
    filters: Sequence[ResultFilter] = ()
    cache: SearchCache = field(factory=SearchCache)

    async def search(self, caller: Caller, request: SearchRequest) -> list[ScoredMemory]:
        memory_filter = scope(caller, request)
        key = (
            memory_filter,
            normalise_query(request.q),
            request.limit,
            request.threshold,
            request.rerank and bool(self.rerankers),
            await self.index.generation(caller.tenant_id),
        )
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        results = await self._search(memory_filter, request)
        self.cache.put(key, results)
        return results

    async def _search(
        self, memory_filter: MemoryFilter, request: SearchRequest
    ) -> list[ScoredMemory]:
        k = max(self.fusion.candidates, request.limit)
        # () : no keyword side; None: the index runs it in ``search``.
        hits: tuple[KeywordHit, ...] | None = () if self.fusion.keyword_weight <= 0 else None
        index = self.index
        if hits is None and isinstance(index, KeywordFirstIndex):
            # The keyword side needs no vector: it runs while the query is embedded.
            keyword = asyncio.ensure_future(index.keyword_search(memory_filter, request.q, k))
            try:
                vector = await self.embedder.embed_query(request.q)
                hits = await keyword
            finally:
                if not keyword.done():
                    keyword.cancel()
                    await asyncio.gather(keyword, return_exceptions=True)
        else:
            vector = await self.embedder.embed_query(request.q)
        rerank = request.rerank and bool(self.rerankers)
        candidates = await self.index.search(
            IndexQuery(
                filter=memory_filter,
                vector=vector,
                text=request.q,
                k=k,
                keyword_hits=hits,
                with_vectors=rerank,
            )
        )
        ranked = [
            (c, score)
            for c, score in fuse(candidates, self.fusion)
            if c.similarity >= request.threshold
        ]
        if not rerank and not self.filters:
            ranked = ranked[: request.limit]
        memories = await self.index.fetch(memory_filter.tenant_id, [c.memory_id for c, _ in ranked])
        by_id = {m.id: m for m in memories}
        pool = [
            RerankCandidate(
                memory=by_id[c.memory_id], similarity=c.similarity, score=score, vectors=c.vectors
            )
            for c, score in ranked
            if c.memory_id in by_id
        ]
        if rerank:
            for reranker in self.rerankers:
                pool = list(await reranker.rerank(request.q, pool))
        found = (
            ScoredMemory(memory=c.memory, similarity=c.similarity, score=c.score) for c in pool
        )
        return await screen_results(self.filters, found, request.limit)


def choose_rerankers(installed: Sequence[Reranker], names: Sequence[str]) -> list[Reranker]:
    """The rerankers named in ``names`` (the ``rerankers`` setting), in that order.

    Raises ``ConfigurationError`` for a name no installed reranker has, or one
    that two have, listing the installed ones.
    """
    by_name: dict[str, list[Reranker]] = {}
    for reranker in installed:
        by_name.setdefault(reranker.name, []).append(reranker)
    listed = ", ".join(sorted(by_name)) or "none"
    chosen: list[Reranker] = []
    for name in names:
        found = by_name.get(name, [])
        if len(found) != 1:
            problem = "no installed reranker has that name" if not found else "two rerankers do"
            raise ConfigurationError(
                f"rerankers names {name!r}, but {problem}. Installed rerankers: {listed} "
                "(`memoryd plugins` shows which plugin registers each)",
                details={"setting": "rerankers", "installed": sorted(by_name)},
            )
        chosen.append(found[0])
    return chosen


@frozen
class ContextRule:
    """Which search results a chat answer uses as context (the reference behaviour)."""

    #: Results at or below this cosine similarity are never used.
    min_similarity: float = 0.4
    #: At most this many unique documents (conversations).
    max_documents: int = 5
    #: After min-max normalisation, keep results above this...
    min_normalised: float = 0.6
    #: ...or at least this many of the best.
    min_keep: int = 3


def select_context(results: Sequence[ScoredMemory], rule: ContextRule) -> list[ScoredMemory]:
    """Apply the chat context rule to results ordered best first, keeping their order.

    Keep results with similarity above ``min_similarity``; keep the first
    (best) one of each document (conversation) until ``max_documents``;
    min-max normalise their similarities; keep those above
    ``min_normalised``, or the first ``min_keep`` if fewer pass. The order is
    the search's (fused, or the rerankers'), never re-sorted by cosine. The
    returned results carry the normalised score in ``score`` and the raw
    cosine in ``similarity``.
    """
    passing = [r for r in results if r.similarity > rule.min_similarity]
    unique: list[ScoredMemory] = []
    seen: set[DocumentKey] = set()
    for r in passing:
        if r.memory.document in seen:
            continue
        seen.add(r.memory.document)
        unique.append(r)
        if len(unique) == rule.max_documents:
            break
    if not unique:
        return []
    top = max(r.similarity for r in unique)
    bottom = min(r.similarity for r in unique)
    span = top - bottom
    normalised = [
        ScoredMemory(
            memory=r.memory,
            similarity=r.similarity,
            score=(r.similarity - bottom) / span if span > 0 else 1.0,
        )
        for r in unique
    ]
    kept = [r for r in normalised if r.score > rule.min_normalised]
    return kept if len(kept) >= rule.min_keep else normalised[: rule.min_keep]
