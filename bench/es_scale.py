"""Search latency at scale on the Elasticsearch backend, over a local noida-db.

For each size, a fresh noida-db (``bench._noida``) is filled from the SQLite
data dir of that size (``bench.es_fill``: the same conversations, memory ids
and vectors, written through the backend's ``ConversationStore`` and the
outbox drain), and ``bench.scale.measure`` then runs exactly as for SQLite
(the same questions, filters, recall truth from the SQLite file) against a
memoryd started with ``storage = "elasticsearch"`` on that cluster.

noida-db is not Elasticsearch: the figures show the adapter's overhead (the
``_msearch`` round trip, exact rescoring from ``_source``, the generation
read), not a cluster's speed.

    python -m bench.es_scale --work-dir DIR [--sizes 10000,100000] [--real 10000]

builds the SQLite data dirs through HTTP (``bench.build``) up to ``--real``
messages and fills the larger sizes through the SQLite port (``bench.fill``:
renamed, re-dated copies with noisy vectors), then measures SQLite and
Elasticsearch on the same data dirs, one after the other per size, and writes
``DIR/es-scale.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import locomo_eval as le
from bench._corpus import Corpus
from bench._noida import elasticsearch_env, local_elasticsearch
from bench.build import run_build
from bench.es_fill import EsFillResult, bulk_copy_to_elasticsearch, copy_to_elasticsearch
from bench.fill import fill
from bench.measure import SizeResult
from bench.scale import Plan, Questions, SizeRun, measure


async def measure_elasticsearch(
    label: str,
    data_dir: Path,
    *,
    tenant: str,
    questions: Questions,
    plan: Plan,
    env: Mapping[str, str],
    work: Path,
    bulk: bool = False,
    log: Any = print,
) -> tuple[SizeRun, EsFillResult]:
    """Fill a fresh local cluster from ``data_dir``, then measure a memoryd over it.

    ``bulk``: load it with ``bulk_copy_to_elasticsearch`` (the same documents, in
    large ``_bulk`` requests) instead of the port path (commit + drain per conversation).
    """
    place = work / f"noida-{label}"
    shutil.rmtree(place, ignore_errors=True)
    with local_elasticsearch(place) as url:
        how = "in bulk (the backend's documents)" if bulk else "through the backend's port"
        log(f"  {label}: filling a local noida-db from {data_dir} {how} ...")
        copy = bulk_copy_to_elasticsearch if bulk else copy_to_elasticsearch
        filled = await copy(data_dir, url, tenant=tenant, log=log)
        log(f"  {label}: {filled.memories:,} memories in {filled.seconds:.0f} s "
            f"({filled.memories_per_second:.0f}/s)")  # fmt: skip
        ran = await measure(
            label, data_dir, key=filled.key, tenant=tenant, questions=questions, plan=plan,
            env={**env, **elasticsearch_env(url)}, work=work, log=log,
        )  # fmt: skip
    shutil.rmtree(place, ignore_errors=True)
    return ran, filled


def _row(storage: str, s: SizeResult) -> str:
    u, f = s.unfiltered, s.filtered
    return (
        f"| {s.label} | {storage} | {s.memories:,} | {u.p50:.1f} | {u.p95:.1f} | "
        f"{s.unfiltered_server.p50:.1f} / {s.unfiltered_server.p95:.1f} | "
        f"{f.p50:.1f} / {f.p95:.1f} ({s.filtered_share:.0%}) | "
        f"{s.filtered_server.p50:.1f} / {s.filtered_server.p95:.1f} | {s.cached.p50:.1f} | "
        f"{s.dense_recall:.3f} / {s.recall:.3f} | {s.rss_mib:,.0f} MiB | "
        f"{' '.join(f'{x:.2f}' for x in s.load_average)} |"
    )


def table(rows: Sequence[tuple[str, SizeResult]]) -> str:
    lines = [
        "| size | backend | memories | p50 | p95 | server p50 / p95 | filtered ~10%: p50 / p95"
        " | filtered server p50 / p95 | cached p50 | recall@10 index / fused | memoryd RSS"
        " | load avg after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_row(storage, s) for storage, s in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from bench.runner import log

    parser = argparse.ArgumentParser(prog="python -m bench.es_scale", description=__doc__)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--real", type=int, default=10_000,
                        help="messages ingested through HTTP; larger sizes are filled")  # fmt: skip
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--recall", type=int, default=100)
    parser.add_argument("--storages", default="sqlite,elasticsearch")
    parser.add_argument("--es-sizes", help="the sizes measured on Elasticsearch (default all)")
    parser.add_argument("--es-searches", type=int, help="searches per column on Elasticsearch")
    parser.add_argument("--es-recall", type=int, help="recall questions on Elasticsearch")
    parser.add_argument("--es-warmup", type=int, help="warm-up searches on Elasticsearch")
    parser.add_argument("--es-cached", type=int, help="cached searches on Elasticsearch")
    parser.add_argument("--es-fill", choices=("port", "bulk"), default="port",
                        help="fill noida-db through the port, or in bulk")  # fmt: skip
    parser.add_argument("--reuse", action="store_true", help="reuse the data dirs in --work-dir")
    parser.add_argument("--locomo", type=Path, default=le.DEFAULT_PATH)
    args = parser.parse_args(argv)
    work: Path = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    sizes = [int(x) for x in args.sizes.split(",")]
    storages = [x.strip() for x in args.storages.split(",")]
    corpus = Corpus(le.load_locomo(args.locomo))
    real = [s for s in sizes if s <= args.real] or [args.real]
    build, _ = run_build(corpus, real, work, {}, raw_messages=200, reuse=args.reuse, log=log)
    dirs = {s: Path(build.dirs[s]) for s in real}
    fills: dict[int, str] = {}
    for size in sizes:
        if size in dirs:
            continue
        target = work / f"data-{size}"
        if not (args.reuse and (target / "memoryd.sqlite3").exists()):
            log(f"filling {target} to {size:,} memories through the SQLite port ...")
            got = asyncio.run(fill(dirs[max(real)], target, size, tenant=build.tenant, log=log))
            fills[size] = (f"{got.source_memories:,} real + {got.memories - got.source_memories:,}"
                           f" filled copies in {got.seconds:.0f} s")  # fmt: skip
        dirs[size] = target
    plan = Plan(searches=args.searches, recall=args.recall)
    es_plan = Plan(searches=args.es_searches or args.searches, recall=args.es_recall or args.recall,
                   warmup=args.es_warmup if args.es_warmup is not None
                   else min(plan.warmup, args.es_searches or plan.warmup),
                   cached=args.es_cached if args.es_cached is not None
                   else min(plan.cached, args.es_searches or plan.cached))  # fmt: skip
    es_sizes = {int(x) for x in args.es_sizes.split(",")} if args.es_sizes else set(sizes)
    per = plan.warmup + plan.searches + plan.recall  # the cached ones reuse the searched
    rows: list[tuple[str, SizeResult]] = []
    es_fills: list[str] = []
    for size in sizes:
        from bench.runner import label

        name = label(size)
        for storage in storages:
            if storage == "elasticsearch" and size not in es_sizes:
                continue
            # The same questions for both backends at one size (the first ones for both).
            questions = Questions(corpus.questions(per * (sizes.index(size) + 1))[-per:])
            log(f"{name} on {storage} ...")
            if storage == "sqlite":
                ran = asyncio.run(measure(name, dirs[size], key=build.key, tenant=build.tenant,
                                          questions=questions, plan=plan, env={}, work=work,
                                          log=log))  # fmt: skip
            else:
                ran, filled = asyncio.run(measure_elasticsearch(
                    name, dirs[size], tenant=build.tenant, questions=questions, plan=es_plan,
                    env={}, work=work, bulk=args.es_fill == "bulk", log=log))  # fmt: skip
                es_fills.append(
                    f"{name}: {filled.memories:,} memories ({filled.conversations:,} conversations)"
                    f" in {filled.seconds:.0f} s = {filled.memories_per_second:.0f} memories/s,"
                    + (
                        " (bulk load: 1,000 memories a _bulk, 2 in flight)"
                        if filled.refresh == "bulk"
                        else f" {filled.concurrency} conversations in flight"
                    )
                )
            rows.append((storage, ran.size))
            (work / "es-scale.md").write_text(_report(rows, es_fills, fills), encoding="utf-8")
    print(_report(rows, es_fills, fills))
    return 0


def _report(rows: Sequence[tuple[str, SizeResult]], es_fills: list[str],
            fills: Mapping[int, str]) -> str:  # fmt: skip
    text = table(rows) + "\n"
    if fills:
        text += "\nSQLite data dirs filled: " + "; ".join(f"{s:,}: {v}" for s, v in fills.items())
        text += "\n"
    if es_fills:
        text += "\nElasticsearch fill: " + "; ".join(es_fills) + "\n"
    return text


if __name__ == "__main__":
    raise SystemExit(main())
