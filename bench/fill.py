"""Fill a data dir to a million memories through the store's port (issue 4 allows it).

Starting from a copy of a data dir that memoryd built through HTTP (real
embeddings), each of its conversations is written again, several times, by
``ConversationStore.commit`` (the port memoryd's ingest uses): the speakers
renamed, the dates moved, and every memory's vector the real one plus small
Gaussian noise, renormalised (cosine to the original about 0.96). The
server then starts on the file and rebuilds its index from it, like any start.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from attrs import define

from bench._corpus import NAMES, Renamer
from bench.build import DB, copy_data
from memoryd.adapters.storage.sqlite import open_sqlite
from memoryd.core.indexer import Indexer
from memoryd.core.memories import spoken_date
from memoryd.core.model import ContentPart, Conversation, Memory, Message, StoredMessage
from memoryd.core.ports import ConversationChange, IndexedMemory

#: Norm of the noise added to a unit vector (cosine to the original ~ 1/sqrt(1 + NOISE^2)).
NOISE = 0.3
#: A memory's date, as :func:`memoryd.core.memories.memory_text` writes it.
_DATE = re.compile(r"\[(\d{1,2} [A-Z][a-z]+ \d{4})\]")


@define
class Source:
    conversation_id: str
    metadata: dict[str, Any]
    messages: list[tuple[str, str, str | None, str | None]]
    #: text, positions, said_at_us, vectors (one per piece), context
    memories: list[tuple[str, list[int], int, bytes, str, str]]


@define
class FillResult:
    source_memories: int
    memories: int
    conversations: int
    seconds: float
    noise: float


def read_sources(database: Path, tenant: str) -> tuple[list[Source], str, int]:
    """The tenant's conversations with messages and memories; the model name and dimension."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        by_row: dict[int, Source] = {}
        for rowid, cid, metadata in conn.execute(
            "SELECT rowid, conversation_id, metadata FROM conversations WHERE tenant_id = ?"
            " ORDER BY rowid",
            (tenant,),
        ):
            by_row[rowid] = Source(cid, json.loads(metadata), [], [])
        for conv, role, content, name, timestamp in conn.execute(
            "SELECT conversation, role, content, name, timestamp FROM messages"
            " ORDER BY conversation, position"
        ):
            if conv in by_row:
                by_row[conv].messages.append((role, content, name, timestamp))
        for conv, text, positions, said_at, vector, context, speaker in conn.execute(
            "SELECT conversation, text, positions, said_at_us, vector, context, speaker"
            " FROM memories WHERE tenant_id = ? ORDER BY rowid",
            (tenant,),
        ):
            by_row[conv].memories.append(
                (text, json.loads(positions), said_at, vector, context, speaker)
            )
        return list(by_row.values()), meta["embedding_model"], int(meta["embedding_dimension"])
    finally:
        conn.close()


def _renamer(rng: random.Random) -> Renamer:
    shuffled = list(NAMES)
    rng.shuffle(shuffled)
    return Renamer(dict(zip(NAMES, shuffled, strict=True)))


def _shift_dates(text: str, days: int) -> str:
    def move(m: re.Match[str]) -> str:
        try:
            day = datetime.strptime(m.group(1), "%d %B %Y") + timedelta(days=days)
        except ValueError:
            return m.group(0)
        return f"[{spoken_date(day.date())}]"

    return _DATE.sub(move, text)


