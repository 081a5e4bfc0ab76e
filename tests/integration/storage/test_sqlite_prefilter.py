"""The dense side's prefilters: sign bits (weighted Hamming) and int8, then exact rescoring."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from memoryd.adapters.storage.sqlite import ScanTuning, open_sqlite
from memoryd.adapters.storage.sqlite._scan import (
    HAS_POPCOUNT,
    hamming,
    nearest_by_distance,
    query_bits,
    sign_bits,
)
from memoryd.adapters.storage.sqlite._tenant import TenantIndex
from tests.integration.storage.sqlite_helpers import DIM, MODEL
from tests.integration.storage.test_sqlite_index import check_against_brute_force

needs_popcount = pytest.mark.skipif(not HAS_POPCOUNT, reason="numpy < 2 has no bitwise_count")

# Small tenants take the prefilter paths when the thresholds are lowered. With
# coarse_min above the tenant's size the bits shortlist holds every row, so the
# results must equal brute force exactly.
TUNINGS = {
    "bits": ScanTuning(quantise_from=50, bits_from=20, coarse_min=10_000),
    "int8": ScanTuning(prefilter="int8", quantise_from=50, exact_below=20, rescore=40),
}


@pytest.mark.parametrize("prefilter", sorted(TUNINGS))
async def test_prefiltered_search_equals_brute_force(db_path: Path, prefilter: str) -> None:
    if prefilter == "bits" and not HAS_POPCOUNT:
        pytest.skip("numpy < 2 has no bitwise_count")
    tuning = TUNINGS[prefilter]
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM, tuning=tuning)
    try:
        await check_against_brute_force(backend, seed=21, rounds=100, every=4, after=40)
    finally:
        await backend.close()


def _clustered(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around 200 centroids with a shared direction, like sentence embeddings."""
    shared = rng.standard_normal(dim).astype(np.float32)
    centroids = rng.standard_normal((200, dim)).astype(np.float32)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * 0.6
    x = 0.5 * shared + centroids[rng.integers(0, 200, n)] + noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@needs_popcount
def test_bits_shortlist_keeps_the_exact_top_ten() -> None:
    """A shortlist of 1.5% of 40k rows, scored exactly, finds (nearly all of) the exact top 10."""
    rng = np.random.default_rng(31)
    n, dim = 40_000, 128
    data = _clustered(n, dim, rng)
    tenant = TenantIndex(
        dim,
        capacity=n,
        tuning=ScanTuning(quantise_from=1000, rescore=100, bits_from=1000, coarse_min=100),
    )
    group = tenant.groups.acquire((), {}, count=n)
    tenant.load(
        [f"m{i}" for i in range(n)],
        rowids=range(1, n + 1),
        conversation_ids=["c"] * n,
        vectors=data.tobytes(),
        said_at_us=[0] * n,
        groups=[group] * n,
    )
    tenant.quantise_if_large()
    assert tenant.bits is not None
    queries = (
        data[rng.integers(0, n, 40)] + rng.standard_normal((40, dim)).astype(np.float32) * 0.02
    )
    found = 0
    with ThreadPoolExecutor(1) as helper:
        for raw in queries:
            q = (raw / np.linalg.norm(raw)).astype(np.float32)
            truth = set(np.argsort(-(data @ q))[:10].tolist())
            slots, scores = tenant.dense(q, 10, None, helper)
            found += len(truth & set(slots))
            assert scores == sorted(scores, reverse=True)
    assert found / 400 >= 0.97


@needs_popcount
@pytest.mark.parametrize("with_idx", [False, True])
@pytest.mark.parametrize("with_helper", [False, True])
def test_weighted_hamming_counts_disagreements(with_idx: bool, with_helper: bool) -> None:
    rng = np.random.default_rng(41)
    n, dim = 300_000, 96
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    bits = np.ascontiguousarray(sign_bits(vectors).T)
    q = rng.standard_normal(dim).astype(np.float32)
    idx = np.sort(rng.choice(n, 150_000, replace=False)) if with_idx else None
    with ThreadPoolExecutor(1) as pool:
        got = hamming(bits, query_bits(q), rows=n, idx=idx, helper=pool if with_helper else None)
    rows = vectors if idx is None else vectors[idx]
    differ = (rows > 0) != (q > 0)
    large = np.abs(q) >= np.median(np.abs(q))
    want = differ.sum(axis=1) + (differ & large).sum(axis=1)
    assert got.tolist() == want.tolist()


def test_nearest_by_distance_keeps_every_row_up_to_the_kth() -> None:
    rng = np.random.default_rng(51)
    distances = rng.integers(0, 60, 5000).astype(np.uint16)
    for k in (1, 10, 100, 4999):
        kept = nearest_by_distance(distances, k)
        kth = np.sort(distances)[k - 1]
        assert set(kept.tolist()) == set(np.flatnonzero(distances <= kth).tolist())
        assert len(kept) >= k
    assert len(nearest_by_distance(distances, 10_000)) == 5000
