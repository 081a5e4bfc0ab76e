"""Re-embedding a data dir under another model (``memoryd reindex --embedder``), measured.

One memoryd (embedder A) ingests LoCoMo conversations through HTTP and the
questions are searched; the server stops; ``memoryd reindex --embedder B``
re-embeds the data dir (a subprocess, as a user runs it); a memoryd on B
starts on the same dir and the same questions are searched again. Reported:
the models recorded in the file before and after, the counts the command
printed, its wall time, and recall before and after (``bench.locomo_eval``)::

    python -m bench.reindex --source minilm --target mpnet [--samples 0,1] [--sessions 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from attrs import define

from bench import locomo_eval as le
from bench._http import client
from bench._server import BASE_ENV, start_server
from bench.build import DB
from bench.quality import ingest_locomo, search_questions, subset

#: ``Re-embedded 3 conversations, 3 memories with 'multilingual-e5-small-q4'.``
DONE_LINE = re.compile(r"^Re-embedded (\d+) conversations, (\d+) memories with '([^']+)'\.$", re.M)


@define
class ReindexResult:
    source: str
    target: str
    #: ``embedding_model`` in the file's meta table, before and after the command.
    model_before: str
    model_after: str
    conversations: int
    memories: int
    #: What the command printed it re-embedded.
    reembedded_conversations: int
    reembedded_memories: int
    memory_ids_before: int
    memory_ids_after: int
    #: Memory ids present both before and after (re-embedded memories get new ids).
    memory_ids_kept: int
    seconds: float
    questions: int
    before: dict[str, list[le.Summary]]
    after: dict[str, list[le.Summary]]

    @property
    def memories_per_second(self) -> float:
        return self.reembedded_memories / self.seconds if self.seconds else 0.0


def _meta_and_ids(database: Path) -> tuple[str, set[str]]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        (model,) = conn.execute("SELECT value FROM meta WHERE key = 'embedding_model'").fetchone()
        ids = {r[0] for r in conn.execute("SELECT id FROM memories")}
        return str(model), ids
    finally:
        conn.close()


def reindex_command(
    data_dir: Path, target: str, env: Mapping[str, str], *, timeout: float = 3600
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``memoryd reindex --embedder TARGET`` on ``data_dir``, as a user runs it; its wall time."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORYD_")}
    full_env.update(BASE_ENV)
    full_env.update(env)
    full_env.update(MEMORYD_DATA_DIR=str(data_dir))
    command = [sys.executable, "-m", "memoryd", "reindex", "--embedder", target]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--data-dir", str(data_dir)],
        env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"memoryd reindex --embedder {target} exited with {done.returncode}:\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return done, seconds


async def _ingest_and_search(
    url: str, key: str, samples: Sequence[le.Sample]
) -> tuple[int, int, list[le.Scored]]:
    async with client(url, key) as api:
        conversations, memories = await ingest_locomo(api, samples)
        scored, _ = await search_questions(api, samples)
    return conversations, memories, scored


async def _search(url: str, key: str, samples: Sequence[le.Sample]) -> list[le.Scored]:
    async with client(url, key) as api:
        scored, _ = await search_questions(api, samples)
    return scored


def run_reindex(
    samples: Sequence[le.Sample],
    work: Path,
    *,
    source: str,
    target: str,
    pick: Sequence[int],
    sessions: int | None,
    env: Mapping[str, str] | None = None,
) -> ReindexResult:
    """Ingest ``pick`` on ``source``, re-embed the dir with ``target``, search on both.

    ``env``: further ``MEMORYD_*`` settings for the servers and the command (a
    plugin's section, ``MEMORYD_PLUGIN_GGUF__MODEL_PATH`` for ``gguf``).
    """
    chosen = [subset(samples[i], sessions) for i in pick]
    data = work / "reindex"
    shutil.rmtree(data, ignore_errors=True)
    extra = dict(env or {})
    with start_server(data, env={**extra, "MEMORYD_EMBEDDER": source}) as server:
        assert server.key is not None
        key = server.key
        conversations, memories, before = asyncio.run(_ingest_and_search(server.url, key, chosen))
    model_before, ids_before = _meta_and_ids(data / DB)
    done, seconds = reindex_command(data, target, {**extra, "MEMORYD_EMBEDDER": source})
    found = DONE_LINE.search(done.stdout)
    if found is None:
        raise RuntimeError(f"memoryd reindex printed no 'Re-embedded ...' line:\n{done.stdout}")
    model_after, ids_after = _meta_and_ids(data / DB)
    with start_server(data, env={**extra, "MEMORYD_EMBEDDER": target}) as server:
        after = asyncio.run(_search(server.url, key, chosen))
    return ReindexResult(
        source=source,
        target=target,
        model_before=model_before,
        model_after=model_after,
        conversations=conversations,
        memories=memories,
        reembedded_conversations=int(found.group(1)),
        reembedded_memories=int(found.group(2)),
        memory_ids_before=len(ids_before),
        memory_ids_after=len(ids_after),
        memory_ids_kept=len(ids_before & ids_after),
        seconds=seconds,
        questions=len(after),
        before=le.report(before),
        after=le.report(after),
    )


def section(r: ReindexResult) -> list[str]:
    """The result as Markdown (a heading, a sentence and the recall before and after)."""
    from bench.report import summary_table

    return [
        "## Re-embedding a data dir (`memoryd reindex --embedder`)",
        "",
        f"`{r.source}` ({r.model_before}) → `{r.target}` ({r.model_after}): "
        f"{r.reembedded_conversations} conversations, {r.reembedded_memories:,} memories "
        f"re-embedded in {r.seconds:.1f} s ({r.memories_per_second:.1f} memories/s, the "
        f"command's wall time with its model load); {r.questions} questions searched before "
        "and after.",
        "",
        *summary_table(r.before, f"before, on {r.source}"),
        *summary_table(r.after, f"after, on {r.target}"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.reindex", description=__doc__)
    parser.add_argument("--source", default="minilm", help="the embedder that ingests")
    parser.add_argument("--target", default="e5", help="the embedder reindex switches to")
    parser.add_argument("--samples", default="0", help="LoCoMo samples, comma-separated")
    parser.add_argument("--sessions", type=int, default=None, help="first N sessions of each")
    parser.add_argument("--locomo", type=Path, default=le.DEFAULT_PATH)
    args = parser.parse_args(argv)
    plugin_env = {k: v for k, v in os.environ.items() if k.startswith("MEMORYD_PLUGIN_")}
    with tempfile.TemporaryDirectory(prefix="memoryd-reindex-") as tmp:
        result = run_reindex(
            le.load_locomo(args.locomo), Path(tmp), source=args.source, target=args.target,
            pick=[int(x) for x in args.samples.split(",")], sessions=args.sessions,
            env=plugin_env,
        )  # fmt: skip
    print("\n".join(section(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
