"""The SQLite index keeps its own tables and learns only from ``IndexChange`` values."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import attrs
import numpy as np

from memoryd.adapters.storage.sqlite import SqliteBackend, open_sqlite
from memoryd.adapters.storage.sqlite._schema import MIGRATIONS, SCHEMA_VERSION, run_steps
from memoryd.core.filters import MemoryFilter
from memoryd.core.memories import memory_text
from memoryd.core.model import Message
from memoryd.core.ports import IndexChange, IndexQuery
from tests.integration.storage.sqlite_helpers import (
    DIM,
    MODEL,
    conversation,
    created,
    memory,
    settle,
    stored,
    unit,
)

RNG = np.random.default_rng(23)
SAID = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)


async def search(backend: SqliteBackend, text: str, tags: tuple[str, ...] = ()) -> list[str]:
    found = await backend.index.search(
        IndexQuery(MemoryFilter("acme", container_tags=tags), unit(RNG), text, k=10)
    )
    return sorted(c.memory_id for c in found if c.keyword_rank is not None)


async def test_the_index_answers_from_its_own_tables_alone(backend: SqliteBackend) -> None:
    item = memory("acme", "c1", "m1", "the lighthouse keeper", unit(RNG), tags=("sea",))
    item = attrs.evolve(item, memory=attrs.evolve(item.memory, speaker="Caroline"))
    conv = conversation("acme", "c1", stored([Message.from_text("user", "x")]), tags=("sea",))
    await backend.conversations.commit(created(conv, [item]))
    await settle(backend)

    # The store's rows are gone (behind the index's back): the index still has its copy.
    def drop_store_rows(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM memories")
        conn.execute("COMMIT")

    await backend._db.write(drop_store_rows)
    (got,) = await backend.index.fetch("acme", ["m1"])
    assert got == item.memory
    # The keyword side matches the memory as search shows it: its speaker too.
    assert await search(backend, "lighthouse", ("sea",)) == ["m1"]
    assert await search(backend, "caroline") == ["m1"]

    # And it learns of changes only from what it is applied.
    await backend.index.apply(
        IndexChange(
            "acme",
            "c1",
            container_tags=("land",),
            metadata={"k": 1},
            context_updates=((0, "the kayak"),),
        )
    )
    (got,) = await backend.index.fetch("acme", ["m1"])
    assert (got.container_tags, dict(got.metadata)) == (("land",), {"k": 1})
    assert await search(backend, "kayak", ("land",)) == ["m1"]
    assert await search(backend, "lighthouse", ("sea",)) == []
    await backend.index.apply(IndexChange("acme", "c1", removed_memory_ids=("m1",)))
    assert await backend.index.fetch("acme", ["m1"]) == []
    assert await search(backend, "lighthouse") == []


async def test_a_change_applied_twice_leaves_one_copy(db_path: Path) -> None:
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    item = memory("acme", "c1", "m1", "bees in the hive", unit(RNG))
    change = IndexChange("acme", "c1", added=(item,), container_tags=(), metadata={})
    try:
        await backend.index.apply(change)
        await backend.index.apply(change)
        assert await search(backend, "bees") == ["m1"]
    finally:
        await backend.close()
    reopened = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    try:
        assert reopened.index.size("acme") == 1
        assert await search(reopened, "bees") == ["m1"]
    finally:
        await reopened.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM index_memories").fetchone()[0] == 1


async def test_a_version_4_file_gets_speakers_and_an_index_of_its_own(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    vector = unit(RNG).astype(np.float32)
    said_us = int(SAID.timestamp() * 1_000_000)
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        for migration in MIGRATIONS[:4]:
            run_steps(conn, migration)
        conn.execute("PRAGMA user_version = 4")
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("embedding_model", MODEL), ("embedding_dimension", str(DIM))],
        )
        conn.execute(
            "INSERT INTO conversations (rowid, id, tenant_id, conversation_id, scope, tags,"
            " metadata) VALUES (3, 'x', 'acme', 'c1', '', '[\"t\"]', '{}')"
        )
        rows = [
            ("spoken", "[8 May 2023] Caroline: I went to the support group: it was great."),
            ("plain", "a text in no known form"),
        ]
        for mid, text in rows:
            conn.execute(
                "INSERT INTO memories (id, tenant_id, conversation, conversation_id, said_at_us,"
                " tags, metadata, vector, positions, text, context) VALUES"
                " (?, 'acme', 3, 'c1', ?, '[\"t\"]', '{}', ?, '[0]', ?, 'the kayak')",
                (mid, said_us, vector.tobytes(), text),
            )
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    try:
        spoken, plain = await backend.index.fetch("acme", ["spoken", "plain"])
        assert (spoken.speaker, spoken.text) == (
            "Caroline",
            "I went to the support group: it was great.",
        )
        assert memory_text(spoken) == rows[0][1]
        assert (plain.speaker, plain.text) == ("", "a text in no known form")
        assert spoken.container_tags == ("t",)
        # The old rows are searchable from the index's tables: words, speaker, context.
        assert await search(backend, "caroline support") == ["spoken"]
        assert await search(backend, "kayak", ("t",)) == ["plain", "spoken"]
        snapshot = [change async for change in backend.conversations.snapshot("acme")]
        assert [m.memory.speaker for m in snapshot[0].added] == ["Caroline", ""]
    finally:
        await backend.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "memories_fts" not in names
        assert {"index_memories", "index_fts"} <= names