def variants(
    sources: list[Source], tenant: str, dim: int, need: int, *, seed: int, start_index: int
) -> Iterator[ConversationChange]:
    """Changes adding renamed, re-dated, noisy copies of the sources, ``need`` memories in all."""
    rng = random.Random(seed)
    noise_rng = np.random.default_rng(seed)
    made = 0
    index = start_index
    variant = 0
    now = datetime.now(UTC)
    while made < need:
        variant += 1
        rename = _renamer(rng)
        for source in sources:
            if made >= need or not source.memories:
                continue
            days = rng.randint(-2000, 2000)
            shift = timedelta(days=days)
            cid = f"{source.conversation_id}-v{variant}"
            tags = (f"user-{index % 100:02d}",)
            metadata = {**source.metadata, "bucket": index % 10}
            messages = tuple(
                StoredMessage(
                    message=Message(
                        role=role,  # type: ignore[arg-type]
                        content=tuple(
                            ContentPart(**{**p, "text": rename(p["text"])} if "text" in p else p)
                            for p in json.loads(content)
                        ),
                        name=rename(name) if name else None,
                        timestamp=datetime.fromisoformat(ts) + shift if ts else None,
                    ),
                    position=i,
                    received_at=now,
                )
                for i, (role, content, name, ts) in enumerate(source.messages)
            )
            memories = source.memories[: need - made]
            pieces = [np.frombuffer(m[3], np.float32).reshape(-1, dim) for m in memories]
            base = np.concatenate(pieces)
            noisy = base + noise_rng.standard_normal(base.shape, dtype=np.float32) * (
                NOISE / np.sqrt(dim)
            )
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            ends = np.cumsum([len(p) for p in pieces])
            conversation = Conversation(
                id=uuid.uuid4().hex,
                tenant_id=tenant,
                conversation_id=cid,
                messages=messages,
                container_tags=tags,
                metadata=metadata,
                created_at=now,
                updated_at=now,
            )
            added = tuple(
                IndexedMemory(
                    memory=Memory(
                        id=uuid.uuid4().hex,
                        tenant_id=tenant,
                        conversation_id=cid,
                        text=_shift_dates(rename(text), days),
                        positions=tuple(positions),
                        said_at=datetime(1970, 1, 1, tzinfo=UTC)
                        + timedelta(microseconds=said_at)
                        + shift,
                        container_tags=tags,
                        metadata=metadata,
                        created_at=now,
                        updated_at=now,
                        speaker=rename(speaker),
                    ),
                    vectors=noisy[ends[j] - len(pieces[j]) : ends[j]],
                    keyword_context=_shift_dates(rename(context), days),
                )
                for j, (text, positions, said_at, _, context, speaker) in enumerate(memories)
            )
            made += len(added)
            index += 1
            yield ConversationChange(
                kind="created",
                conversation=conversation,
                new_messages=messages,
                added=added,
                removed_memory_ids=(),
            )


async def fill(
    source_dir: Path, target_dir: Path, total: int, *, tenant: str, seed: int = 7, log: Any = print
) -> FillResult:
    """Copy ``source_dir`` to ``target_dir`` and fill it to ``total`` memories."""
    copy_data(source_dir, target_dir)
    database = target_dir / DB
    sources, model, dim = read_sources(database, tenant)
    have = sum(len(s.memories) for s in sources)
    backend = await open_sqlite(database, model_name=model, dimension=dim, load_index=False)
    indexer = Indexer(backend.conversations, backend.index)
    started = time.perf_counter()
    count = 0
    written = have
    try:
        for change in variants(
            sources, tenant, dim, total - have, seed=seed, start_index=len(sources)
        ):
            await backend.conversations.commit(change)
            count += 1
            written += len(change.added)
            if count % 500 == 0:
                # The index's tables learn of them as a server's would (a server opened
                # on the file would otherwise replay them all at start).
                await indexer.drain()
            if count % 2000 == 0:
                log(f"  fill: {written:,} memories ...")
        await indexer.drain()
    finally:
        await backend.close()
    return FillResult(
        source_memories=have,
        memories=_count(database, tenant),
        conversations=count,
        seconds=time.perf_counter() - started,
        noise=NOISE,
    )


def _count(database: Path, tenant: str) -> int:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM memories WHERE tenant_id = ?", (tenant,)
        ).fetchone()
        return int(n)
    finally:
        conn.close()
