"""Queries on a lane of their own: they never wait for document work (issue 12).

A model that says ``concurrent_queries`` (MiniLM does) gets two threads from
:class:`BatchingEmbedder`: queries on one, document calls on the other, which
runs at a lower OS priority. The fake model below lets a test hold a document
call for as long as it likes, so that "the query came back first" is a fact
about order, never about timing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Sequence

import attrs
import numpy as np
import pytest

from memoryd.adapters.embedding import BatchingEmbedder, MiniLMEncoder
from memoryd.adapters.embedding._batching import DOCUMENT_NICE
from memoryd.adapters.embedding._vectors import FloatMatrix

#: Bounds every wait on a held call: a broken embedder fails the test instead of hanging it.
BOUND_S = 30.0


@attrs.define
class HeldModel:
    """A fake ``EncoderModel`` whose document calls wait until the test opens ``gate``.

    It records every call: the kind, the texts, the thread's name and niceness.
    """

    concurrent: bool = True
    dimension: int = 8
    model_name: str = "held"
    gate: threading.Event = attrs.field(factory=threading.Event)
    #: Set when a document call has started (and is held at the gate).
    holding: threading.Event = attrs.field(factory=threading.Event)
    calls: list[tuple[bool, tuple[str, ...], str, int]] = attrs.field(factory=list)
    loaded_on: list[tuple[str, int]] = attrs.field(factory=list)
    fail_queries: bool = False

    @property
    def concurrent_queries(self) -> bool:
        return self.concurrent

    def load(self) -> None:
        self.loaded_on.append((threading.current_thread().name, _niceness()))

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        self.calls.append((query, tuple(texts), threading.current_thread().name, _niceness()))
        if not query:
            self.holding.set()
            if not self.gate.wait(BOUND_S):
                raise RuntimeError("the test never opened the gate")
        elif self.fail_queries:
            raise RuntimeError("the query side exploded")
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            rows[i, sum(map(ord, text)) % self.dimension] = 1.0
        return rows


def _niceness() -> int:
    if sys.platform != "linux":
        return 0
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def docs(prefix: str, n: int) -> list[str]:
    return [f"{prefix} document {i}" for i in range(n)]


async def _until(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, BOUND_S), "the model call never started"


async def test_a_query_after_many_queued_document_batches_is_answered_before_any_of_them() -> None:
    model = HeldModel()
    embedder = BatchingEmbedder(model, max_batch=64)
    try:
        # Ten ingests of 640 texts each: 100 full document calls queued, the first one held.
        jobs = [
            asyncio.create_task(embedder.embed_documents(docs(f"j{j}", 640))) for j in range(10)
        ]
        await _until(model.holding)
        # No search for a while before it: the document call it arrives during is a full one.
        query = asyncio.create_task(embedder.embed_query("the search behind them"))
        done, _ = await asyncio.wait([query], timeout=BOUND_S)
        answered_while_held = query in done
        still_waiting = sum(not job.done() for job in jobs)
        model.gate.set()
        rows = await asyncio.gather(*jobs)
        answer = await query
    finally:
        model.gate.set()
        await embedder.aclose()
    assert answered_while_held  # it did not wait for the document call that was running
    assert still_waiting == 10  # nor for any queued one: every ingest was still waiting
    assert answer.shape == (8,)
    assert all(r.shape == (640, 8) for r in rows)
    document_calls = [texts for is_query, texts, _, _ in model.calls if not is_query]
    assert len(document_calls[0]) == 64  # the held call was a full batch
    assert sum(len(t) for t in document_calls) == 6400


async def test_documents_keep_full_batches_while_searches_come_in() -> None:
    model = HeldModel()
    model.gate.set()
    embedder = BatchingEmbedder(model, max_batch=32)
    try:
        big = asyncio.create_task(embedder.embed_documents(docs("big", 320)))
        answers = []
        while not big.done():
            answers.append(await embedder.embed_query(f"search {len(answers)}"))
            if len(answers) >= 50:
                break
        rows = await big
    finally:
        await embedder.aclose()
    assert rows.shape == (320, 8)
    assert answers
    # Searching does not shrink the document calls (the one-lane mode embeds one text
    # a call while searches come in): the ingest keeps its rate.
    sizes = [len(texts) for is_query, texts, _, _ in model.calls if not is_query]
    assert sizes == [32] * 10
    # Every row is its own text's.
    expected = np.concatenate([model.encode([t], query=False) for t in docs("big", 320)])
    assert np.array_equal(rows, expected)


async def test_the_lanes_are_two_threads_and_the_document_one_yields_the_cpu() -> None:
    model = HeldModel()
    model.gate.set()
    embedder = BatchingEmbedder(model)
    try:
        await asyncio.to_thread(embedder.load)
        await embedder.embed_documents(docs("a", 3))
        await embedder.embed_query("a question")
    finally:
        await embedder.aclose()
    threads = {(is_query, name) for is_query, _, name, _ in model.calls}
    query_threads = {name for is_query, name in threads if is_query}
    document_threads = {name for is_query, name in threads if not is_query}
    assert len(query_threads) == len(document_threads) == 1
    assert next(iter(query_threads)).startswith("memoryd-embed-queries")
    assert next(iter(document_threads)).startswith("memoryd-embed-documents")
    # The model loads on the document thread, so the threads it starts inherit its priority.
    assert len(model.loaded_on) == 1
    assert model.loaded_on[0][0].startswith("memoryd-embed-documents")
    if sys.platform == "linux":
        query_nice = {nice for is_query, _, _, nice in model.calls if is_query}
        document_nice = {nice for is_query, _, _, nice in model.calls if not is_query}
        (q,) = query_nice
        (d,) = document_nice
        assert d == min(19, q + DOCUMENT_NICE)
        assert model.loaded_on[0][1] == d


async def test_the_first_query_loads_the_model_on_the_document_thread() -> None:
    model = HeldModel()
    embedder = BatchingEmbedder(model)
    try:
        await asyncio.gather(*(embedder.embed_query(f"q{i}") for i in range(5)))
    finally:
        await embedder.aclose()
    assert len(model.loaded_on) == 1
    assert model.loaded_on[0][0].startswith("memoryd-embed-documents")
    assert all(name.startswith("memoryd-embed-queries") for _, _, name, _ in model.calls)


async def test_a_query_error_reaches_its_caller_and_documents_carry_on() -> None:
    model = HeldModel(fail_queries=True)
    model.gate.set()
    embedder = BatchingEmbedder(model)
    try:
        with pytest.raises(RuntimeError, match="query side exploded"):
            await embedder.embed_query("boom")
        assert (await embedder.embed_documents(docs("after", 2))).shape == (2, 8)
        model.fail_queries = False
        assert (await embedder.embed_query("fine now")).shape == (8,)
    finally:
        await embedder.aclose()


async def test_closing_finishes_what_both_lanes_hold() -> None:
    model = HeldModel()
    embedder = BatchingEmbedder(model, max_batch=4)
    job = asyncio.create_task(embedder.embed_documents(docs("late", 10)))
    await _until(model.holding)
    query = asyncio.create_task(embedder.embed_query("queued before close"))
    await asyncio.sleep(0)
    closing = asyncio.create_task(embedder.aclose())
    await asyncio.sleep(0)
    model.gate.set()
    await closing
    assert (await job).shape == (10, 8)
    assert (await query).shape == (8,)


async def test_a_model_that_cannot_take_two_threads_keeps_one_lane() -> None:
    # llama.cpp (the gguf embedder) must not be called from two threads at once.
    model = HeldModel(concurrent=False)
    model.gate.set()
    embedder = BatchingEmbedder(model)
    try:
        await embedder.embed_documents(docs("one", 5))
        await embedder.embed_query("one thread")
    finally:
        await embedder.aclose()
    names = {name for _, _, name, _ in model.calls}
    assert len(names) == 1
    assert next(iter(names)).startswith("memoryd-embed_")
    nices = {nice for _, _, _, nice in model.calls}
    assert nices == {_niceness()}  # nothing lowered: its queries share that thread


@attrs.define
class Concurrent:
    """The real MiniLM, recording which thread each call ran on."""

    inner: MiniLMEncoder
    calls: list[tuple[bool, str]] = attrs.field(factory=list)

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def concurrent_queries(self) -> bool:
        return self.inner.concurrent_queries

    def load(self) -> None:
        self.inner.load()

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        self.calls.append((query, threading.current_thread().name))
        return self.inner.encode(texts, query=query)


async def test_minilm_on_two_lanes_gives_the_vectors_it_gives_alone(minilm: MiniLMEncoder) -> None:
    assert minilm.concurrent_queries
    topics = ["cooking", "football", "tax returns", "gardening", "jazz", "rust compilers"]
    texts = [f"note {i}: about {topics[i % 6]} " * (1 + i % 5) for i in range(300)]
    questions = [f"what about {topics[i % 6]} number {i}?" for i in range(40)]
    expected_docs = minilm.encode(texts, query=False)
    expected_queries = minilm.encode(questions, query=True)
    model = Concurrent(minilm)
    embedder = BatchingEmbedder(model)
    try:
        big = asyncio.create_task(embedder.embed_documents(texts))
        answers = []
        for q in questions:  # one at a time, while the documents run beside them
            answers.append(await embedder.embed_query(q))
        rows = await big
    finally:
        await embedder.aclose()
    assert np.allclose(rows, expected_docs, atol=1e-4)
    for answer, expected in zip(answers, expected_queries, strict=True):
        assert np.allclose(answer, expected, atol=1e-4)
    assert {name.rsplit("_", 1)[0] for q, name in model.calls if q} == {"memoryd-embed-queries"}
    assert {name.rsplit("_", 1)[0] for q, name in model.calls if not q} == {
        "memoryd-embed-documents"
    }
