"""LoCoMo quality of the Elasticsearch backend against the embedded store, with a noise estimate.

    python -m bench.es_compare --work-dir DIR [--samples 0-9] [--sessions N]
    python -m bench.es_compare --work-dir DIR --only compare   # recompute from the saved runs
    python -m bench.es_compare --work-dir DIR --env MEMORYD_SEARCH_KEYWORD_WEIGHT=0   # a setting

Runs the bench's quality part (``bench.quality``, the same protocol as ``python
-m bench --only quality``) once per storage (SQLite, then the Elasticsearch
adapter over a local noida-db), saves every question's metrics to
``DIR/quality-STORAGE.json``, and compares the two question by question on
categories 1–4: the mean difference of R@5 and R@10 with a 95% paired
bootstrap interval (questions resampled), and a two-sided sign test over the
questions where the two differ. Dev (conv 0–4) and held-out (conv 5–9) apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
from attrs import frozen

from bench import locomo_eval as le
from bench.runner import FULL, log, quality

STORAGES = ("sqlite", "elasticsearch")
CATEGORIES = (1, 2, 3, 4)
#: Index of R@5 and R@10 in ``Scored.recalls``.
K_INDEX = {k: i for i, k in enumerate(le.KS)}


@frozen
class Paired:
    """ES minus SQLite over the same questions, for one metric."""

    label: str
    metric: str
    count: int
    sqlite: float
    elasticsearch: float
    difference: float
    low: float
    high: float
    better: int
    worse: int
    sign_p: float


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact binomial p of ``better`` against ``worse`` (ties left out)."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(
    label: str,
    metric: str,
    sqlite: Sequence[float],
    es: Sequence[float],
    *,
    rounds: int = 10_000,
    seed: int = 1,
) -> Paired:
    a = np.asarray(sqlite, dtype=np.float64)
    b = np.asarray(es, dtype=np.float64)
    d = b - a
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(rounds, len(d)))].mean(axis=1) if len(d) else [0.0]
    low, high = (float(x) for x in np.percentile(means, [2.5, 97.5]))
    better, worse = int((d > 0).sum()), int((d < 0).sum())
    return Paired(label, metric, len(d), float(a.mean()) if len(a) else 0.0,
                  float(b.mean()) if len(b) else 0.0, float(d.mean()) if len(d) else 0.0,
                  low, high, better, worse, sign_test(better, worse))  # fmt: skip


def compare(
    sqlite: Sequence[le.Scored], es: Sequence[le.Scored], *, groups: dict[str, Sequence[int]]
) -> list[Paired]:
    """Paired differences per group of samples, categories 1–4 (over the questions both
    runs scored: a run stopped early compares the samples it finished)."""
    n = min(len(sqlite), len(es))
    sqlite, es = sqlite[:n], es[:n]
    if [(s.sample, s.category) for s in sqlite] != [(s.sample, s.category) for s in es]:
        raise ValueError("the two runs did not score the same questions in the same order")
    out: list[Paired] = []
    for label, samples in groups.items():
        keep = [i for i, s in enumerate(sqlite) if s.category in CATEGORIES and s.sample in samples]
        for k in (5, 10):
            j = K_INDEX[k]
            out.append(paired(label, f"R@{k}", [sqlite[i].recalls[j] for i in keep],
                              [es[i].recalls[j] for i in keep]))  # fmt: skip
        out.append(paired(label, "MRR", [sqlite[i].rr for i in keep], [es[i].rr for i in keep]))
    return out


def table(rows: Sequence[Paired]) -> str:
    lines = [
        "| questions (cat 1–4) | metric | n | SQLite | Elasticsearch | ES − SQLite | 95% bootstrap"
        " | ES better / worse | sign test p |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.metric} | {r.count} | {r.sqlite:.3f} | {r.elasticsearch:.3f} | "
            f"{r.difference:+.3f} | {r.low:+.3f} … {r.high:+.3f} | {r.better} / {r.worse} | "
            f"{r.sign_p:.2f} |"
        )
    return "\n".join(lines)


def save(path: Path, scored: Sequence[le.Scored]) -> None:
    rows = [{"sample": s.sample, "category": s.category, "recalls": s.recalls, "rr": s.rr}
            for s in scored]  # fmt: skip
    path.write_text(json.dumps(rows), encoding="utf-8")


def load(path: Path) -> list[le.Scored]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [le.Scored(r["sample"], r["category"], tuple(r["recalls"]), r["rr"]) for r in rows]


def _samples(text: str) -> tuple[int, ...]:
    if "-" in text:
        a, b = text.split("-")
        return tuple(range(int(a), int(b) + 1))
    return tuple(int(x) for x in text.split(","))


def settings(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as the servers' environment (only ``MEMORYD_*`` settings)."""
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("MEMORYD_"):
            raise SystemExit(f"--env wants MEMORYD_NAME=VALUE, got {pair!r}")
        env[key] = value
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.es_compare", description=__doc__)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--samples", default="0-9", help="LoCoMo samples: 0-9 or 0,5")
    parser.add_argument("--sessions", type=int, help="first N sessions of each (default all)")
    parser.add_argument("--only", choices=("all", "compare", *STORAGES), default="all")
    parser.add_argument("--locomo", type=Path, default=le.DEFAULT_PATH)
    parser.add_argument(
        "--separately",
        action="store_true",
        help="each sample in a store of its own (noida-db scans its whole index per search)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="MEMORYD_NAME=VALUE",
        help="a setting for both servers (repeatable)",
    )
    args = parser.parse_args(argv)
    env = settings(args.env)
    work: Path = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    samples = _samples(args.samples)
    mode = attrs.evolve(FULL, samples=samples, sessions=args.sessions)
    every = le.load_locomo(args.locomo)
    for storage in STORAGES:
        if args.only not in ("all", storage):
            continue
        log(f"quality on {storage}: samples {samples}, sessions {args.sessions or 'all'} ...")
        runs = [(samples, mode)]
        if args.separately:
            runs = [((i,), attrs.evolve(mode, samples=(i,))) for i in samples]
        scored: list[le.Scored] = []
        for picked, picked_mode in runs:
            place = work / storage / "-".join(map(str, picked))
            result = asyncio.run(quality(every, picked_mode, place, storage=storage, env=env))
            scored += result.scored
            save(work / f"quality-{storage}.json", scored)
            summary = le.summarise("cat 1-4", le.select(result.scored, CATEGORIES))
            log(f"  {storage} {picked}: {summary.count} questions, R@5 "
                f"{summary.recalls[K_INDEX[5]]:.3f}, R@10 {summary.recalls[K_INDEX[10]]:.3f}, "
                f"search p50 {result.search_latency.p50:.1f} ms, "
                f"ingest {result.ingest_seconds:.0f} s")  # fmt: skip
    if args.only in ("all", "compare"):
        groups: dict[str, Sequence[int]] = {
            "dev conv 0–4": [s for s in samples if s in le.DEV_CONVERSATIONS],
            "held-out conv 5–9": [s for s in samples if s in le.HELDOUT_CONVERSATIONS],
            f"all ({args.samples})": samples,
        }
        rows = compare(load(work / "quality-sqlite.json"),
                       load(work / "quality-elasticsearch.json"), groups=groups)  # fmt: skip
        text = table([r for r in rows if r.count])
        (work / "compare.md").write_text(text + "\n", encoding="utf-8")
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
