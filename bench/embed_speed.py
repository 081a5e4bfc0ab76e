"""The default embedder's own speed: one query at a time, and documents in batches.

Runs :class:`MiniLMEncoder` in process (no server, no batching thread) with
``OMP_NUM_THREADS=1`` as the tests use, on at most 2 cores, and prints:

- ``question``: ms per single-query embedding (p50/p95) over LoCoMo questions;
- ``turn``: the same over LoCoMo turns (chat-message length, as chat searches);
- ``docs/s``: texts a second, LoCoMo turns embedded in calls of 64.

Each figure is the median over ``--repeats`` rounds (the machine is shared, so
single rounds are noisy). Usage::

    python -m bench.embed_speed [--queries 300] [--batches 8] [--repeats 3] [--threads 0]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads, as in tox.ini

import argparse
import random
import statistics
import time
from collections.abc import Sequence

import numpy as np

from bench.locomo_eval import DEFAULT_PATH, load_locomo
from memoryd.adapters.embedding import MiniLMEncoder


def texts(path: str, count: int, *, seed: int = 0) -> tuple[list[str], list[str]]:
    """``count`` LoCoMo questions and ``count`` turns, drawn with a fixed seed."""
    samples = load_locomo(path)
    questions = [q.question for s in samples for q in s.questions]
    turns = [t.text for s in samples for t in s.turns if t.text]
    rng = random.Random(seed)
    return rng.sample(questions, min(count, len(questions))), rng.sample(
        turns, min(count, len(turns))
    )


def _pin_two_cores() -> None:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 2:
        os.sched_setaffinity(0, cores[:2])


def single_query_ms(encoder: MiniLMEncoder, items: Sequence[str]) -> tuple[float, float]:
    """p50 and p95 milliseconds of ``encode([text], query=True)`` over ``items``."""
    times = []
    for text in items:
        started = time.perf_counter()
        encoder.encode([text], query=True)
        times.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return float(p50), float(p95)


def documents_per_second(encoder: MiniLMEncoder, items: Sequence[str], batches: int) -> float:
    """Texts a second over ``batches`` calls of 64 texts each."""
    calls = [items[i * 64 : (i + 1) * 64] for i in range(batches)]
    calls = [c for c in calls if c]
    started = time.perf_counter()
    for call in calls:
        encoder.encode(call, query=False)
    return sum(len(c) for c in calls) / (time.perf_counter() - started)


def measure(
    encoder: MiniLMEncoder,
    questions: Sequence[str],
    turns: Sequence[str],
    documents: Sequence[str],
    *,
    batches: int,
    repeats: int,
) -> dict[str, float]:
    """The median over ``repeats`` rounds of each figure."""
    encoder.encode(list(questions[:20]), query=True)  # warm up
    for text in turns[:20]:
        encoder.encode([text], query=True)
    rounds: dict[str, list[float]] = {}
    for _ in range(repeats):
        figures = {}
        figures["question p50"], figures["question p95"] = single_query_ms(encoder, questions)
        figures["turn p50"], figures["turn p95"] = single_query_ms(encoder, turns)
        figures["docs/s"] = documents_per_second(encoder, documents, batches)
        for name, value in figures.items():
            rounds.setdefault(name, []).append(value)
    return {name: statistics.median(values) for name, values in rounds.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.embed_speed", description=__doc__)
    parser.add_argument("--locomo", default=str(DEFAULT_PATH))
    parser.add_argument("--queries", type=int, default=300, help="texts of each kind")
    parser.add_argument("--batches", type=int, default=4, help="calls of 64 for docs/s")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)
    _pin_two_cores()
    questions, turns = texts(args.locomo, max(args.queries, 64 * args.batches))
    encoder = MiniLMEncoder(threads=args.threads)
    encoder.load()
    result = measure(
        encoder,
        questions[: args.queries],
        turns[: args.queries],
        turns,
        batches=args.batches,
        repeats=args.repeats,
    )
    cores = len(os.sched_getaffinity(0))
    print(
        f"MiniLM ({encoder.model_name}), threads={args.threads}, {cores} cores, "
        f"load average {os.getloadavg()[0]:.2f}, median of {args.repeats} rounds"
    )
    print("| question p50 | question p95 | turn p50 | turn p95 | docs/s (64 a call) |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {result['question p50']:.2f} ms | {result['question p95']:.2f} ms "
        f"| {result['turn p50']:.2f} ms | {result['turn p95']:.2f} ms | {result['docs/s']:.0f} |"
    )


if __name__ == "__main__":
    main()
