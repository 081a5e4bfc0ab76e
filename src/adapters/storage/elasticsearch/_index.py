"""MemoryIndex on Elasticsearch: knn and BM25 in one ``_msearch``, fused by memoryd.

Both sides are pre-filtered by the same query (``_filters``): the knn
clause carries it as its ``filter`` (never a ``post_filter``), the BM25
query as ``bool.filter``; both are routed to the tenant's shard.

Scores: the knn side finds candidates on the quantised HNSW graph
(``int8_hnsw``: its scores are approximate), so more are asked for than
kept, and each is rescored with its exact float32 piece vectors from
``_source``: the best piece's cosine, in -1..1. Keyword-only hits get their
cosine the same way, so the chat's similarity rule means what it means on
the embedded store. The fusion (weighted or rrf) stays memoryd's own: the
``rrf`` and ``linear`` retrievers need an Enterprise licence (a Basic
cluster answers 403), and this way both backends rank alike.

The cache generation is the version of a per-tenant document in the
``state`` index, bumped after every apply has been refreshed: a realtime
GET, so every server sees another server's write at its next search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from memoryd.adapters.storage._vectors import unit_rows
from memoryd.adapters.storage.elasticsearch import _codec as codec
from memoryd.adapters.storage.elasticsearch._cluster import Cluster, Doc, doc_id, reachable
from memoryd.adapters.storage.elasticsearch._filters import filter_clauses
from memoryd.adapters.storage.elasticsearch._terms import (
    TermPlanner,
    count_body,
    counts,
    keyword_match,
    terms,
)
from memoryd.core.errors import ConfigurationError, StoreUnavailable
from memoryd.core.model import Memory
from memoryd.core.ports import Candidate, IndexChange, IndexQuery

log = logging.getLogger(__name__)

KIND = "memories"
#: The most documents one search asks for (Elasticsearch's ``index.max_result_window``).
MAX_WINDOW = 10_000
#: Ids per query or bulk request.
CHUNK = 1000
#: What a search reads of each hit: its id and exact vectors, to rescore it.
RESCORE_SOURCE = ["memory_id", "payload.vectors", "payload.dims"]


def index_actions(change: IndexChange, dimension: int) -> list[tuple[Doc, Doc]]:
    """The ``_bulk`` index actions that write the change's added memories (as ``apply``)."""
    tenant = change.tenant_id
    actions: list[tuple[Doc, Doc]] = []
    for item in change.added:
        memory = item.memory
        tags = change.container_tags if change.container_tags is not None else memory.container_tags
        metadata = change.metadata if change.metadata is not None else memory.metadata
        source = codec.index_doc(
            item, tags=tags, metadata=metadata, scope=change.scope, dimension=dimension
        )
        actions.append(
            ({"index": {"_id": codec.memory_doc_id(tenant, memory.id), "routing": tenant}}, source)
        )
    return actions


def keyword_body(words: Sequence[str], clauses: list[Doc], k: int) -> Doc:
    """The BM25 search of ``words``, pre-filtered by ``clauses``: the best ``k``."""
    return {
        "query": {"bool": {"must": [keyword_match(words)], "filter": clauses}},
        "size": k,
        "_source": RESCORE_SOURCE,
    }


def _generation_id(tenant_id: str | None) -> str:
    return doc_id("generation", tenant_id) if tenant_id is not None else "generation-all"


