"""Search latency over HTTP, against the exact fp32 floor, with recall and memory.

For one data dir and one running server:

- ``p50/p95/p99`` of ``POST /v4/search`` as the client sees it (query
  embedding included), one request at a time, every query distinct so that
  the search cache never answers (a separate line shows cache hits);
- the same with a metadata filter that keeps about 10% of the memories;
- the same, unfiltered, for queries of chat-message length (LoCoMo turns),
  since chat searches with the user's whole message;
- ``floor``: one exact float32 scan of the tenant's vectors (a matrix-vector
  product split over the machine's cores, plus the top-10), timed in this
  process over the vectors read from the SQLite file;
- ``recall@10``: the exact float32 top 10 (computed here over the same
  vectors, for the same query embedded by the same model) against the 10
  most similar of memoryd's results (its ``similarity`` is the exact cosine);
- the server's resident memory.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from attrs import define

from bench._http import Client
from bench._stats import Latency

F32 = npt.NDArray[np.float32]
#: The filter that keeps ~10% of the corpus (``bucket`` is the conversation index mod 10).
TEN_PERCENT: dict[str, Any] = {"bucket": 3}


@define
class Vectors:
    """A tenant's memories and their vectors: one row per embedded piece."""

    ids: list[str]
    #: Every piece's vector; a memory's pieces are adjacent rows.
    matrix: F32
    #: The first row of each memory in ``matrix`` (``ids[i]`` owns ``starts[i]:starts[i+1]``).
    starts: npt.NDArray[np.intp]
    bucket3: int


def read_vectors(database: Path, tenant: str) -> Vectors:
    """The tenant's memory ids and piece vectors, in file order (read-only)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        (total,) = conn.execute(
            "SELECT sum(length(vector)) FROM memories WHERE tenant_id = ?", (tenant,)
        ).fetchone()
        (dim,) = conn.execute("SELECT value FROM meta WHERE key = 'embedding_dimension'").fetchone()
        dim = int(dim)
        matrix = np.empty(((total or 0) // (4 * dim), dim), np.float32)
        ids: list[str] = []
        starts: list[int] = []
        rows = conn.execute(
            "SELECT id, vector, metadata FROM memories WHERE tenant_id = ? ORDER BY rowid",
            (tenant,),
        )
        bucket3 = 0
        row = 0
        while batch := rows.fetchmany(8192):
            for mid, blob, metadata in batch:
                pieces = np.frombuffer(blob, np.float32).reshape(-1, dim)
                matrix[row : row + len(pieces)] = pieces
                ids.append(mid)
                starts.append(row)
                bucket3 += json.loads(metadata).get("bucket") == TEN_PERCENT["bucket"]
                row += len(pieces)
        return Vectors(
            ids=ids, matrix=matrix[:row], starts=np.asarray(starts, np.intp), bucket3=bucket3
        )
    finally:
        conn.close()


def exact_top(vectors: Vectors, queries: F32, k: int) -> list[list[int]]:
    """Exact top-k memories per query, each scored by its best piece (float32 dot products)."""
    out: list[list[int]] = []
    if not vectors.ids:
        return [[] for _ in queries]
    for q in queries:
        scores = np.maximum.reduceat(vectors.matrix @ q, vectors.starts)
        part = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        out.append(part[np.argsort(-scores[part], kind="stable")].tolist())
    return out


def floor_ms(matrix: F32, queries: F32, *, threads: int = 2, repeat: int = 20) -> Latency:
    """One exact float32 scan + top-10: the matvec split over ``threads`` threads."""
    n = len(matrix)
    bounds = np.linspace(0, n, threads + 1).astype(int)
    pool = ThreadPoolExecutor(threads)

    def part(i: int, q: F32, out: F32) -> None:
        np.matmul(matrix[bounds[i] : bounds[i + 1]], q, out=out[bounds[i] : bounds[i + 1]])

    times: list[float] = []
    out = np.empty(n, np.float32)
    try:
        for r in range(repeat + 1):
            q = queries[r % len(queries)]
            started = time.perf_counter()
            list(pool.map(lambda i, q=q: part(i, q, out), range(threads)))  # type: ignore[misc]
            np.argpartition(-out, min(10, n - 1))[:10]
            if r:
                times.append((time.perf_counter() - started) * 1000)
    finally:
        pool.shutdown()
    return Latency.of(times)


async def latencies(
    api: Client, queries: Sequence[str], *, filters: dict[str, Any] | None = None
) -> tuple[Latency, Latency]:
    """Client-side and server-reported (``timing``) latency, one request at a time."""
    client: list[float] = []
    server: list[float] = []
    for q in queries:
        body: dict[str, Any] = {"q": q, "limit": 10}
        if filters:
            body["filters"] = filters
        answer, ms = await api.search(body)
        client.append(ms)
        server.append(float(answer["timing"]))
    return Latency.of(client), Latency.of(server)


@define
class Paired:
    unfiltered: Latency
    unfiltered_server: Latency
    filtered: Latency
    filtered_server: Latency


async def paired_latencies(api: Client, queries: Sequence[str], filters: dict[str, Any]) -> Paired:
    """Each query with and without ``filters``, alternating which goes first.

    The machine's load drifts; pairing the two searches of the same question
    back to back compares them under the same conditions. Neither is a cache
    hit (the filter is part of the cache key); alternating the order shares
    out the warm-up that the first search of a question's words gives the
    second (the keyword side caches word counts).
    """
    times: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    for i, q in enumerate(queries):
        for filtered in (i % 2 == 0, i % 2 == 1):
            body: dict[str, Any] = {"q": q, "limit": 10}
            if filtered:
                body["filters"] = filters
            answer, ms = await api.search(body)
            times[filtered][0].append(ms)
            times[filtered][1].append(float(answer["timing"]))
    return Paired(
        unfiltered=Latency.of(times[False][0]),
        unfiltered_server=Latency.of(times[False][1]),
        filtered=Latency.of(times[True][0]),
        filtered_server=Latency.of(times[True][1]),
    )


async def recall_at_10(
    api: Client, queries: Sequence[str], vectors: Vectors, query_vectors: F32
) -> float:
    """Share of the exact top 10 among the 10 most similar of memoryd's results."""
    truth = exact_top(vectors, query_vectors, 10)
    found = 0
    for q, rows in zip(queries, truth, strict=True):
        answer, _ = await api.search({"q": q, "limit": 100})
        best = sorted(answer["results"], key=lambda r: -float(r["similarity"]))[:10]
        got = {r["id"] for r in best}
        found += sum(1 for row in rows if vectors.ids[row] in got)
    return found / (10 * len(queries)) if queries else 0.0


