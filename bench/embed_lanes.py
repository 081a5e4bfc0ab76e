"""The embedder alone: how long a query waits while documents are being embedded.

    python -m bench.embed_lanes [--rounds 3] [--docs 1500] [--queries 60]

In process, with the real MiniLM behind :class:`BatchingEmbedder`, for each
variant (one lane; two lanes with the document thread at niceness 0; two lanes
at the default :data:`DOCUMENT_NICE`), interleaved round by round so that every
variant sees the same machine: ``--queries`` LoCoMo questions embedded one at a
time idle, then one at a time while one ``embed_documents`` call of ``--docs``
LoCoMo turns runs (at most four times as many queries). Prints p50/p95 of the
query latency idle and busy, their p95 ratio, and the documents' texts per
second. This isolates the embedder's share of ``bench.contention``'s figures,
which on a shared 2-core machine move with everything else that runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from bench import locomo_eval as le
from bench._corpus import Corpus
from bench._stats import Latency
from memoryd.adapters.embedding import BatchingEmbedder, MiniLMEncoder
from memoryd.adapters.embedding._batching import DOCUMENT_NICE

#: (label, query_lane, document_nice)
VARIANTS = (
    ("one lane", False, 0),
    ("two lanes, nice 0", True, 0),
    (f"two lanes, nice {DOCUMENT_NICE}", True, DOCUMENT_NICE),
)


async def one_round(
    lane: bool, nice: int, docs: Sequence[str], questions: Sequence[str], queries: int
) -> tuple[list[float], list[float], float]:
    embedder = BatchingEmbedder(MiniLMEncoder(), query_lane=lane, document_nice=nice)
    try:
        await asyncio.to_thread(embedder.load)
        await embedder.embed_documents(list(docs[:64]))  # warm both paths
        await embedder.embed_query(questions[0])
        idle = [await _timed(embedder, q) for q in questions[1 : queries + 1]]
        started = time.perf_counter()
        big = asyncio.create_task(embedder.embed_documents(list(docs)))
        busy: list[float] = []
        for q in questions[queries + 1 :]:
            if big.done():
                break
            busy.append(await _timed(embedder, q))
        await big
        return idle, busy, len(docs) / (time.perf_counter() - started)
    finally:
        await embedder.aclose()


async def _timed(embedder: BatchingEmbedder, question: str) -> float:
    started = time.perf_counter()
    await embedder.embed_query(question)
    return (time.perf_counter() - started) * 1000


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embed_lanes", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=1500)
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args(argv)
    corpus = Corpus(le.load_locomo(le.DEFAULT_PATH))
    docs = [str(m["content"]) for c in corpus.conversations(args.docs) for m in c.messages]
    questions = corpus.questions(args.queries * 5 + 2, seed=3)
    print("| variant | round | idle p50 | idle p95 | busy p50 | busy p95 | p95 ratio | docs/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for round_ in range(args.rounds):
        for label, lane, nice in VARIANTS:
            idle_ms, busy_ms, rate = await one_round(lane, nice, docs, questions, args.queries)
            idle, busy = Latency.of(idle_ms), Latency.of(busy_ms)
            ratio = busy.p95 / idle.p95 if idle.p95 else 0.0
            print(
                f"| {label} | {round_ + 1} | {idle.p50:.1f} | {idle.p95:.1f} | {busy.p50:.1f} "
                f"| {busy.p95:.1f} | {ratio:.2f}× | {rate:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
