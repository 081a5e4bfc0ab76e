"""Where noida-db's time goes: single requests of each kind the adapter sends, at sizes N.

    python -m bench.es_probe --work-dir DIR [--sizes 1000,5000,10000] [--repeat 3]

For each size a fresh noida-db is filled with N synthetic memories written by
the backend's own ``EsMemoryIndex.apply`` (its codec, its mapping, ``_bulk``
of 1,000), then each request kind is timed (the median of ``--repeat`` runs,
after one warm-up), together with request-shape variants: ``_source`` off or
narrowed, ``size``, ``track_total_hits``, the filter in ``filter`` or ``must``,
after a ``_forcemerge``. The load average is printed with every size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench._noida import local_elasticsearch
from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig, open_elasticsearch
from memoryd.adapters.storage.elasticsearch._codec import memory_doc_id
from memoryd.adapters.storage.elasticsearch._index import RESCORE_SOURCE, keyword_body
from memoryd.adapters.storage.elasticsearch._terms import count_body, keyword_match
from memoryd.core.filters import MemoryFilter
from memoryd.core.model import Memory
from memoryd.core.ports import IndexChange, IndexedMemory, IndexQuery

DIM = 384
TENANT = "probe"
WORDS = [f"w{i}" for i in range(3000)]
NAMES = ["Caroline", "Melanie", "John", "Maria", "Joanna", "Nate", "Tim", "Audrey"]


def _memories(n: int, seed: int = 7) -> list[IndexedMemory]:
    rng = random.Random(seed)
    vec = np.random.default_rng(seed)
    start = datetime(2023, 5, 8, tzinfo=UTC)
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    out = []
    for i in range(n):
        text = " ".join(rng.choices(WORDS, weights, k=rng.randint(8, 30)))
        rows = vec.standard_normal((rng.choice((1, 1, 1, 2)), DIM)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        conv = f"c{i // 20}"
        out.append(
            IndexedMemory(
                memory=Memory(
                    id=f"m{i}",
                    tenant_id=TENANT,
                    conversation_id=conv,
                    text=text,
                    positions=(i % 20,),
                    said_at=start + timedelta(minutes=i),
                    container_tags=("bench",),
                    metadata={"bucket": i % 10},
                    speaker=NAMES[i % len(NAMES)],
                ),
                vectors=rows,
                keyword_context=" ".join(rng.choices(WORDS, weights, k=10)),
            )
        )
    return out


async def _time(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await call()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await call()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def probe(url: str, n: int, repeat: int, log: Any = print) -> dict[str, float]:
    config = ElasticsearchConfig(url=url, index_prefix="probe", replicas=0, request_timeout=600)
    backend = await open_elasticsearch(config, dimension=DIM, model_name="probe")
    es = backend.cluster.client
    alias = config.alias("memories")
    results: dict[str, float] = {}
    try:
        items = _memories(n)
        t = time.perf_counter()
        for start in range(0, n, 1000):
            part = tuple(items[start : start + 1000])
            await backend.index.apply(IndexChange(TENANT, f"fill{start}", added=part))
        fill = time.perf_counter() - t
        log(f"  N={n:,}: filled in {fill:.1f} s ({n / fill:.0f} memories/s) by apply()")
        await es.indices.refresh(index=alias)
        q = items[3].vectors[0].tolist()
        tenant = [{"term": {"tenant": TENANT}}]
        bucket = [*tenant, {"term": {"metadata_terms": "bucket=n:3"}}]
        src = RESCORE_SOURCE
        words = " ".join(items[5].memory.text.split()[:4])

        def knn(clauses: list[Any], **kw: Any) -> Any:
            body = {
                "knn": {"field": "pieces.vector", "query_vector": q, "k": 30,
                        "num_candidates": 100, "filter": {"bool": {"filter": clauses}}},
                "size": 30, "_source": src,
            }  # fmt: skip
            body.update(kw)
            return lambda: es.search(index=alias, routing=TENANT, **body)

        def bm25(clauses: list[Any], where: str = "filter", **kw: Any) -> Any:
            match = keyword_match(words.split())
            query: dict[str, Any] = {"bool": {"must": [match], "filter": clauses}}
            if where == "must":
                query = {"bool": {"must": [match, *clauses]}}
            body = {"query": query, "size": 10, "_source": src, **kw}
            return lambda: es.search(index=alias, routing=TENANT, **body)

        counted = count_body(tenant, words.split())
        probes: dict[str, Callable[[], Awaitable[Any]]] = {
            "knn tenant": knn(tenant),
            "knn tenant _source false": knn(tenant, _source=False),
            "knn tenant+bucket": knn(bucket),
            "bm25": bm25(tenant),
            "bm25 _source false": bm25(tenant, _source=False),
            "bm25 filter in must": bm25(tenant, "must"),
            "bm25 track_total_hits false": bm25(tenant, track_total_hits=False),
            "bm25 size 100": bm25(tenant, size=100),
            "word counts (filters agg)": lambda: es.search(index=alias, routing=TENANT, **counted),
            "term count size 0": lambda: es.search(
                index=alias, routing=TENANT, query={"term": {"tenant": TENANT}}, size=0),
            "term count track_total_hits": lambda: es.search(
                index=alias, routing=TENANT, query={"term": {"tenant": TENANT}}, size=0,
                track_total_hits=True),
            "_count": lambda: es.count(index=alias, routing=TENANT,
                                       query={"term": {"tenant": TENANT}}),
            "term size 10 _source": lambda: es.search(
                index=alias, routing=TENANT, query={"term": {"tenant": TENANT}}, size=10),
            "match_all size 0": lambda: es.search(index=alias, query={"match_all": {}}, size=0),
            "msearch knn+bm25+counts": lambda: es.msearch(searches=[
                {"index": alias, "routing": TENANT}, {
                    "knn": {"field": "pieces.vector", "query_vector": q, "k": 30,
                            "num_candidates": 100,
                            "filter": {"bool": {"filter": tenant}}},
                    "size": 30, "_source": src},
                {"index": alias, "routing": TENANT},
                keyword_body(words.split(), tenant, 10),
                {"index": alias, "routing": TENANT}, counted]),
            "get by id": lambda: es.get(index=alias, id=memory_doc_id(TENANT, "m5"),
                                        routing=TENANT),
            "generation read (mget)": lambda: backend.index.generation(TENANT),
            "refresh": lambda: es.indices.refresh(index=alias),
            "index.search (adapter)": lambda: backend.index.search(IndexQuery(
                filter=MemoryFilter(TENANT), vector=np.asarray(q, np.float32), text=words,
                k=10)),
        }  # fmt: skip
        for name, call in probes.items():
            results[name] = await _time(call, repeat)
            log(f"  N={n:,} {name:32s} {results[name]:9.1f} ms")
        extra = _memories(100, seed=n + 1)
        extra = [
            IndexedMemory(attr_evolve(m.memory, id=f"x{i}"), m.vectors, m.keyword_context)
            for i, m in enumerate(extra)
        ]
        t = time.perf_counter()
        await backend.index.apply(IndexChange(TENANT, "extra", added=tuple(extra)))
        results["apply 100 (bulk+bump)"] = (time.perf_counter() - t) * 1000
        log(f"  N={n:,} {'apply 100 (bulk+bump)':32s} {results['apply 100 (bulk+bump)']:9.1f} ms")
        t = time.perf_counter()
        await es.indices.forcemerge(index=alias, max_num_segments=1)
        log(f"  N={n:,} forcemerge took {(time.perf_counter() - t) * 1000:.0f} ms")
        for name in ("knn tenant", "bm25", "word counts (filters agg)", "term count size 0"):
            results[f"{name} after forcemerge"] = await _time(probes[name], repeat)
            log(f"  N={n:,} {name + ' (merged)':32s} {results[name + ' after forcemerge']:9.1f} ms")
        log(f"  N={n:,} load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        await backend.close()
    return results


def attr_evolve(memory: Memory, **kw: Any) -> Memory:
    import attrs

    return attrs.evolve(memory, **kw)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.es_probe", description=__doc__)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for n in (int(x) for x in args.sizes.split(",")):
        place = args.work_dir / f"probe-{n}"
        shutil.rmtree(place, ignore_errors=True)
        with local_elasticsearch(place) as url:
            asyncio.run(probe(url, n, args.repeat))
        shutil.rmtree(place, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
