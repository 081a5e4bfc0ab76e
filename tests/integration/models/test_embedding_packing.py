"""Documents of concurrent callers are packed into full model calls."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import attrs
import numpy as np

from memoryd.adapters.embedding import BatchingEmbedder
from memoryd.adapters.embedding._vectors import FloatMatrix, l2_normalise


@attrs.define
class CountingModel:
    """A deterministic stand-in for a model: each text's vector is its hash's random draw."""

    calls: list[int] = attrs.field(factory=list)

    @property
    def model_name(self) -> str:
        return "counting"

    @property
    def dimension(self) -> int:
        return 8

    def load(self) -> None:
        return None

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        self.calls.append(len(texts))
        rows = [
            np.random.default_rng(abs(hash((t, query))) % 2**32).standard_normal(8) for t in texts
        ]
        return l2_normalise(np.asarray(rows, np.float32))


async def test_concurrent_conversations_share_full_calls() -> None:
    model = CountingModel()
    embedder = BatchingEmbedder(model, max_batch=64)
    try:
        conversations = [[f"c{c} message {i}" for i in range(35)] for c in range(6)]
        results = await asyncio.gather(*(embedder.embed_documents(c) for c in conversations))
    finally:
        await embedder.aclose()
    # 210 texts: whole conversations (35 each) would take six calls of 35;
    # pieces of 16 (16 + 16 + 3 per conversation) pack into fuller calls.
    assert sum(model.calls) == 210
    assert max(model.calls) <= 64
    assert len(model.calls) <= 4
    assert model.calls[:-1] == [64] * (len(model.calls) - 1)  # full calls; the rest last
    for texts, rows in zip(conversations, results, strict=True):
        assert rows.shape == (35, 8)
        assert np.allclose(rows, model.encode(texts, query=False))


async def test_a_lone_conversation_is_one_call() -> None:
    model = CountingModel()
    embedder = BatchingEmbedder(model, max_batch=64)
    try:
        rows = await embedder.embed_documents([f"message {i}" for i in range(40)])
    finally:
        await embedder.aclose()
    assert rows.shape == (40, 8)
    assert model.calls == [40]
