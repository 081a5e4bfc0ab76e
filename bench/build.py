"""Build the scale data dirs through HTTP, measuring ingest throughput on the way.

A memoryd subprocess ingests the corpus (``bench._corpus``) through
``POST /v4/conversations``, a few conversations in flight, and is stopped at
each snapshot size so that its SQLite file can be copied as that size's data
dir. Before it starts, the raw embedding model embeds the same texts memoryd
will embed for the first messages (same model, threads and batch size), in
this process while nothing else of the bench runs: the reference rate.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from attrs import define

from bench import _http
from bench._corpus import Conversation, Corpus
from bench._server import Server, start_server
from bench._stats import per_second
from memoryd.core.memories import build_memories
from memoryd.core.model import Message, StoredMessage
from memoryd.settings import Settings, load_settings

DB = "memoryd.sqlite3"
#: Conversations in flight while ingesting.
CONCURRENCY = 4


@define
class RawRate:
    messages: int
    texts: int
    seconds: float
    batch: int
    threads: int

    @property
    def messages_per_second(self) -> float:
        return per_second(self.messages, self.seconds)


@define
class Stage:
    """One stretch of ingest, from the previous snapshot to this one."""

    size: int
    conversations: int
    messages: int
    memories: int
    seconds: float
    server_cpu_seconds: float
    load_average: tuple[float, float, float]

    @property
    def messages_per_second(self) -> float:
        return per_second(self.messages, self.seconds)


@define
class Build:
    key: str
    tenant: str
    built_at: str
    raw: RawRate
    stages: list[Stage]
    dirs: dict[int, str]

    @property
    def messages(self) -> int:
        return sum(s.messages for s in self.stages)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def messages_per_second(self) -> float:
        return per_second(self.messages, self.seconds)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(attrs.asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Build:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            key=raw["key"],
            tenant=raw["tenant"],
            built_at=raw["built_at"],
            raw=RawRate(**raw["raw"]),
            stages=[
                Stage(**{**s, "load_average": tuple(s["load_average"])}) for s in raw["stages"]
            ],
            dirs={int(k): v for k, v in raw["dirs"].items()},
        )


def server_settings(env: Mapping[str, str]) -> Settings:
    """The settings a bench server runs with (defaults + the bench's ``MEMORYD_*``)."""
    return load_settings(env=dict(env))


def embed_texts(conversations: Sequence[Conversation], settings: Settings) -> list[str]:
    """The texts memoryd embeds for these conversations, built by memoryd's own policy."""
    from memoryd.bootstrap import Container

    policy = Container(settings=settings).policy()
    now = datetime.now(UTC)
    texts: list[str] = []
    for conversation in conversations:
        stored = [
            StoredMessage(
                message=Message.from_text(
                    m["role"],
                    m["content"],
                    name=m["name"],
                    timestamp=datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00")),
                ),
                position=i,
                received_at=now,
            )
            for i, m in enumerate(conversation.messages)
        ]
        texts += [t for d in build_memories(stored, start=0, policy=policy) for t in d.embed_texts]
    return texts


def raw_rate(
    conversations: Sequence[Conversation], settings: Settings, env: Mapping[str, str] | None = None
) -> RawRate:
    """The embedding model alone on the texts memoryd embeds for ``conversations``.

    The model is the one the server's ``env`` configures (``bench._encoder``), opened
    with its threads and batch size; without ``env``, the one ``settings`` name.
    """
    from bench._encoder import open_encoder

    texts = embed_texts(conversations, settings)
    batch = settings.embedding_batch_size
    with open_encoder(env if env is not None else {"MEMORYD_EMBEDDER": settings.embedder}) as model:
        model.encode(texts[:batch], query=False)  # warm up
        started = time.perf_counter()
        for s in range(0, len(texts), batch):
            model.encode(texts[s : s + batch], query=False)
        seconds = time.perf_counter() - started
    return RawRate(
        messages=sum(len(c.messages) for c in conversations),
        texts=len(texts),
        seconds=seconds,
        batch=batch,
        threads=settings.embedding_threads,
    )


def _split(conversations: Sequence[Conversation], sizes: Sequence[int]) -> list[list[Conversation]]:
    """Consecutive runs of conversations ending at the first boundary past each size."""
    parts: list[list[Conversation]] = [[] for _ in sizes]
    total = 0
    stage = 0
    for conversation in conversations:
        while stage < len(sizes) - 1 and total >= sizes[stage]:
            stage += 1
        parts[stage].append(conversation)
        total += len(conversation.messages)
    return parts


def copy_data(source: Path, target: Path) -> None:
    """Copy a stopped server's data dir (the SQLite file and any WAL beside it)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for f in source.glob(DB + "*"):
        shutil.copy2(f, target / f.name)


async def build(
    corpus: Corpus,
    sizes: Sequence[int],
    work: Path,
    env: Mapping[str, str],
    *,
    raw_messages: int,
    log: Any = print,
) -> Build:
    """Ingest the corpus up to ``sizes[-1]`` messages, snapshotting each size."""

    conversations = list(corpus.conversations(sizes[-1]))
    settings = server_settings(env)
    sample: list[Conversation] = []
    for c in conversations:
        if sum(len(x.messages) for x in sample) >= raw_messages:
            break
        sample.append(c)
    log(f"raw embedder on {sum(len(c.messages) for c in sample)} messages ...")
    raw = raw_rate(sample, settings, env)
    log(f"  raw: {raw.messages_per_second:.1f} messages/s")
    live = work / "ingest"
    if live.exists():
        shutil.rmtree(live)
    stages: list[Stage] = []
    dirs: dict[int, str] = {}
    key = ""
    for size, part in zip(sizes, _split(conversations, sizes), strict=True):
        with start_server(live, env=env) as server:
            key = server.key or key
            stage = await ingest_stage(server, key, part, size)
            stages.append(stage)
            log(f"  {size}: {stage.messages_per_second:.1f} messages/s")
        target = work / f"data-{size}"
        copy_data(live, target)
        dirs[size] = str(target)
    shutil.rmtree(live)
    return Build(
        key=key,
        tenant="default",
        built_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        raw=raw,
        stages=stages,
        dirs=dirs,
    )


@define
class IngestRun:
    """Ingest throughput with the raw embedder measured right before and right after."""

    raw_before: RawRate
    raw_after: RawRate
    stage: Stage

    @property
    def raw_messages_per_second(self) -> float:
        return (self.raw_before.messages_per_second + self.raw_after.messages_per_second) / 2

    @property
    def messages_per_second(self) -> float:
        return self.stage.messages_per_second

    @property
    def share(self) -> float:
        raw = self.raw_messages_per_second
        return self.messages_per_second / raw if raw else 0.0


async def ingest_stage(
    server: Server, key: str, conversations: Sequence[Conversation], size: int
) -> Stage:
    """``conversations`` posted to ``server`` through HTTP, with the server's CPU time."""
    from bench.machine import load_average

    cpu = server.cpu_seconds()
    async with _http.client(server.url, key) as api:
        stats = await _http.ingest(api, conversations, concurrency=CONCURRENCY)
    return Stage(
        size=size,
        conversations=stats.conversations,
        messages=stats.messages,
        memories=stats.memories,
        seconds=stats.seconds,
        server_cpu_seconds=server.cpu_seconds() - cpu,
        load_average=load_average(),
    )


async def measure_ingest(
    corpus: Corpus,
    messages: int,
    work: Path,
    env: Mapping[str, str],
    *,
    raw_messages: int,
    log: Any = print,
) -> IngestRun:
    """A fresh memoryd ingests ``messages`` messages; the raw model runs just before and after.

    The raw model embeds the texts memoryd embeds for the first
    ``raw_messages`` of them, in this process while the server is idle.
    """

    conversations = list(corpus.conversations(messages, prefix="t"))
    settings = server_settings(env)
    sample: list[Conversation] = []
    for c in conversations:
        if sum(len(x.messages) for x in sample) >= raw_messages:
            break
        sample.append(c)
    live = work / "ingest-throughput"
    shutil.rmtree(live, ignore_errors=True)
    with start_server(live, env=env) as server:
        assert server.key is not None
        before = raw_rate(sample, settings, env)
        log(f"  raw before: {before.messages_per_second:.1f} messages/s")
        stage = await ingest_stage(server, server.key, conversations, messages)
        log(f"  memoryd: {stage.messages_per_second:.1f} messages/s")
        after = raw_rate(sample, settings, env)
        log(f"  raw after: {after.messages_per_second:.1f} messages/s")
    shutil.rmtree(live, ignore_errors=True)
    return IngestRun(raw_before=before, raw_after=after, stage=stage)


def run_build(
    corpus: Corpus,
    sizes: Sequence[int],
    work: Path,
    env: Mapping[str, str],
    *,
    raw_messages: int,
    reuse: bool,
    log: Any = print,
) -> tuple[Build, bool]:
    """The build for ``sizes``, reused from ``work`` when asked and present."""
    marker = work / ("build-" + "-".join(map(str, sizes)) + ".json")
    if reuse and marker.exists():
        found = Build.load(marker)
        if all(Path(d, DB).exists() for d in found.dirs.values()):
            return found, True
    work.mkdir(parents=True, exist_ok=True)
    made = asyncio.run(build(corpus, sizes, work, env, raw_messages=raw_messages, log=log))
    made.save(marker)
    return made, False
