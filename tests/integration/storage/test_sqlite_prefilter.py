"""The dense side's prefilters: sign bits (weighted Hamming) and int8, then exact rescoring."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from memoryd.adapters.storage.sqlite import ScanTuning, open_sqlite
from memoryd.adapters.storage.sqlite._rowids import DENSE_UP_TO, SlotsByRowid
from memoryd.adapters.storage.sqlite._scan import (
    HAS_POPCOUNT,
    hamming,
    nearest_by_distance,
    query_bits,
    sign_bits,
)
from memoryd.adapters.storage.sqlite._tenant import TenantIndex
from memoryd.core.filters import MemoryFilter
from memoryd.core.ports import IndexChange, IndexQuery
from memoryd.testing.contract import assert_same_top, brute_force, random_filter, random_memories
from tests.integration.storage.sqlite_helpers import DIM, MODEL, unit
from tests.integration.storage.test_sqlite_index import check_against_brute_force, dense, ingest

needs_popcount = pytest.mark.skipif(not HAS_POPCOUNT, reason="numpy < 2 has no bitwise_count")

# Small tenants take the prefilter paths when the thresholds are lowered. With
# coarse_min above the tenant's size the bits shortlist holds every row, so the
# results must equal brute force exactly.
TUNINGS = {
    "bits": ScanTuning(quantise_from=50, bits_from=20, coarse_min=10_000),
    "int8": ScanTuning(prefilter="int8", quantise_from=50, exact_below=20, rescore=40),
    # Compact from 50 rows: int8 codes in memory, float32 read from the file. With
    # rescore and file_rescore above the tenant's size every passing row is scored
    # from the file.
    "compact": ScanTuning(
        quantise_from=50,
        bits_from=20,
        coarse_min=10_000,
        float_below=50,
        rescore=10_000,
        file_rescore=10_000,
    ),
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


COMPACT = ScanTuning(quantise_from=50, bits_from=20, coarse_min=40, coarse_share=0.2,
                     float_below=100, rescore=40, file_rescore=8)  # fmt: skip
#: How far an int8 estimate may be from the cosine at DIM dimensions (random unit vectors).
ESTIMATE = 0.02


async def test_a_compact_tenant_reopens_with_codes_only_and_finds_the_exact_top(
    db_path: Path,
) -> None:
    """Reopened, a tenant past float_below holds no float32 rows; the best of its
    shortlists are rescored from the file, so the top results' cosines are exact."""
    import random

    items = random_memories(300, seed=61)
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM, tuning=COMPACT)
    await ingest(backend, items)
    await backend.close()
    reopened = await open_sqlite(db_path, model_name=MODEL, dimension=DIM, tuning=COMPACT)
    try:
        tenant = reopened.index._tenants["acme"]
        assert tenant.compact
        assert tenant.vectors is None
        assert tenant.codes is not None
        rng = random.Random(62)
        nprng = np.random.default_rng(63)
        exact_top = 0
        for _ in range(40):
            memory_filter = random_filter(rng, "acme")
            q = unit(nprng)
            want, scores = brute_force(items, q, memory_filter, 5)
            found = await reopened.index.search(
                IndexQuery(filter=memory_filter, vector=q, text="", k=5)
            )
            got = [c.memory_id for c in sorted(found, key=lambda c: c.dense_rank or 0)]
            for c in found:
                assert c.similarity == pytest.approx(scores[c.memory_id], abs=ESTIMATE)
            if got:
                assert scores[got[0]] == pytest.approx(found[0].similarity, abs=1e-5)
            exact_top += got == want
        assert exact_top >= 36  # int8 shortlists of 40 rows: the exact top 5 nearly always
        # Unfiltered with a shortlist above the tenant's size: exactly brute force.
        full = ScanTuning(quantise_from=50, bits_from=20, coarse_min=10_000,
                          float_below=100, rescore=10_000)  # fmt: skip
        tenant.tuning = full
        q = unit(nprng)
        want, scores = brute_force(items, q, MemoryFilter("acme"), 10)
        assert_same_top(await dense(reopened, MemoryFilter("acme"), q, 10), want, scores)
        # Keyword-only hits get their int8 estimate.
        words = items[7].memory.text.split()[0]
        found = await reopened.index.search(
            IndexQuery(filter=MemoryFilter("acme"), vector=q, text=words, k=3)
        )
        _, every = brute_force(items, q, MemoryFilter("acme"), len(items))
        assert any(c.keyword_rank is not None for c in found)
        for c in found:
            assert c.similarity == pytest.approx(every[c.memory_id], abs=ESTIMATE)
    finally:
        await reopened.close()


async def test_a_memory_removed_from_the_file_is_not_scored_from_stale_codes(
    db_path: Path,
) -> None:
    """Between the index's file write and its in-memory apply, a compact tenant may hold
    rows the file no longer has: they are left out, not scored."""
    items = random_memories(150, seed=71)
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM, tuning=COMPACT)
    try:
        await ingest(backend, items)
        tenant = backend.index._tenants["acme"]
        assert tenant.compact
        gone = items[3].memory.id
        await backend.index.db.write(
            lambda conn: conn.execute("DELETE FROM index_memories WHERE id = ?", (gone,))
        )
        q = np.asarray(items[3].vectors[0], np.float32)
        found = await backend.index.search(IndexQuery(filter=MemoryFilter("acme"), vector=q,
                                                      text="", k=5))  # fmt: skip
        assert gone not in {c.memory_id for c in found}
        assert len(found) == 5
    finally:
        await backend.close()


async def test_a_compact_tenant_maps_keyword_hits_to_the_right_memories_after_deletes(
    db_path: Path,
) -> None:
    """Its keyword hits go through the rowid -> slot array: deletes move rows around,
    and every hit must still name a memory that holds the word, and none that is gone."""
    items = random_memories(200, seed=81)
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM, tuning=COMPACT)
    try:
        await ingest(backend, items)
        tenant = backend.index._tenants["acme"]
        assert tenant.slot_by_rowid is not None
        assert tenant.by_rowid == {}
        gone = {item.memory.id for item in items[::3]}
        for item in items[::3]:
            m = item.memory
            removed = await backend.conversations.delete_conversation(
                m.tenant_id, m.conversation_id
            )
            await backend.index.apply(
                IndexChange("acme", m.conversation_id, removed_memory_ids=removed)
            )
        texts = {i.memory.id: i.memory.text for i in items if i.memory.id not in gone}
        words = sorted({w for t in texts.values() for w in t.split()})
        for word in words[:25]:
            hits = await backend.index.keyword_search(MemoryFilter("acme"), word, 500)
            assert {h.memory_id for h in hits} == {m for m, t in texts.items() if word in t.split()}
    finally:
        await backend.close()


def test_slots_by_rowid_grow_follow_moves_and_keep_far_rowids() -> None:
    slots = SlotsByRowid(4)
    slots.set(3, 0)
    slots.set(5000, 1)
    slots.set(DENSE_UP_TO + 7, 2)
    assert (slots.get(3), slots.get(5000), slots.get(DENSE_UP_TO + 7)) == (0, 1, 2)
    assert slots.get(4) == slots.get(10**12) == -1
    slots.moved(5000, 1, 9)
    slots.moved(3, 1, 9)  # not the slot mapped: unchanged
    assert (slots.get(5000), slots.get(3)) == (9, 0)
    slots.drop(5000)
    slots.drop(DENSE_UP_TO + 7)
    assert slots.get(5000) == slots.get(DENSE_UP_TO + 7) == -1
