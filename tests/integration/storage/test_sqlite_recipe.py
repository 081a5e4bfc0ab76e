"""The retrieval recipe in the SQLite index: neighbours' words, pieces, scopes, common words."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs
import numpy as np

from memoryd.adapters.storage.sqlite import SqliteBackend, open_sqlite
from memoryd.adapters.storage.sqlite._schema import MIGRATIONS, SCHEMA_VERSION, run_steps
from memoryd.core.filters import MemoryFilter
from memoryd.core.model import Message
from memoryd.core.ports import IndexChange, IndexQuery, KeywordHit
from tests.integration.storage.sqlite_helpers import (
    DIM,
    MODEL,
    conversation,
    created,
    index_change,
    memory,
    settle,
    stored,
    unit,
)
from tests.integration.storage.test_sqlite_index import ingest

RNG = np.random.default_rng(7)


async def keyword(backend: SqliteBackend, text: str, **filter_args: object) -> list[str]:
    found = await backend.index.search(
        IndexQuery(MemoryFilter("acme", **filter_args), unit(RNG), text, k=50)  # type: ignore[arg-type]
    )
    ranked = sorted((c for c in found if c.keyword_rank is not None), key=lambda c: c.keyword_rank)
    assert all(c.keyword_score is not None and c.keyword_score > 0 for c in ranked)
    return [c.memory_id for c in ranked]


async def test_neighbours_words_find_a_turn_but_rank_below_its_own(
    backend: SqliteBackend,
) -> None:
    own = memory("acme", "c1", "own", "we hiked the volcano trail", unit(RNG))
    near = memory(
        "acme", "c2", "near", "yes, last tuesday!", unit(RNG), context="Did you hike the volcano?"
    )
    await ingest(backend, [own, near])
    assert await keyword(backend, "volcano") == ["own", "near"]


async def test_appended_turns_update_the_following_context(backend: SqliteBackend) -> None:
    messages = stored([Message.from_text("user", "Yes!"), Message.from_text("user", "more")])
    first = memory("acme", "c", "m0", "yes!", unit(RNG))
    conv = conversation("acme", "c", messages[:1])
    change = created(conv, [first])
    await backend.conversations.commit(change)
    await backend.index.apply(index_change(conv, change))
    assert await keyword(backend, "kayak") == []

    appended = attrs.evolve(
        created(conversation("acme", "c", messages), []),
        kind="appended",
        new_messages=messages[1:],
        context_updates=((0, "Did you bring the kayak?"),),
    )
    await backend.conversations.commit(appended)
    assert await keyword(backend, "kayak") == []  # the index learns of it from the outbox
    await settle(backend)
    assert await keyword(backend, "kayak") == ["m0"]


async def test_pieces_score_their_best_and_leave_together(db_path: Path) -> None:
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    a, b, c = unit(RNG), unit(RNG), unit(RNG)
    try:
        await ingest(
            backend,
            [
                memory("acme", "c1", "pieces", "two pieces", np.stack([a, b])),
                memory("acme", "c2", "single", "one piece", c),
            ],
        )
        assert backend.index.size("acme") == 2
        found = await backend.index.search(IndexQuery(MemoryFilter("acme"), b, "", k=5))
        assert found[0].memory_id == "pieces"
        assert abs(found[0].similarity - 1.0) < 1e-5  # its second piece is the query
        # Only one candidate per memory, however many of its pieces rank.
        assert sorted(x.memory_id for x in found) == ["pieces", "single"]
    finally:
        await backend.close()

    reopened = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    try:
        found = await reopened.index.search(IndexQuery(MemoryFilter("acme"), a, "", k=1))
        assert [(x.memory_id, round(x.similarity, 4)) for x in found] == [("pieces", 1.0)]
        await reopened.index.apply(
            IndexChange(tenant_id="acme", conversation_id="c1", removed_memory_ids=("pieces",))
        )
        found = await reopened.index.search(IndexQuery(MemoryFilter("acme"), a, "", k=5))
        assert [x.memory_id for x in found] == ["single"]
    finally:
        await reopened.close()


async def test_a_small_tag_is_not_crowded_out_by_the_rest_of_the_tenant(
    backend: SqliteBackend,
) -> None:
    crowd = [
        memory("acme", f"big{i}", f"big{i}", "apple pie recipe", unit(RNG), tags=("big",))
        for i in range(300)
    ]
    small = [
        memory("acme", f"small{i}", f"small{i}", f"apple tart {i}", unit(RNG), tags=("small",))
        for i in range(3)
    ]
    await ingest(backend, [*crowd, *small])
    assert sorted(await keyword(backend, "apple", container_tags=("small",))) == [
        "small0",
        "small1",
        "small2",
    ]


async def test_words_in_most_of_a_scope_are_not_ranked(backend: SqliteBackend) -> None:
    # "caroline" is in every memory of the tag, as a speaker's name is in a conversation.
    items = [
        memory("acme", f"c{i}", f"m{i}", f"caroline: topic{i} words", unit(RNG), tags=("chat",))
        for i in range(120)
    ]
    await ingest(backend, items)
    assert await keyword(backend, "caroline", container_tags=("chat",)) == []
    assert await keyword(backend, "caroline topic7", container_tags=("chat",)) == ["m7"]
    # Small scopes keep every word: with four memories nothing is "too common".
    few = [memory("acme", f"f{i}", f"f{i}", "bees", unit(RNG), tags=("few",)) for i in range(4)]
    await ingest(backend, few)
    assert len(await keyword(backend, "bees", container_tags=("few",))) == 4


async def test_a_version_1_file_is_migrated_and_its_memories_stay_searchable(
    db_path: Path,
) -> None:
    # A file as memoryd wrote it at version 1, with one memory.
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        run_steps(conn, MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("embedding_model", MODEL), ("embedding_dimension", str(DIM))],
        )
        conn.execute(
            "INSERT INTO conversations (rowid, id, tenant_id, conversation_id, tags, metadata)"
            " VALUES (1, 'x', 'acme', 'c1', '[]', '{}')"
        )
        conn.execute(
            "INSERT INTO memories (id, tenant_id, conversation, conversation_id, said_at_us,"
            " tags, metadata, vector, positions, text) VALUES"
            " ('old', 'acme', 1, 'c1', 0, '[]', '{}', ?, '[0]', 'the lighthouse keeper')",
            (unit(RNG).astype(np.float32).tobytes(),),
        )
    migrated = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    try:
        assert await keyword(migrated, "lighthouse") == ["old"]
        await ingest(
            migrated, [memory("acme", "c2", "new", "yes!", unit(RNG), context="the lighthouse")]
        )
        assert await keyword(migrated, "lighthouse") == ["old", "new"]
    finally:
        await migrated.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6


async def test_the_keyword_side_runs_alone_and_its_hits_feed_the_search(
    backend: SqliteBackend,
) -> None:
    items = [
        memory("acme", "c1", "hive", "bees in the hive", unit(RNG), tags=("garden",)),
        memory("acme", "c2", "honey", "bees make honey", unit(RNG), tags=("kitchen",)),
        memory("acme", "c3", "other", "nothing to see", unit(RNG), tags=("garden",)),
    ]
    await ingest(backend, items)
    garden = MemoryFilter("acme", container_tags=("garden",))
    hits = await backend.index.keyword_search(garden, "bees", 10)
    assert [(h.memory_id, h.score > 0) for h in hits] == [("hive", True)]
    assert await backend.index.keyword_search(garden, "  ", 10) == ()
    assert await backend.index.keyword_search(MemoryFilter("nobody"), "bees", 10) == ()

    # Given hits are used as they are: the index does not search the text again.
    given = (KeywordHit("other", 3.0),)
    found = await backend.index.search(IndexQuery(garden, unit(RNG), "bees", 10, given))
    by_id = {c.memory_id: c for c in found}
    assert by_id["other"].keyword_rank == 0
    assert by_id["other"].keyword_score == 3.0
    assert by_id["hive"].keyword_rank is None


async def last_rowid(backend: SqliteBackend) -> int:
    def read(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT max(rowid) FROM memories").fetchone()[0])

    return await backend.conversations.db.read(read)


async def test_keyword_hits_follow_a_rowid_that_sqlite_reuses(backend: SqliteBackend) -> None:
    # The keyword side maps FTS5 rowids to memories in memory. SQLite gives the
    # next row the rowid of a deleted last row: the map must follow.
    await ingest(backend, [memory("acme", "c1", "kayak", "we rented a kayak", unit(RNG))])
    before = await last_rowid(backend)
    conv = conversation("acme", "c1", stored([Message.from_text("user", "a canoe")]))
    replaced = attrs.evolve(
        created(conv, [memory("acme", "c1", "canoe", "we rented a canoe", unit(RNG))]),
        kind="replaced",
        removed_memory_ids=("kayak",),
    )
    await backend.conversations.commit(replaced)
    await backend.index.apply(index_change(conv, replaced))
    after = await last_rowid(backend)
    assert after == before  # the rowid was reused
    assert await keyword(backend, "canoe") == ["canoe"]
    assert await keyword(backend, "kayak") == []

    # Another tenant's memory on the reused rowid is not this tenant's hit.
    removed = await backend.conversations.delete_conversation("acme", "c1")
    assert removed == ("canoe",)
    await backend.index.apply(IndexChange("acme", "c1", removed_memory_ids=removed))
    await ingest(backend, [memory("globex", "g1", "theirs", "a canoe of theirs", unit(RNG))])
    assert await keyword(backend, "canoe") == []
