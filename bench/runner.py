"""The benchmark run: its modes, its parts, and the order they run in."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs
from attrs import define

from bench import locomo_eval as le
from bench._corpus import Corpus
from bench._http import client
from bench._noida import elasticsearch_env, local_elasticsearch
from bench._parts import HookedPart, HookedResult, PartContext
from bench._server import start_server
from bench.build import measure_ingest, run_build
from bench.contention import run_contention
from bench.es_scale import measure_elasticsearch
from bench.fill import fill
from bench.machine import details, load_average
from bench.quality import QualityResult, run_quality
from bench.report import Results
from bench.scale import Plan, Questions, measure

REPO = Path(__file__).resolve().parent.parent
#: Parts defined elsewhere (``bench._parts``), run after the built-in ones in this order.
#: Hook one in here: ``from bench.queued import PART`` and list it (queued ingest).
HOOKED: tuple[HookedPart, ...] = ()
BUILTIN_PARTS = ("quality", "ingest", "latency", "million", "chat", "load", "contention")
PARTS = BUILTIN_PARTS + tuple(p.name for p in HOOKED)
#: What an embedder after the first runs by default (``--extra-parts``): what the issue
#: compares side by side (recall; ingest rate, search p50/p95 and RSS at one size).
EXTRA_PARTS = ("quality", "latency")
#: Messages the raw model embeds before an extra embedder's build (the first: ``raw_messages``).
EXTRA_RAW_MESSAGES = 500
#: The parts that ``--storage elasticsearch`` runs (over a local noida-db server).
ES_PARTS = ("quality", "latency")


@define
class Mode:
    samples: tuple[int, ...]
    sessions: int | None
    sizes: tuple[int, ...]
    raw_messages: int
    ingest_messages: int
    ingest_raw_messages: int
    plan: Plan
    million: int
    million_plan: Plan
    chat: int
    load_seconds: int
    load_queries: int
    #: Idle searches of the contention part, and its servers' settings (the cap).
    contention_searches: int = 200
    contention_env: tuple[tuple[str, str], ...] = ()
    #: Seconds of searching while 4 clients ingest (the contention part's flood phase).
    contention_flood_s: float = 30.0


FULL = Mode(
    samples=tuple(range(10)),
    sessions=None,
    sizes=(10_000, 100_000),
    raw_messages=2_000,
    ingest_messages=4_000,
    ingest_raw_messages=1_000,
    plan=Plan(searches=300, recall=100),
    million=1_000_000,
    million_plan=Plan(searches=300, recall=200),
    chat=200,
    load_seconds=60,
    load_queries=40_000,
)
QUICK = Mode(
    samples=(0, 5),
    sessions=3,
    sizes=(300, 600),
    raw_messages=100,
    ingest_messages=150,
    ingest_raw_messages=50,
    plan=Plan(searches=30, recall=20, warmup=5, cached=10),
    million=3_000,
    million_plan=Plan(searches=30, recall=20, warmup=5, cached=10),
    chat=10,
    load_seconds=3,
    load_queries=3_000,
    contention_searches=30,
    contention_env=(("MEMORYD_MAX_EMBED_TOKENS", "3000"),),
    contention_flood_s=3.0,
)


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def run(
    args: argparse.Namespace,
    parts: set[str],
    mode: Mode,
    work: Path,
    *,
    command: str = "python -m bench --quick",
    env: Mapping[str, str] | None = None,
    hooked: Sequence[HookedPart] = HOOKED,
) -> Results:
    """Run ``parts`` in ``mode`` with scratch space in ``work``; the results.

    ``env`` goes to every memoryd the parts start (``MEMORYD_EMBEDDER``: ``--embedder``).
    ``hooked``: the parts defined elsewhere (``HOOKED``) that ``parts`` may name.
    """
    env = dict(env or {})
    results = Results(
        command=command,
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        finished="",
        machine=details(REPO),
        quick=args.quick,
        embedder=env.get("MEMORYD_EMBEDDER", ""),
        parts=tuple(p for p in (*BUILTIN_PARTS, *(h.name for h in hooked)) if p in parts),
    )
    results.loads.append(("start", load_average()))
    samples = le.load_locomo(args.locomo)
    if "quality" in parts:
        log("quality: LoCoMo through HTTP ...")
        storage = getattr(args, "storage", "sqlite")
        results.quality = asyncio.run(quality(samples, mode, work, storage=storage, env=env))
        results.loads.append(("after quality", load_average()))
    corpus = Corpus(samples)
    if "ingest" in parts:
        log(f"ingest: {mode.ingest_messages:,} messages through HTTP, raw model before and after")
        results.ingest = asyncio.run(
            measure_ingest(corpus, mode.ingest_messages, work, env,
                           raw_messages=mode.ingest_raw_messages, log=log)
        )  # fmt: skip
        results.loads.append(("after ingest throughput", load_average()))
    if "contention" in parts:
        log("contention: search idle, during a maximal ingest and while 4 clients ingest ...")
        results.contention = asyncio.run(
            run_contention(corpus, work, idle_searches=mode.contention_searches,
                           env={**env, **dict(mode.contention_env)},
                           flood_seconds=mode.contention_flood_s, log=log)
        )  # fmt: skip
        results.loads.append(("after contention", load_average()))
    if parts & {"ingest", "latency", "million", "chat", "load"}:
        log(f"scale: building {mode.sizes} through HTTP ...")
        build, reused = run_build(
            corpus, mode.sizes, work, env, raw_messages=mode.raw_messages, reuse=args.reuse, log=log
        )
        results.build, results.build_reused = build, reused
        results.loads.append(("after building the data dirs", load_average()))
        questions = Questions(corpus.questions(_questions_needed(mode)))
        turns = Questions(corpus.turn_queries(_turns_needed(mode)))
        for size in mode.sizes if parts & {"latency", "chat", "load"} else ():
            last = size == mode.sizes[-1]
            plan = mode.plan
            if last:
                plan = Plan(
                    searches=plan.searches,
                    recall=plan.recall,
                    warmup=plan.warmup,
                    cached=plan.cached,
                    chat=mode.chat if "chat" in parts else 0,
                    load_seconds=mode.load_seconds if "load" in parts else 0,
                    load_queries=mode.load_queries,
                    load_tool=args.load_tool,
                )
            if getattr(args, "storage", "sqlite") == "elasticsearch":
                # The same data dir, copied into a fresh local noida-db (bench.es_fill).
                ran, filled = asyncio.run(
                    measure_elasticsearch(label(size), Path(build.dirs[size]), tenant=build.tenant,
                                          questions=questions, plan=plan, env=env, work=work,
                                          log=log)
                )  # fmt: skip
                results.es_fills.append((label(size), filled))
            else:
                ran = asyncio.run(
                    measure(label(size), Path(build.dirs[size]), key=build.key,
                            tenant=build.tenant, questions=questions, plan=plan, env=env,
                            work=work, log=log, turns=turns)
                )  # fmt: skip
            results.sizes.append(ran.size)
            results.chat = ran.chat or results.chat
            results.load = ran.load or results.load
            results.loads.append((f"after {label(size)}", load_average()))
        if "million" in parts:
            target = work / f"data-{mode.million}"
            log(f"million: filling to {mode.million:,} through the port ...")
            results.fill = asyncio.run(
                fill(Path(build.dirs[mode.sizes[-1]]), target, mode.million,
                     tenant=build.tenant, log=log)
            )  # fmt: skip
            results.loads.append(("after fill", load_average()))
            ran = asyncio.run(
                measure(label(mode.million), target, key=build.key, tenant=build.tenant,
                        questions=questions, plan=mode.million_plan, env=env, work=work,
                        copy=False, log=log, turns=turns)
            )  # fmt: skip
            results.sizes.append(ran.size)
            results.loads.append((f"after {label(mode.million)}", load_average()))
    # Parts hooked in from other modules (``HOOKED``), each on its own.
    for part in hooked:
        if part.name not in parts:
            continue
        log(f"{part.name}: {part.title} ...")
        context = PartContext(
            args=args, mode=mode, quick=bool(args.quick), work=work / part.name, env=env,
            samples=samples, corpus=corpus, log=log,
        )  # fmt: skip
        context.work.mkdir(parents=True, exist_ok=True)
        value = part.run(context)
        results.hooked[part.name] = HookedResult(
            value=value, section=part.section(value), targets=part.targets(value)
        )
        results.loads.append((f"after {part.name}", load_average()))
    results.finished = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return results


def extra_mode(mode: Mode, sizes: tuple[int, ...] | None = None) -> Mode:
    """``mode`` for an embedder after the first: ``sizes`` (default: the smallest) only."""
    chosen = sizes or mode.sizes[:1]
    return attrs.evolve(mode, sizes=chosen, raw_messages=min(mode.raw_messages, EXTRA_RAW_MESSAGES))


def label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def _questions_needed(mode: Mode) -> int:
    per = mode.plan.warmup + mode.plan.searches + mode.plan.recall
    million = mode.million_plan.warmup + mode.million_plan.searches + mode.million_plan.recall
    return per * len(mode.sizes) + million + mode.chat + mode.load_queries


def _turns_needed(mode: Mode) -> int:
    """Chat-message-length queries: one set of searches per size and for the million."""
    return mode.plan.searches * len(mode.sizes) + mode.million_plan.searches


async def quality(
    samples: list[le.Sample],
    mode: Mode,
    work: Path,
    *,
    storage: str = "sqlite",
    env: Mapping[str, str] | None = None,
) -> QualityResult:
    shutil.rmtree(work / "quality", ignore_errors=True)
    with contextlib.ExitStack() as stack:
        env = dict(env or {})
        if storage == "elasticsearch":
            url = stack.enter_context(local_elasticsearch(work / "noida"))
            env.update(elasticsearch_env(url))
        server = stack.enter_context(start_server(work / "quality", env=env))
        assert server.key is not None
        async with client(server.url, server.key) as api:
            return await run_quality(api, samples, pick=mode.samples, sessions=mode.sessions)
