"""One large data dir on noida-db: bulk load, single request kinds, a few searches over HTTP.

    python -m bench.es_large --data-dir DIR --tenant T --key KEY --work-dir W [--searches 3]

Where ``bench.es_scale`` cannot finish (at 100k each search scans the index three
times on noida-db, minutes a search on 2 loaded cores), this measures what can
be: the bulk load (``bench.es_fill.bulk_copy_to_elasticsearch``), one request of
each kind the adapter sends (timed with the client, one at a time), then a few
``POST /v4/search`` through memoryd over the loaded cluster next to memoryd on
the SQLite data dir (``KEY`` is the data dir's key), with the top-10 ids of
both, to check the bulk-loaded store answers as the one written through the port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import _http
from bench import locomo_eval as le
from bench._corpus import Corpus
from bench._noida import elasticsearch_env, local_elasticsearch
from bench._server import start_server
from bench.build import DB, copy_data
from bench.es_fill import bulk_copy_to_elasticsearch
from bench.measure import read_vectors
from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig, open_elasticsearch
from memoryd.adapters.storage.elasticsearch._index import RESCORE_SOURCE, keyword_body
from memoryd.adapters.storage.elasticsearch._terms import count_body, terms


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _a_vector(database: Path, tenant: str) -> list[float]:
    """One memory's vector from the data dir (the knn request's query)."""
    return [float(x) for x in read_vectors(database, tenant).matrix[0]]


async def single_requests(url: str, tenant: str, vector: list[float], words: str,
                          log: Any) -> dict[str, float]:  # fmt: skip
    """One request of each kind, timed with the client (ms)."""
    config = ElasticsearchConfig(url=url, index_prefix="bench", replicas=0, request_timeout=1200)
    backend = await open_elasticsearch(config, dimension=len(vector))
    es = backend.cluster.client
    alias = config.alias("memories")
    clauses = [{"term": {"tenant": tenant}}]
    src = RESCORE_SOURCE
    chosen = terms(words)
    calls: dict[str, Any] = {
        "get by id (a conversation)": lambda: es.options(ignore_status=404).get(
            index=config.alias("conversations"), id="x", routing=tenant),
        "generation read (mget)": lambda: backend.index.generation(tenant),
        "term count (size 0)": lambda: es.search(
            index=alias, routing=tenant, query={"bool": {"filter": clauses}}, size=0),
        "knn, tenant pre-filter, k 30": lambda: es.search(
            index=alias, routing=tenant, size=30, source=src,
            knn={"field": "pieces.vector", "query_vector": vector, "k": 30,
                 "num_candidates": 100, "filter": {"bool": {"filter": clauses}}}),
        "BM25 (keywords)": lambda: es.search(
            index=alias, routing=tenant, **keyword_body(chosen, clauses, 10)),
        f"word counts ({len(chosen)} words)": lambda: es.search(
            index=alias, routing=tenant, **count_body(clauses, chosen)),
        "refresh": lambda: es.indices.refresh(index=alias),
    }  # fmt: skip
    out: dict[str, float] = {}
    try:
        for name, call in calls.items():
            t = time.perf_counter()
            await call()
            out[name] = (time.perf_counter() - t) * 1000
            log(f"  {name:34s} {out[name]:10.1f} ms  (load {_load()})")
    finally:
        await backend.close()
    return out


async def searches(url: str, key: str, questions: Sequence[str]) -> list[tuple[list[str], float]]:
    found = []
    async with _http.client(url, key) as api:
        for q in questions:
            answer, ms = await api.search({"q": q, "limit": 10})
            found.append(([r["id"] for r in answer["results"]], ms))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.es_large", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--key", required=True, help="an API key of the SQLite data dir")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--searches", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="also search memoryd on SQLite")
    args = parser.parse_args(argv)
    work: Path = args.work_dir
    report: dict[str, Any] = {}
    questions = Corpus(le.load_locomo(le.DEFAULT_PATH)).questions(args.searches + 1)[1:]
    place = work / "noida-large"
    shutil.rmtree(place, ignore_errors=True)
    with local_elasticsearch(place) as url:
        print(f"bulk loading {args.data_dir} (load {_load()}) ...", flush=True)
        filled = asyncio.run(
            bulk_copy_to_elasticsearch(args.data_dir, url, tenant=args.tenant,
                                       log=lambda m: print(m, flush=True))
        )  # fmt: skip
        report["fill"] = {"memories": filled.memories, "conversations": filled.conversations,
                          "seconds": filled.seconds, "load": _load()}  # fmt: skip
        print(f"  {filled.memories:,} memories in {filled.seconds:.0f} s "
              f"({filled.memories_per_second:.0f}/s), load {_load()}", flush=True)  # fmt: skip
        vector = _a_vector(args.data_dir / DB, args.tenant)
        report["requests"] = asyncio.run(
            single_requests(url, args.tenant, vector, questions[0], lambda m: print(m, flush=True))
        )
        (work / "es-large.json").write_text(json.dumps(report, indent=1))
        with start_server(work / "run-es-large", env=elasticsearch_env(url)) as server:
            es = asyncio.run(searches(server.url, filled.key, questions))
        for q, (ids, ms) in zip(questions, es, strict=True):
            print(f"  es   {ms:10.1f} ms  {q!r}  top {ids[:3]}", flush=True)
        report["es_searches"] = [{"q": q, "ms": ms, "ids": ids}
                                 for q, (ids, ms) in zip(questions, es, strict=True)]  # fmt: skip
        report["es_load"] = _load()
        (work / "es-large.json").write_text(json.dumps(report, indent=1))
    shutil.rmtree(place, ignore_errors=True)
    if args.sqlite:
        run = work / "run-sqlite-large"
        copy_data(args.data_dir, run)
        with start_server(run) as server:
            lite = asyncio.run(searches(server.url, args.key, questions))
        pairs = zip(questions, lite, strict=True)
        report["sqlite_searches"] = [{"q": q, "ms": ms, "ids": ids} for q, (ids, ms) in pairs]
        for (a, _), (b, _) in zip(es, lite, strict=True):
            print(f"  same top 10: {a == b}  (overlap {len(set(a) & set(b))}/10)", flush=True)
        shutil.rmtree(run, ignore_errors=True)
    (work / "es-large.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
