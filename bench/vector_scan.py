"""The raw dense scan of the embedded index: latency, recall and memory.

Runs the SQLite adapter's in-memory tenant index (no SQLite, no HTTP) over
random unit vectors and over clustered ones (random centroids plus noise and
a shared direction, like real sentence embeddings), at 10k, 100k and 1M rows
of 384 dimensions, and prints one table:

- ``fp32 floor``: one BLAS matvec over every row plus a top-k selection; the
  memory-bandwidth floor of an exact scan.
- ``scan``: the index's path (from ``QUANTISE_FROM`` rows a sign-bits
  prefilter, weighted Hamming distance, then exact float32 scores of the
  nearest 1.5%; int8 first pass where numpy has no popcount), unfiltered and
  with a filter keeping ~10% of rows.
- ``first-pass recall@10``: how many of the exact top 10 are in the
  prefilter's shortlist; ``recall@10``: how many are in the final top 10.
- ``RSS``: the process's resident memory once the index is built, and what
  the vectors alone must take.

Usage: ``python bench/vector_scan.py [--sizes 10000,100000,1000000] [--queries 50]``
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from memoryd.adapters.storage.sqlite._scan import (
    approx_scores,
    exact_scores,
    hamming,
    nearest_by_distance,
    pin_blas_threads,
    query_bits,
    top,
    unordered_top,
)
from memoryd.adapters.storage.sqlite._tenant import ScanTuning, TenantIndex
from memoryd.core.filters import MemoryFilter

DIM = 384
K = 100  # what the search service asks each side for


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_vectors(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors, built in blocks so the peak memory stays near the result."""
    out = np.empty((n, DIM), np.float32)
    if kind == "random":
        for s in range(0, n, 65536):
            e = min(s + 65536, n)
            out[s:e] = unit(rng.standard_normal((e - s, DIM), dtype=np.float32))
        return out
    shared = unit(rng.standard_normal(DIM, dtype=np.float32))
    centroids = unit(rng.standard_normal((1000, DIM), dtype=np.float32))
    for s in range(0, n, 65536):
        e = min(s + 65536, n)
        which = rng.integers(0, len(centroids), e - s)
        noise = rng.standard_normal((e - s, DIM), dtype=np.float32) * 0.05
        out[s:e] = unit(0.6 * shared + centroids[which] + noise)
    return out


def make_queries(kind: str, data: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        return unit(rng.standard_normal((count, DIM), dtype=np.float32))
    # Near existing rows, as a question is near the memory that answers it.
    picks = data[rng.integers(0, len(data), count)]
    return unit(picks + rng.standard_normal((count, DIM), dtype=np.float32) * 0.05)


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(data: np.ndarray, rng: np.random.Generator) -> TenantIndex:
    """A tenant index loaded like the rebuild does; 10 tags, one per 10% of rows."""
    n = len(data)
    tenant = TenantIndex(
        DIM,
        capacity=1 << max(0, n - 1).bit_length(),
        tuning=ScanTuning(quantise_from=20_000, rescore=400),
    )
    groups = [tenant.groups.acquire((f"tag{i}",), {"i": i}, count=0) for i in range(10)]
    said = rng.integers(1_600_000_000, 1_700_000_000, n) * 1_000_000
    labels = rng.integers(0, 10, n)
    for s in range(0, n, 4096):
        e = min(s + 4096, n)
        block = [groups[g] for g in labels[s:e].tolist()]
        for g in block:
            tenant.groups.acquire_group(g)
        tenant.load(
            [f"m{i}" for i in range(s, e)],
            rowids=range(s + 1, e + 1),
            conversation_ids=[f"c{i // 20}" for i in range(s, e)],
            vectors=data[s:e].tobytes(),
            said_at_us=said[s:e].tolist(),
            groups=block,
        )
    tenant.quantise_if_large()
    return tenant


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def run(kind: str, n: int, queries: int, helper: ThreadPoolExecutor | None) -> list[str]:
    rng = np.random.default_rng(n)
    before = rss_mib()
    data = make_vectors(kind, n, rng)
    qs = make_queries(kind, data, queries, rng)
    tenant = build(data, rng)
    del data
    rss = rss_mib() - before
    must = n * DIM * 4 / 2**20
    codes = n * DIM / 2**20 if tenant.codes is not None else 0.0
    codes += tenant.bits.nbytes / 2**20 if tenant.bits is not None else 0.0
    unfiltered = MemoryFilter(tenant_id="t")
    filtered = MemoryFilter(tenant_id="t", container_tags=("tag3",))

    def floor(q: np.ndarray) -> object:
        return top(exact_scores(tenant.vectors, q, rows=n, idx=None), K)

    def scan(q: np.ndarray, f: MemoryFilter) -> object:
        return tenant.dense(q, K, tenant.candidates(f), helper)

    rows: list[str] = []
    cursor = iter(range(10**9))

    def pick() -> np.ndarray:
        return qs[next(cursor) % queries]

    fp = timed(lambda: floor(pick()), queries)
    un = timed(lambda: scan(pick(), unfiltered), queries)
    fi = timed(lambda: scan(pick(), filtered), queries)

    first_hits = final_hits = 0
    for q in qs:
        exact = exact_scores(tenant.vectors, q, rows=n, idx=None)
        truth = set(top(exact, 10).tolist())
        slots, _ = tenant.dense(q, 10, None, helper)
        final_hits += len(truth & set(slots))
        if tenant.bits is not None:
            distances = hamming(tenant.bits, query_bits(q), rows=n, idx=None, helper=None)
            keep = max(
                tenant.tuning.coarse_min,
                int(n * tenant.tuning.coarse_share),
                tenant.tuning.rescore,
                4 * K,
            )
            first_hits += len(truth & set(nearest_by_distance(distances, keep).tolist()))
        elif tenant.codes is not None and tenant.quantiser is not None:
            wide = approx_scores(
                tenant.codes, tenant.quantiser.query(q), rows=n, idx=None, helper=None
            )
            shortlist = set(unordered_top(wide, max(tenant.tuning.rescore, 4 * K)).tolist())
            first_hits += len(truth & shortlist)
        else:
            first_hits += 10
    rows.append(
        f"{kind:9} {n:>9,} {fp[0]:8.2f} {fp[1]:8.2f} {un[0]:8.2f} {un[1]:8.2f}"
        f" {fi[0]:8.2f} {fi[1]:8.2f} {first_hits / (10 * queries):7.3f}"
        f" {final_hits / (10 * queries):7.3f} {rss:9.0f} {must + codes:9.0f}"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--kinds", default="random,clustered")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="scan threads (1 or 2)")
    args = parser.parse_args()
    pinned = pin_blas_threads(1)
    helper = ThreadPoolExecutor(1) if args.threads > 1 else None
    print(
        f"dim={DIM} k={K} queries={args.queries} scan threads={args.threads} blas pinned={pinned}"
    )
    print(
        f"{'data':9} {'rows':>9} {'fp32 p50':>8} {'fp32 p95':>8} {'scan p50':>8} {'scan p95':>8}"
        f" {'10% p50':>8} {'10% p95':>8} {'1st R10':>7} {'R@10':>7} {'RSS MiB':>9}"
        f" {'must MiB':>9}"
    )
    for kind in args.kinds.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for row in run(kind, size, args.queries, helper):
                print(row, flush=True)
    if helper is not None:
        helper.shutdown()


if __name__ == "__main__":
    main()
