"""One size: start memoryd on a data dir and measure search, chat and load against it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from attrs import define

from bench import _http
from bench._server import start_server
from bench.build import DB, copy_data
from bench.chat import ChatResult, run_chat
from bench.load import LoadResult, run_load
from bench.machine import load_average
from bench.measure import (
    TEN_PERCENT,
    SizeResult,
    embed_queries,
    floor_ms,
    latencies,
    paired_latencies,
    read_vectors,
    recall_at_10,
    turn_latencies,
)


class Questions:
    """Hands out distinct questions; none is used twice in a run."""

    def __init__(self, questions: list[str]) -> None:
        self._it: Iterator[str] = iter(questions)

    def take(self, n: int) -> list[str]:
        out = [q for _, q in zip(range(n), self._it, strict=False)]
        if len(out) < n:
            raise RuntimeError("the bench ran out of distinct questions: make more")
        return out


@define
class Plan:
    searches: int
    recall: int
    warmup: int = 20
    cached: int = 50
    chat: int = 0
    load_seconds: int = 0
    load_clients: int = 16
    load_queries: int = 0
    load_tool: str = "auto"


@define
class SizeRun:
    size: SizeResult
    chat: ChatResult | None
    load: LoadResult | None


async def measure(
    label: str,
    data_dir: Path,
    *,
    key: str,
    tenant: str,
    questions: Questions,
    plan: Plan,
    env: Mapping[str, str],
    work: Path,
    copy: bool = True,
    log: Any = print,
    turns: Questions | None = None,
) -> SizeRun:
    run_dir = work / f"run-{label}"
    if copy:
        copy_data(data_dir, run_dir)
    else:
        run_dir = data_dir
    vectors = read_vectors(run_dir / DB, tenant)
    share = vectors.bucket3 / len(vectors.ids) if vectors.ids else 0.0
    recall_questions = questions.take(plan.recall)
    query_vectors = embed_queries(recall_questions, env)
    floor = floor_ms(vectors.matrix, query_vectors)
    memories = len(vectors.ids)
    rows = len(vectors.matrix)
    dimension = int(vectors.matrix.shape[1])
    log(f"  {label}: {memories:,} memories, floor p50 {floor.p50:.1f} ms; starting memoryd ...")
    started = time.perf_counter()
    with start_server(run_dir, env=env) as server:
        start_seconds = time.perf_counter() - started
        async with _http.client(server.url, key) as api:
            await latencies(api, questions.take(plan.warmup))
            searched = questions.take(plan.searches)
            paired = await paired_latencies(api, searched, TEN_PERCENT)
            cached, _ = await latencies(api, searched[: plan.cached])
            long = await turn_latencies(api, turns.take(plan.searches) if turns else [])
            recall = await recall_at_10(api, recall_questions, vectors, query_vectors)
            rss, peak = server.rss_mib(), server.peak_rss_mib()
            u, f = paired.unfiltered, paired.filtered
            log(
                f"  {label}: p50 {u.p50:.1f} p95 {u.p95:.1f} ms (filtered {f.p50:.1f} / "
                f"{f.p95:.1f}), R@10 {recall:.3f}"
                + (f"; chat-message queries p95 {long.client.p95:.1f}" if long else "")
            )
            chat = await run_chat(api, questions.take(plan.chat)) if plan.chat else None
            load = None
            if plan.load_seconds:
                cpu = server.cpu_seconds()
                load = await run_load(
                    server.url,
                    key,
                    questions.take(plan.load_queries),
                    clients=plan.load_clients,
                    seconds=plan.load_seconds,
                    work=work,
                    tool=plan.load_tool,
                )
                load.server_cpu_seconds = server.cpu_seconds() - cpu
    # The results above are the fused ranking cut at ``limit``: a memory in the
    # exact top 10 can fall below the 100th when it shares no word with the
    # question. The index's own recall is measured with keywords weighed 0.
    with start_server(run_dir, env={**env, "MEMORYD_SEARCH_KEYWORD_WEIGHT": "0"}) as server:
        async with _http.client(server.url, key) as api:
            dense_recall = await recall_at_10(api, recall_questions, vectors, query_vectors)
    log(f"  {label}: dense side alone R@10 {dense_recall:.3f}")
    del vectors
    size = SizeResult(
        label=label,
        memories=memories,
        rows=rows,
        unfiltered=paired.unfiltered,
        unfiltered_server=paired.unfiltered_server,
        filtered=paired.filtered,
        filtered_server=paired.filtered_server,
        filtered_share=share,
        cached=cached,
        floor=floor,
        recall=recall,
        dense_recall=dense_recall,
        recall_queries=len(recall_questions),
        rss_mib=rss,
        peak_rss_mib=peak,
        start_seconds=start_seconds,
        load_average=load_average(),
        dimension=dimension,
        turns=long,
    )
    if copy:
        shutil.rmtree(run_dir, ignore_errors=True)
    return SizeRun(size, chat, load)