class EsMemoryIndex:
    """The searchable view of memories, in the cluster."""

    def __init__(self, cluster: Cluster, *, dimension: int | None) -> None:
        self.cluster = cluster
        self._dimension = dimension
        self.planner = TermPlanner()

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise ConfigurationError(
                "The Elasticsearch backend was opened without an embedding dimension "
                "(for the key store only): the memory index cannot be used"
            )
        return self._dimension

    # --- writing -----------------------------------------------------------------------------

    async def apply(self, change: IndexChange) -> None:
        """Make the change searchable, then bump the tenant's generation. Idempotent."""
        tenant = change.tenant_id
        dimension = self.dimension
        removed = list(dict.fromkeys(change.removed_memory_ids))
        for start in range(0, len(removed), CHUNK):
            part = removed[start : start + CHUNK]
            await self.cluster.forget(
                KIND,
                {
                    "bool": {
                        "filter": [{"term": {"tenant": tenant}}, {"terms": {"memory_id": part}}]
                    }
                },
                routing=tenant,
            )
        actions = index_actions(change, dimension)
        for start in range(0, len(actions), CHUNK):
            await self.cluster.bulk(KIND, actions[start : start + CHUNK])
        await self._relabel(change)
        await self._bump(tenant)

    async def _relabel(self, change: IndexChange) -> None:
        """New tags and metadata for the conversation's memories; new keyword contexts."""
        tenant = change.tenant_id
        key = codec.conversation_key(change.scope, change.conversation_id)
        conversation: list[Doc] = [
            {"term": {"tenant": tenant}},
            {"term": {"conversation_key": key}},
        ]
        actions: list[tuple[Doc, Doc | None]] = []
        if change.container_tags is not None or change.metadata is not None:
            await self.cluster.refresh_now(KIND)
            tags = change.container_tags
            metadata = change.metadata
            async for hit in self._scan(conversation, ["tags", "metadata"], routing=tenant):
                source = hit["_source"]
                new_tags = list(tags) if tags is not None else source["tags"]
                new_metadata = dict(metadata) if metadata is not None else source["metadata"]
                if new_tags == source["tags"] and new_metadata == source["metadata"]:
                    continue
                actions.append(
                    ({"update": {"_id": hit["_id"], "routing": tenant}},
                     {"doc": codec.labels_doc(new_tags, new_metadata)})
                )  # fmt: skip
        if change.context_updates:
            await self.cluster.refresh_now(KIND)
            contexts = dict(change.context_updates)
            query: list[Doc] = [*conversation, {"terms": {"positions": sorted(contexts)}}]
            async for hit in self._scan(query, ["positions", "text"], routing=tenant):
                source = hit["_source"]
                positions = source["positions"]
                if len(positions) == 1 and positions[0] in contexts:
                    context = contexts[positions[0]]
                    keywords = codec.keyword_values(source["text"], context)
                    actions.append(
                        ({"update": {"_id": hit["_id"], "routing": tenant}},
                         {"doc": {"context": context, "keywords": keywords}})
                    )  # fmt: skip
        for start in range(0, len(actions), CHUNK):
            await self.cluster.bulk(KIND, actions[start : start + CHUNK])

    async def _scan(self, clauses: list[Doc], fields: list[str], *, routing: str | None) -> Any:
        """Every matching memory document (ids and ``fields``), page by page."""
        after: list[Any] | None = None
        while True:
            body: Doc = {
                "query": {"bool": {"filter": clauses}},
                "sort": [{"memory_id": "asc"}],
                "size": CHUNK,
                "source_includes": fields,
                "routing": routing,
            }
            if after is not None:
                body["search_after"] = after
            hits = (await self.cluster.search(KIND, **body))["hits"]["hits"]
            for hit in hits:
                yield hit
            if len(hits) < CHUNK:
                return
            after = hits[-1]["sort"]

    async def _bump(self, tenant_id: str | None) -> None:
        with reachable():
            await self.cluster.client.index(
                index=self.cluster.config.alias("state"),
                id=_generation_id(tenant_id),
                routing=tenant_id,
                document={"tenant": tenant_id or "", "kind": "generation"},
            )

    async def clear(self, tenant_id: str | None = None) -> None:
        """Forget the tenant's memories (None: every tenant's), provably."""
        query: Doc = {"match_all": {}} if tenant_id is None else {"term": {"tenant": tenant_id}}
        await self.cluster.forget(KIND, query, routing=tenant_id)
        await self._bump(tenant_id)

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the memories index answers a search."""
        await self.cluster.search(KIND, query={"match_none": {}}, size=0)

    async def generation(self, tenant_id: str) -> int:
        """The versions of the tenant's generation document and of the global one."""
        with reachable():
            answer = await self.cluster.client.mget(
                index=self.cluster.config.alias("state"),
                docs=[
                    {"_id": _generation_id(tenant_id), "routing": tenant_id},
                    {"_id": _generation_id(None)},
                ],
                source=False,
            )
        mine, every = (int(d.get("_version", 0)) if d.get("found") else 0 for d in answer["docs"])
        return (every << 32) | mine

    # --- reading -----------------------------------------------------------------------------

    async def search(self, query: IndexQuery) -> list[Candidate]:
        """Up to ``k`` dense and ``k`` keyword candidates passing the filter, in one _msearch."""
        k = min(query.k, MAX_WINDOW)
        if k <= 0:
            return []
        tenant = query.filter.tenant_id
        q = unit_rows(query.vector, self.dimension)[0]
        clauses = filter_clauses(query.filter)
        # Rescored exactly below: ask for more than k, as the graph's scores are approximate.
        wanted = min(MAX_WINDOW, max(2 * k, k + 20))
        candidates = min(MAX_WINDOW, max(self.cluster.config.num_candidates, wanted))
        head = {"index": self.cluster.config.alias(KIND), "routing": tenant}
        searches: list[Doc] = [
            head,
            {
                "knn": {
                    "field": "pieces.vector",
                    "query_vector": [float(x) for x in q],
                    "k": wanted,
                    "num_candidates": candidates,
                    "filter": {"bool": {"filter": clauses}},
                },
                "size": wanted,
                "_source": RESCORE_SOURCE,
            },
        ]
        # The words the embedded store would search (``_terms``): its stopwords, less
        # the words found in more than half of the filter's memories.
        words = terms(query.text) if query.keyword_hits is None else []
        keyword = bool(words)
        chosen: list[str] | None = None
        missing: list[str] = []
        if keyword:
            requests, chosen, missing = self._keyword_requests(words, clauses, head, k)
            searches += requests
        responses = await self._msearch(searches)
        keyword_hits: list[Doc] = []
        if keyword:
            keyword_hits = await self._keyword_hits(
                words, clauses, head, k, responses=responses[1:], chosen=chosen, missing=missing
            )
        vectors: dict[str, Any] = {}
        similarity: dict[str, float] = {}

        def score(hit: Doc) -> str:
            mid = _memory_id(hit)
            if mid not in similarity:
                rows = codec.index_vectors(hit["_source"])
                vectors[mid] = rows
                similarity[mid] = float(np.max(rows @ q))
            return mid

        dense_ids = [score(h) for h in responses[0]["hits"]["hits"]]
        dense_ids = sorted(dict.fromkeys(dense_ids), key=lambda m: -similarity[m])[:k]
        keyword_score: dict[str, float] = {}
        if keyword:
            for doc in keyword_hits:
                keyword_score.setdefault(score(doc), float(doc["_score"] or 0.0))
        elif query.keyword_hits:
            known = await self._vectors(tenant, [h.memory_id for h in query.keyword_hits])
            for hit in query.keyword_hits:
                if hit.memory_id in known:
                    rows = known[hit.memory_id]
                    vectors[hit.memory_id] = rows
                    similarity.setdefault(hit.memory_id, float(np.max(rows @ q)))
                    keyword_score.setdefault(hit.memory_id, hit.score)
        dense_rank = {mid: i for i, mid in enumerate(dense_ids)}
        keyword_rank = {mid: i for i, mid in enumerate(list(keyword_score)[:k])}
        ids = list(dict.fromkeys([*dense_ids, *keyword_rank]))
        return [
            Candidate(
                memory_id=mid,
                # float32 unit vectors can give 1.0000001: keep cosine in range.
                similarity=min(1.0, max(-1.0, similarity[mid])),
                dense_rank=dense_rank.get(mid),
                keyword_rank=keyword_rank.get(mid),
                keyword_score=keyword_score.get(mid) if mid in keyword_rank else None,
                vectors=vectors[mid] if query.with_vectors else None,
            )
            for mid in ids
        ]

    def _keyword_requests(
        self, words: list[str], clauses: list[Doc], head: Doc, k: int
    ) -> tuple[list[Doc], list[str] | None, list[str]]:
        """The keyword side's requests for the first ``_msearch``: the BM25 request when
        every word's count is known (else None as the words chosen), then the counts."""
        scope = TermPlanner.scope_key(clauses)
        known_size, missing = self.planner.known(scope, words)
        chosen: list[str] | None = None
        requests: list[Doc] = []
        if known_size is not None and not missing:
            chosen = self.planner.choose(scope, words, known_size)
            if chosen:
                requests += [head, keyword_body(chosen, clauses, k)]
        requests += [head, count_body(clauses, missing)]
        return requests, chosen, missing

    async def _keyword_hits(
        self,
        words: list[str],
        clauses: list[Doc],
        head: Doc,
        k: int,
        *,
        responses: list[Doc],
        chosen: list[str] | None,
        missing: list[str],
    ) -> list[Doc]:
        """The BM25 hits: from ``responses`` (the keyword side's), or a second request
        with the words chosen once the missing counts are in."""
        scope = TermPlanner.scope_key(clauses)
        at = 1 if chosen else 0
        size, counted = counts(responses[at], missing)
        self.planner.learn(scope, size, counted)
        if chosen:
            hits: list[Doc] = responses[0]["hits"]["hits"]
            return hits
        if chosen is None:
            chosen = self.planner.choose(scope, words, size)
            if chosen:
                second = await self._msearch([head, keyword_body(chosen, clauses, k)])
                found: list[Doc] = second[0]["hits"]["hits"]
                return found
        return []

    async def _msearch(self, searches: list[Doc]) -> list[Doc]:
        """The responses, or ``StoreUnavailable`` (429, 5xx) / an error (4xx) for any refused."""
        with reachable():
            answer = await self.cluster.client.msearch(searches=searches)
        responses: list[Doc] = answer["responses"]
        for r in responses:
            if "error" in r:
                status = int(r.get("status", 500))
                if status >= 500 or status == 429:
                    raise StoreUnavailable()
                raise RuntimeError(f"Elasticsearch refused a search: {r['error']!r}")
        return responses

    async def _sources(
        self, tenant_id: str, memory_ids: Sequence[str], **kw: Any
    ) -> dict[str, Doc]:
        found: dict[str, Doc] = {}
        ids = list(dict.fromkeys(memory_ids))
        for start in range(0, len(ids), CHUNK):
            with reachable():
                answer = await self.cluster.client.mget(
                    index=self.cluster.config.alias(KIND),
                    docs=[
                        {"_id": codec.memory_doc_id(tenant_id, mid), "routing": tenant_id}
                        for mid in ids[start : start + CHUNK]
                    ],
                    **kw,
                )
            for d in answer["docs"]:
                if d.get("found") and d["_source"].get("tenant") == tenant_id:
                    found[d["_source"]["memory_id"]] = d["_source"]
        return found

    async def _vectors(self, tenant_id: str, memory_ids: Sequence[str]) -> dict[str, Any]:
        sources = await self._sources(
            tenant_id,
            memory_ids,
            source_includes=["memory_id", "tenant", "payload.vectors", "payload.dims"],
        )
        return {mid: codec.index_vectors(s) for mid, s in sources.items()}

    async def fetch(self, tenant_id: str, memory_ids: Sequence[str]) -> list[Memory]:
        """The tenant's memories with these ids, in the given order (missing ones left out)."""
        if not memory_ids:
            return []
        sources = await self._sources(
            tenant_id, memory_ids, source_excludes=["pieces", "payload.vectors"]
        )
        found = {mid: codec.memory_from_index(s) for mid, s in sources.items()}
        return [found[mid] for mid in memory_ids if mid in found]

    async def existing(self, tenant_id: str, memory_ids: Sequence[str]) -> set[str]:
        """Which of these memories the tenant has (for the thread store)."""
        sources = await self._sources(
            tenant_id, memory_ids, source_includes=["memory_id", "tenant"]
        )
        return set(sources)


def _memory_id(hit: Doc) -> str:
    return str(hit["_id"]) if "memory_id" not in hit["_source"] else hit["_source"]["memory_id"]
