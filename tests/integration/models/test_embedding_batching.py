"""Continuous batching off the event loop, with the real MiniLM model underneath."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence

import attrs
import numpy as np
import pytest

from memoryd.adapters.embedding import BatchingEmbedder, MiniLMEncoder
from memoryd.adapters.embedding._vectors import FloatMatrix
from memoryd.core.errors import ModelUnavailable


@attrs.define
class RecordingModel:
    """The real model, recording each call it gets (and failing on texts that say "boom")."""

    inner: MiniLMEncoder
    calls: list[tuple[bool, int]] = attrs.field(factory=list)
    threads: set[str] = attrs.field(factory=set)

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def load(self) -> None:
        self.inner.load()

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        self.calls.append((query, len(texts)))
        self.threads.add(threading.current_thread().name)
        if any("boom" in t for t in texts):
            raise RuntimeError("the model exploded")
        return self.inner.encode(texts, query=query)


@pytest.fixture
def model(minilm: MiniLMEncoder) -> RecordingModel:
    return RecordingModel(minilm)


@pytest.fixture
async def embedder(model: RecordingModel) -> AsyncIterator[BatchingEmbedder]:
    batching = BatchingEmbedder(model, max_batch=64)
    yield batching
    await batching.aclose()


def texts(n: int) -> list[str]:
    topics = ["cooking", "football", "tax returns", "gardening", "jazz", "rust compilers"]
    return [f"note {i}: something about {topics[i % 6]} " * (1 + i % 4) for i in range(n)]


async def test_concurrent_queries_during_a_big_batch_get_their_own_rows(
    embedder: BatchingEmbedder, model: RecordingModel, minilm: MiniLMEncoder
) -> None:
    docs = texts(200)
    questions = [f"question {i} about {docs[i * 3][8:30]}" for i in range(50)]
    expected_docs = minilm.encode(docs, query=False)
    expected_queries = minilm.encode(questions, query=True)

    big = asyncio.create_task(embedder.embed_documents(docs))
    await asyncio.sleep(0)  # the big batch is queued first
    answers = await asyncio.gather(*(embedder.embed_query(q) for q in questions))
    rows = await big

    assert rows.shape == (200, 384)
    assert np.allclose(rows, expected_docs, atol=1e-4)
    for answer, expected in zip(answers, expected_queries, strict=True):
        assert answer.shape == (384,)
        assert np.allclose(answer, expected, atol=1e-4)
    # The 50 queries were coalesced into few model calls, none bigger than max_batch,
    # all on the one worker thread.
    query_calls = [n for is_query, n in model.calls if is_query]
    assert sum(query_calls) == 50
    assert len(query_calls) < 50
    assert max(n for _, n in model.calls) <= 64
    assert sum(n for is_query, n in model.calls if not is_query) == 200
    assert len(model.threads) == 1
    assert next(iter(model.threads)).startswith("memoryd-embed")


async def test_the_event_loop_keeps_running_during_inference(
    embedder: BatchingEmbedder,
) -> None:
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await embedder.embed_documents(texts(256))
    during = ticks - before
    done.set()
    await ticking
    # Blocking inference on the loop would have allowed no tick at all while it ran.
    assert during >= 3


async def test_cancelling_one_caller_leaves_the_others_alone(
    embedder: BatchingEmbedder, minilm: MiniLMEncoder
) -> None:
    big = asyncio.create_task(embedder.embed_documents(texts(128)))
    await asyncio.sleep(0)
    questions = [f"where is item {i}?" for i in range(10)]
    calls = [asyncio.create_task(embedder.embed_query(q)) for q in questions]
    await asyncio.sleep(0)
    for cancelled in calls[::3]:
        cancelled.cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    expected = minilm.encode(questions, query=True)
    for i, result in enumerate(results):
        if i % 3 == 0:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert isinstance(result, np.ndarray)
            assert np.allclose(result, expected[i], atol=1e-4)
    assert (await big).shape == (128, 384)
    # Cancelling the big caller mid-way does not break the embedder either.
    big_again = asyncio.create_task(embedder.embed_documents(texts(300)))
    await asyncio.sleep(0.01)
    big_again.cancel()
    with pytest.raises(asyncio.CancelledError):
        await big_again
    assert (await embedder.embed_query("still there?")).shape == (384,)


async def test_a_model_error_reaches_its_callers_and_the_worker_carries_on(
    embedder: BatchingEmbedder,
) -> None:
    with pytest.raises(RuntimeError, match="exploded"):
        await embedder.embed_documents(["fine", "boom"])
    assert (await embedder.embed_documents(["fine again"])).shape == (1, 384)


async def test_long_document_lists_are_split_into_max_batch_calls(
    model: RecordingModel,
) -> None:
    embedder = BatchingEmbedder(model, max_batch=16)
    try:
        rows = await embedder.embed_documents(texts(50))
    finally:
        await embedder.aclose()
    assert rows.shape == (50, 384)
    assert [n for _, n in model.calls] == [16, 16, 16, 2]


async def test_closed_embedders_refuse_new_work(model: RecordingModel) -> None:
    embedder = BatchingEmbedder(model)
    pending = asyncio.create_task(embedder.embed_query("queued before close"))
    await asyncio.sleep(0)
    await embedder.aclose()
    assert (await pending).shape == (384,)  # work already queued is finished
    with pytest.raises(ModelUnavailable, match="shutting down"):
        await embedder.embed_query("too late")


def test_max_batch_must_be_positive(model: RecordingModel) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        BatchingEmbedder(model, max_batch=0)


@attrs.define
class SlowFakeModel:
    """A test double of the ``EncoderModel`` interface: records calls, takes ``seconds`` each."""

    seconds: float = 0.002
    dimension: int = 8
    model_name: str = "fake"
    calls: list[tuple[bool, tuple[str, ...]]] = attrs.field(factory=list)

    def load(self) -> None:
        pass

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        self.calls.append((query, tuple(texts)))
        time.sleep(self.seconds)
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            rows[i, hash(text) % self.dimension] = 1.0
        return rows


def doc_texts(prefix: str, n: int) -> list[str]:
    return [f"{prefix} document {i}" for i in range(n)]


async def test_a_query_queued_behind_many_document_pieces_runs_next() -> None:
    model = SlowFakeModel()
    embedder = BatchingEmbedder(model, max_batch=64)
    try:
        await embedder.embed_query("a search first: searches are coming in")
        big = asyncio.create_task(embedder.embed_documents(doc_texts("big", 1000)))
        await asyncio.sleep(0.02)  # a few document calls have run, many wait
        ran_before = len(model.calls)
        answer = await embedder.embed_query("the query behind them")
        rows = await big
    finally:
        await embedder.aclose()
    assert answer.shape == (8,)
    assert rows.shape == (1000, 8)
    query_call = next(
        i for i, (query, texts) in enumerate(model.calls) if texts == ("the query behind them",)
    )
    assert model.calls[query_call][0] is True
    # At most the one document call that was running when it came went before it.
    assert query_call <= ran_before + 1
    # While searching, a document call embeds one text: a query waits for one, not 64.
    document_calls = [texts for query, texts in model.calls if not query]
    assert {len(t) for t in document_calls[:query_call]} == {1}
    # Every document text was embedded once, in order of its rows.
    assert [t for texts in document_calls for t in texts] == doc_texts("big", 1000)
    assert np.array_equal(
        rows, np.concatenate([model.encode([t], query=False) for t in doc_texts("big", 1000)])
    )


async def test_document_jobs_take_turns_so_a_small_ingest_is_not_stuck_behind_a_huge_one() -> None:
    model = SlowFakeModel()
    embedder = BatchingEmbedder(model, max_batch=16)
    try:
        huge = asyncio.create_task(embedder.embed_documents(doc_texts("huge", 800)))
        await asyncio.sleep(0.01)
        small = asyncio.create_task(embedder.embed_documents(doc_texts("small", 10)))
        await small
        calls_when_small_done = len(model.calls)
        assert not huge.done()
        await huge
    finally:
        await embedder.aclose()
    # The small job finished within a few calls of arriving, not after the 50 of the huge one.
    assert calls_when_small_done < 15
    # With nobody searching, calls are full batches packed from both jobs.
    mixed = [texts for _, texts in model.calls if any(t.startswith("small") for t in texts)]
    assert all(len(texts) == 16 for texts in mixed)
    assert any(t.startswith("huge") for texts in mixed for t in texts)