def embed_queries(queries: Sequence[str], env: Mapping[str, str] | None = None) -> F32:
    """The query vectors, by the same model the server that ``env`` configures uses."""
    from bench._encoder import open_encoder

    with open_encoder(env or {}) as model:
        rows = [model.encode([q], query=True)[0] for q in queries]
    return np.asarray(rows, dtype=np.float32)


@define
class TurnLatency:
    """Queries of chat-message length: client and server latency, median words a query."""

    client: Latency
    server: Latency
    words: int


async def turn_latencies(api: Client, queries: Sequence[str]) -> TurnLatency | None:
    """``latencies`` for chat-message-length queries (None: none given)."""
    if not queries:
        return None
    client, server = await latencies(api, queries)
    return TurnLatency(client, server, int(statistics.median(len(q.split()) for q in queries)))


@define
class SizeResult:
    label: str
    memories: int
    #: Vector rows: one per embedded piece (a memory has one or more).
    rows: int
    unfiltered: Latency
    unfiltered_server: Latency
    filtered: Latency
    filtered_server: Latency
    filtered_share: float
    cached: Latency
    floor: Latency
    #: recall@10 of the search results (fused dense + keyword ranking, ``limit`` 100).
    recall: float
    #: recall@10 of the dense side alone (a server whose fusion weighs keywords 0).
    dense_recall: float
    recall_queries: int
    rss_mib: float
    peak_rss_mib: float
    start_seconds: float
    load_average: tuple[float, float, float]
    #: The vectors' dimension (384: MiniLM and e5; 768: mpnet).
    dimension: int = 384
    #: Unfiltered latency for queries of chat-message length (LoCoMo turns).
    turns: TurnLatency | None = None
