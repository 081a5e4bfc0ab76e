"""The Elasticsearch memory document's piece vectors: short decimals, the same float32s.

A ``dense_vector`` stores float32: the document carries each value as the
shortest decimal that reads back as that float32, not the float32 widened to
a double (``0.012345678918766975``), so the ``_source`` a cluster stores and
scans is ~40% smaller and what it indexes is unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from memoryd.adapters.storage.elasticsearch import _codec as codec
from memoryd.core.model import Memory
from memoryd.core.ports import IndexedMemory


def _rows(seed: int, n: int = 200, dim: int = 384) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_value_reads_back_as_the_same_float32(seed: int) -> None:
    rows = _rows(seed)
    rows[0, :8] = [0.0, -0.0, 1.0, -1.0, 1e-30, 1e-45, 3.4e38, 0.1]
    for row in rows:
        values = codec.short_floats(row)
        # As JSON, then parsed as a double and narrowed (how a client or a cluster reads it).
        back = np.asarray(json.loads(json.dumps(values)), dtype=np.float64).astype(np.float32)
        assert np.array_equal(back, row)
        assert all(type(v) is float for v in values)


def test_the_decimals_are_at_most_nine_significant_digits() -> None:
    for value in codec.short_floats(_rows(5)[0]):
        digits = repr(value).lstrip("-").replace(".", "").split("e")[0].lstrip("0")
        assert len(digits) <= 9, value


def test_the_index_document_carries_the_short_decimals() -> None:
    rows = _rows(7, n=2)
    memory = Memory(id="m1", tenant_id="t", conversation_id="c", text="words",
                    positions=(0,), said_at=datetime(2024, 1, 1, tzinfo=UTC))  # fmt: skip
    doc = codec.index_doc(
        IndexedMemory(memory, rows), tags=(), metadata={}, scope=(), dimension=384
    )
    pieces = [p["vector"] for p in doc["pieces"]]
    assert np.array_equal(np.asarray(pieces, np.float64).astype(np.float32), rows)
    widened = json.dumps([[float(x) for x in row] for row in rows])
    assert len(json.dumps(pieces)) < 0.7 * len(widened)
    # The exact vectors the search rescores with are untouched.
    assert np.array_equal(codec.index_vectors(doc), rows)
