"""Use case: document search (``POST /v3/search``): the memory search, grouped by document.

A document's chunks are its memories, in the order they were made (a
chunk's ``position``). The memory search (:class:`~memoryd.core.retrieval.SearchService`:
scope, filters, fusion, rerankers, result filters) finds the matching
chunks, those whose similarity is at least ``chunk_threshold``; they are
grouped by document in the order the best of each was found. A document
scores its best chunk's similarity and is kept if that is at least
``document_threshold``. Unless ``only_matching_chunks``, each matching chunk
brings the chunk before and after it as context (``relevant`` false, score 0).
"""

from __future__ import annotations

import attrs
from attrs import define, frozen

from memoryd.core.documents import DocumentService
from memoryd.core.model import Caller, Conversation, Memory, ScoredMemory
from memoryd.core.retrieval import SearchRequest, SearchService
from memoryd.core.screening import screen_results

#: The most memories one document search looks at (the memory search's own limit).
POOL = 100


@frozen
class DocumentSearchRequest:
    #: The memory search: its ``threshold`` is the chunk threshold; its ``limit`` is ignored
    #: (up to :data:`POOL` memories are looked at).
    search: SearchRequest
    #: How many documents to return.
    limit: int = 10
    document_threshold: float = 0.0
    #: Only chunks of this document (its id or customId).
    doc_id: str | None = None
    only_matching_chunks: bool = False


@frozen
class Chunk:
    content: str
    #: The chunk's place among its document's memories, from 0.
    position: int
    score: float
    relevant: bool


@frozen
class DocumentHit:
    document: Conversation
    score: float
    chunks: tuple[Chunk, ...]


@define
class DocumentSearch:
    search: SearchService
    documents: DocumentService

    async def run(self, caller: Caller, request: DocumentSearchRequest) -> list[DocumentHit]:
        only: Conversation | None = None
        if request.doc_id is not None:
            only = await self.documents.get(caller, request.doc_id)
        pool = await self.search.search(caller, _with_limit(request.search, POOL))
        groups: dict[tuple[str, tuple[str, ...]], list[ScoredMemory]] = {}
        for found in pool:
            m = found.memory
            if only is not None and (m.conversation_id, m.scope) != (
                only.conversation_id,
                only.scope,
            ):
                continue
            groups.setdefault((m.conversation_id, m.scope), []).append(found)
        hits: list[DocumentHit] = []
        for (conversation_id, scope), matched in groups.items():
            best = max(r.similarity for r in matched)
            if best < request.document_threshold:
                continue
            document = await self.documents.store.get_conversation(
                caller.tenant_id, conversation_id, scope=scope
            )
            if document is None:
                continue  # deleted since the search
            memories = await self.documents.memories(caller, document)
            chunks = _chunks(memories, matched, context=not request.only_matching_chunks)
            hits.append(
                DocumentHit(
                    document=document,
                    score=round(best, 6),
                    chunks=await self._screened(chunks, memories),
                )
            )
            if len(hits) == request.limit:
                break
        return hits

    async def _screened(
        self, chunks: tuple[Chunk, ...], memories: list[Memory]
    ) -> tuple[Chunk, ...]:
        """Context chunks pass the search's result filters too (redacted, or left out)."""
        kept: list[Chunk] = []
        for chunk in chunks:
            if chunk.relevant or not self.search.filters:
                kept.append(chunk)
                continue
            memory = memories[chunk.position]
            passed = await screen_results(self.search.filters, [ScoredMemory(memory, 0.0, 0.0)], 1)
            if passed:
                kept.append(attrs.evolve(chunk, content=passed[0].memory.text))
        return tuple(kept)


def _with_limit(request: SearchRequest, limit: int) -> SearchRequest:
    return SearchRequest(
        q=request.q,
        container_tags=request.container_tags,
        limit=limit,
        threshold=request.threshold,
        conditions=request.conditions,
        after=request.after,
        before=request.before,
        rerank=request.rerank,
    )


def _chunks(
    memories: list[Memory], matched: list[ScoredMemory], *, context: bool
) -> tuple[Chunk, ...]:
    place = {m.id: i for i, m in enumerate(memories)}
    scores = {r.memory.id: r.similarity for r in matched}
    chosen: dict[int, Chunk] = {}
    for r in matched:
        i = place.get(r.memory.id)
        if i is None:
            continue
        chosen[i] = Chunk(r.memory.text, i, round(r.similarity, 6), relevant=True)
    if context:
        for i in list(chosen):
            for j in (i - 1, i + 1):
                if 0 <= j < len(memories) and j not in chosen and memories[j].id not in scores:
                    chosen[j] = Chunk(memories[j].text, j, 0.0, relevant=False)
    return tuple(chosen[i] for i in sorted(chosen))
