"""The chat's context rule on fixed vectors, through the real SearchService and ChatService.

Each memory gets a hand-made unit vector whose cosine with the query vector
is exactly the similarity the test names, so the rule's four steps (the 0.4
threshold, 5 unique documents, min-max normalisation, above 0.6 or the top
3) are checked on known numbers, end to end: index -> search -> rule ->
prompt -> annotations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from attrs import define

from memoryd.core.chat import Annotations, ChatPolicy, ChatRequest, ChatService
from memoryd.core.model import Caller, Memory, Message
from memoryd.core.ports import IndexChange, IndexedMemory
from memoryd.core.prompt import gather_context
from memoryd.core.retrieval import ContextRule, FusionSettings, SearchRequest, SearchService
from memoryd.testing import FixedClock, InMemoryIndex, InMemoryStore, ScriptedChatModel, WordCounter

QUERY = np.array([1.0, 0.0], dtype=np.float32)
TENANT = "t1"


@define
class FixedEmbedder:
    """Every query is the unit vector (1, 0)."""

    @property
    def model_name(self) -> str:
        return "fixed"

    @property
    def dimension(self) -> int:
        return 2

    async def embed_documents(self, texts: Sequence[str]) -> Any:
        raise AssertionError("the test adds vectors itself")

    async def embed_query(self, text: str) -> Any:
        return QUERY


def at(similarity: float) -> Any:
    """The unit vector whose cosine with QUERY is ``similarity``."""
    return np.array([similarity, math.sqrt(1 - similarity**2)], dtype=np.float32)


async def index_of(*memories: tuple[str, str, float]) -> InMemoryIndex:
    """An index holding (memory id, conversation id, similarity to the query) triples."""
    index = InMemoryIndex()
    for memory_id, conversation, similarity in memories:
        memory = Memory(
            id=memory_id,
            tenant_id=TENANT,
            conversation_id=conversation,
            text=f"memory {memory_id}",
            speaker="user",
            positions=(0,),
            said_at=datetime(2024, 1, 1, tzinfo=UTC),
            metadata={"url": f"https://notes.example/{conversation}"}
            if conversation == "A"
            else {},
        )
        await index.apply(
            IndexChange(
                tenant_id=TENANT,
                conversation_id=conversation,
                added=(IndexedMemory(memory=memory, vectors=at(similarity)[None, :]),),
            )
        )
    return index


def chat_over(index: InMemoryIndex, **policy: Any) -> tuple[ChatService, ScriptedChatModel]:
    model = ScriptedChatModel(chunks=("ok",))
    search = SearchService(
        index=index, embedder=FixedEmbedder(), fusion=FusionSettings(keyword_weight=0.0)
    )
    chat = ChatService(
        search=search,
        threads=InMemoryStore(),
        model=model,
        tokens=WordCounter(),
        clock=FixedClock(),
        policy=ChatPolicy(**policy),
    )
    return chat, model


async def cited(index: InMemoryIndex, **policy: Any) -> list[tuple[str, float]]:
    """(best memory id, similarity) of each annotation of an answer, in order."""
    chat, _ = chat_over(index, **policy)
    reply = await chat.start(
        Caller(tenant_id=TENANT, key_id="k"),
        ChatRequest(messages=(Message.from_text("user", "anything"),)),
    )
    events = [e async for e in reply.events()]
    annotations = next(e for e in events if isinstance(e, Annotations))
    assert annotations.items == reply.annotations
    return [(a.id, round(a.similarity, 4)) for a in annotations.items]


async def test_only_similarities_above_the_threshold_count() -> None:
    # (The vectors are float32, so a cosine of exactly 0.4 cannot be made here;
    # test_retrieval checks the strict ">" on exact numbers.)
    index = await index_of(("a", "A", 0.9), ("b", "B", 0.41), ("c", "C", 0.39), ("d", "D", 0.2))
    assert await cited(index) == [("a", 0.9), ("b", 0.41)]
    stricter = ContextRule(min_similarity=0.5)
    assert await cited(index, rule=stricter) == [("a", 0.9)]


async def test_at_most_five_unique_documents() -> None:
    index = await index_of(
        ("a1", "A", 0.95),
        ("a2", "A", 0.94),
        ("b", "B", 0.93),
        ("c", "C", 0.92),
        ("d", "D", 0.91),
        ("e", "E", 0.90),
        ("f", "F", 0.89),
    )
    # Normalised over the five documents: 1.0, 0.8, 0.6, 0.4, 0.2 (with a1 once).
    keep_all = ContextRule(min_normalised=-1.0)
    ids = [memory_id for memory_id, _ in await cited(index, rule=keep_all)]
    assert ids == ["a1", "b", "c", "d", "e"]
    assert [i for i, _ in await cited(index, rule=ContextRule(max_documents=2))] == ["a1", "b"]


async def test_scores_are_min_max_normalised() -> None:
    index = await index_of(("a", "A", 0.9), ("b", "B", 0.7), ("c", "C", 0.5))
    search = SearchService(
        index=index, embedder=FixedEmbedder(), fusion=FusionSettings(keyword_weight=0.0)
    )
    results = await search.search(
        Caller(tenant_id=TENANT, key_id="k"), SearchRequest(q="anything", threshold=0.4)
    )
    chosen = gather_context(results, ContextRule(min_normalised=-1.0))
    assert [round(r.score, 4) for r in chosen] == [1.0, 0.5, 0.0]
    assert [round(r.similarity, 4) for r in chosen] == [0.9, 0.7, 0.5]


async def test_above_the_cut_or_at_least_the_top_three() -> None:
    # Normalised: 1.0, 0.95, 0.9, 0.05, 0.0: three pass 0.6.
    many = await index_of(
        ("a", "A", 0.90), ("b", "B", 0.89), ("c", "C", 0.88), ("d", "D", 0.71), ("e", "E", 0.70)
    )
    assert [i for i, _ in await cited(many)] == ["a", "b", "c"]
    # Normalised: 1.0, 0.1, 0.05, 0.0: only one passes, so the top three stay.
    few = await index_of(("a", "A", 0.9), ("b", "B", 0.52), ("c", "C", 0.51), ("d", "D", 0.5))
    assert [i for i, _ in await cited(few)] == ["a", "b", "c"]
    # Four pass: all four stay.
    four = await index_of(
        ("a", "A", 0.9), ("b", "B", 0.89), ("c", "C", 0.88), ("d", "D", 0.87), ("e", "E", 0.5)
    )
    assert [i for i, _ in await cited(four)] == ["a", "b", "c", "d"]


async def test_a_document_brings_up_to_three_of_its_memories_and_is_cited_once() -> None:
    index = await index_of(
        ("a1", "A", 0.95),
        ("a2", "A", 0.80),
        ("a3", "A", 0.75),
        ("a4", "A", 0.70),
        ("a5", "A", 0.30),
        ("b", "B", 0.85),
    )
    chat, model = chat_over(index, rule=ContextRule(min_keep=2))
    reply = await chat.start(
        Caller(tenant_id=TENANT, key_id="k"),
        ChatRequest(messages=(Message.from_text("user", "anything"),)),
    )
    assert [m.memory.id for m in reply.prompt.memories] == ["a1", "b", "a2", "a3"]
    [first, second] = reply.annotations
    assert (first.id, first.title, first.url) == ("a1", "A", "https://notes.example/A")
    assert first.content.splitlines() == [
        "[1 January 2024] user: memory a1",
        "[1 January 2024] user: memory a2",
        "[1 January 2024] user: memory a3",
    ]
    assert (second.id, second.content, second.url) == ("b", "[1 January 2024] user: memory b", "")
    [_ async for _ in reply.events()]
    assert "- [1 January 2024] user: memory a3" in model.prompts[-1][0].content
    assert "memory a4" not in model.prompts[-1][0].content
    only_best = ChatPolicy(memories_per_document=1, rule=ContextRule(min_keep=2))
    assert [
        m.memory.id
        for m in gather_context(
            await chat.search.search(
                Caller(tenant_id=TENANT, key_id="k"), SearchRequest(q="x", threshold=0.4)
            ),
            only_best.rule,
            per_document=only_best.memories_per_document,
        )
    ] == ["a1", "b"]


@pytest.mark.parametrize("similarity", [0.399, 0.1, -0.3])
async def test_nothing_relevant_means_no_annotations(similarity: float) -> None:
    index = await index_of(("a", "A", similarity))
    assert await cited(index) == []
