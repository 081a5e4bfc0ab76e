"""Conversation scopes and forgotten citations in the SQLite file (schema v3)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import attrs
import numpy as np

from memoryd.adapters.storage.sqlite import SqliteBackend, open_sqlite
from memoryd.adapters.storage.sqlite._schema import MIGRATIONS, run_steps
from memoryd.core.filters import MemoryFilter
from memoryd.core.model import Citation, Conversation, Message, Thread, ThreadMessage
from memoryd.core.ports import ConversationChange, IndexChange, IndexedMemory, IndexQuery
from tests.integration.storage.sqlite_helpers import (
    DIM,
    MODEL,
    T0,
    conversation,
    created,
    memory,
    settle,
    stored,
    unit,
)

RNG = np.random.default_rng(11)


def cite(memory_id: str, text: str) -> Citation:
    return Citation(
        similarity=0.9,
        id=memory_id,
        content=text,
        type="conversation",
        url="https://example.org/" + memory_id,
        title="title " + text,
        description="about " + text,
        og_image="https://example.org/img.png",
        created_at=T0,
        updated_at=T0,
    )


async def write(
    backend: SqliteBackend,
    conv: Conversation,
    items: list[IndexedMemory],
) -> None:
    await backend.conversations.commit(created(conv, items))
    await backend.index.apply(
        IndexChange(
            tenant_id=conv.tenant_id,
            conversation_id=conv.conversation_id,
            added=tuple(items),
            container_tags=conv.container_tags,
            metadata=dict(conv.metadata),
            scope=conv.scope,
        )
    )


def scoped(tags: tuple[str, ...], text: str, *, scope: tuple[str, ...]) -> Conversation:
    conv = conversation("acme", "c1", stored([Message.from_text("user", text)]), tags=tags)
    return attrs.evolve(conv, id=f"id-{text}", scope=scope)


async def search_ids(backend: SqliteBackend, **filter_args: object) -> set[str]:
    found = await backend.index.search(
        IndexQuery(MemoryFilter("acme", **filter_args), unit(RNG), "secret", k=50)  # type: ignore[arg-type]
    )
    return {c.memory_id for c in found}


async def test_two_scopes_hold_conversations_of_one_id_apart(
    backend: SqliteBackend, db_path: Path
) -> None:
    admins = scoped(("t2",), "admin secret", scope=())
    theirs = scoped(("a",), "their secret", scope=("a",))
    await write(backend, admins, [memory("acme", "c1", "m-admin", "admin secret", unit(RNG))])
    later = attrs.evolve(theirs, updated_at=T0.replace(year=2026))
    await write(backend, later, [memory("acme", "c1", "m-a", "their secret", unit(RNG))])

    convs = backend.conversations
    got = await convs.get_conversation("acme", "c1", scope=("a",))
    assert got is not None
    assert (got.id, got.scope, got.container_tags) == ("id-their secret", ("a",), ("a",))
    assert (await convs.get_conversation("acme", "c1")).id == "id-admin secret"  # type: ignore[union-attr]
    assert await convs.get_conversation("acme", "c1", scope=("b",)) is None
    # Across scopes: the empty scope's first, though the other is newer.
    assert (await convs.get_conversation("acme", "c1", scope=None)).id == "id-admin secret"  # type: ignore[union-attr]
    assert await convs.memory_ids("acme", "c1", scope=("a",)) == ("m-a",)
    assert await convs.memory_ids("acme", "c1") == ("m-admin",)
    (fetched,) = await backend.index.fetch("acme", ["m-a"])
    assert (fetched.scope, fetched.document) == (("a",), (("a",), "c1"))

    # Retagging one scope's conversation leaves the other's memories as they were.
    await backend.conversations.commit(ConversationChange("unchanged", theirs, (), (), ()))
    await backend.index.apply(
        IndexChange("acme", "c1", container_tags=("a",), metadata={}, scope=("a",))
    )
    assert await search_ids(backend, container_tags=("a",)) == {"m-a"}
    assert await search_ids(backend, container_tags=("t2",)) == {"m-admin"}
    await backend.close()
    reopened = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    try:
        # The rebuilt index names conversations by scope too.
        await reopened.index.apply(
            IndexChange("acme", "c1", container_tags=("a", "x"), metadata={}, scope=("a",))
        )
        assert await search_ids(reopened, container_tags=("t2",)) == {"m-admin"}
        assert await search_ids(reopened, container_tags=("x",)) == {"m-a"}

        # A scoped delete takes its own; a delete across scopes takes every one.
        assert await reopened.conversations.delete_conversation("acme", "c1", scope=("b",)) is None
        assert await reopened.conversations.delete_conversation("acme", "c1", scope=("a",)) == (
            "m-a",
        )
        await write(reopened, theirs, [memory("acme", "c1", "m-a2", "again", unit(RNG))])
        removed = await reopened.conversations.delete_conversation("acme", "c1", scope=None)
        assert sorted(removed or ()) == ["m-a2", "m-admin"]
        assert await reopened.conversations.get_conversation("acme", "c1", scope=None) is None
    finally:
        await reopened.close()


async def test_forgetting_rewrites_only_the_messages_that_cite_the_memories(
    backend: SqliteBackend, db_path: Path
) -> None:
    conv = scoped((), "x", scope=())
    items = [memory("acme", "c1", m, m, unit(RNG)) for m in ("m1", "m2")]
    await write(backend, conv, items)
    threads = backend.threads
    await threads.create_thread(Thread(id="t1", tenant_id="acme", created_at=T0))
    await threads.create_thread(Thread(id="t2", tenant_id="acme", created_at=T0))
    await threads.create_thread(Thread(id="t1", tenant_id="globex", created_at=T0))
    both = ThreadMessage("assistant", "a", (cite("m1", "one"), cite("m2", "two")), created_at=T0)
    await threads.append_messages("acme", "t1", [ThreadMessage("user", "q"), both])
    await threads.append_messages(
        "acme", "t2", [ThreadMessage("assistant", "b", (cite("m2", "2"),))]
    )
    # Another tenant's message citing the same id is not touched.
    await threads.append_messages(
        "globex", "t1", [ThreadMessage("assistant", "c", (cite("m1", "g"),))]
    )

    assert await threads.forget_citations("acme", ["m1", "nope"]) == 1
    assert await threads.forget_citations("acme", ["m1"]) == 0  # once is enough
    t1 = await threads.get_thread("acme", "t1")
    assert t1 is not None
    gone, kept = t1.messages[1].annotations
    assert gone == attrs.evolve(
        cite("m1", "one"),
        content="",
        url="",
        title="",
        description="",
        og_image="",
        forgotten=True,
    )
    assert kept == cite("m2", "two")
    assert t1.messages[1].content == "a"  # the answer's text stays
    assert t1.updated_at == T0  # nobody wrote to the thread
    t2 = await threads.get_thread("acme", "t2")
    assert t2 is not None
    assert t2.messages[0].annotations == (cite("m2", "2"),)
    other = await threads.get_thread("globex", "t1")
    assert other is not None
    # globex has no memory m1: its citation was stored forgotten already.
    assert other.messages[0].annotations[0].forgotten

    with sqlite3.connect(db_path) as conn:
        plan = " ".join(
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT DISTINCT thread, seq FROM thread_citations"
                " WHERE tenant_id = ? AND memory_id IN (?, ?)",
                ("acme", "m1", "m2"),
            )
        )
        assert "SEARCH thread_citations USING PRIMARY KEY" in plan, plan
        # Deleting a thread deletes its citations.
        assert conn.execute("SELECT count(*) FROM thread_citations").fetchone()[0] == 2
    assert await threads.delete_thread("acme", "t1")
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT memory_id FROM thread_citations").fetchall()
        assert rows == [("m2",)]


async def test_a_citation_of_a_memory_deleted_while_the_answer_streamed_is_stored_forgotten(
    backend: SqliteBackend,
) -> None:
    conv = scoped((), "x", scope=())
    await write(backend, conv, [memory("acme", "c1", "m1", "x", unit(RNG))])
    await backend.threads.create_thread(Thread(id="t", tenant_id="acme", created_at=T0))
    # The delete (and its forget_citations) ran before the answer was saved.
    assert await backend.conversations.delete_conversation("acme", "c1") == ("m1",)
    assert await backend.threads.forget_citations("acme", ["m1"]) == 0
    await backend.threads.append_messages(
        "acme", "t", [ThreadMessage("assistant", "a", (cite("m1", "secret"),))]
    )
    thread = await backend.threads.get_thread("acme", "t")
    assert thread is not None
    (annotation,) = thread.messages[0].annotations
    assert (annotation.id, annotation.content, annotation.forgotten) == ("m1", "", True)


async def test_deleting_a_conversation_forgets_its_citations_in_the_same_transaction(
    backend: SqliteBackend, db_path: Path
) -> None:
    # A crash right after the delete's commit must leave no quoted text: the delete
    # alone (no forget_citations after it) forgets the citations of its memories.
    await write(backend, scoped((), "x", scope=()), [memory("acme", "c1", "m1", "x", unit(RNG))])
    other = scoped((), "y", scope=())
    await write(
        backend,
        attrs.evolve(other, id="id-other", conversation_id="c2"),
        [memory("acme", "c2", "m2", "y", unit(RNG))],
    )
    await backend.threads.create_thread(Thread(id="t", tenant_id="acme", created_at=T0))
    answer = ThreadMessage("assistant", "a", (cite("m1", "quoted"), cite("m2", "kept")))
    await backend.threads.append_messages("acme", "t", [answer])

    assert await backend.conversations.delete_conversation("acme", "c1") == ("m1",)

    with sqlite3.connect(db_path) as conn:
        (stored_json,) = conn.execute("SELECT annotations FROM thread_messages").fetchone()
        assert "quoted" not in stored_json
        cited = conn.execute("SELECT memory_id FROM thread_citations").fetchall()
        assert cited == [("m2",)]
    thread = await backend.threads.get_thread("acme", "t")
    assert thread is not None
    gone, kept = thread.messages[0].annotations
    assert (gone.id, gone.content, gone.title, gone.forgotten) == ("m1", "", "", True)
    assert kept == cite("m2", "kept")
    assert await backend.threads.forget_citations("acme", ["m1"]) == 0


def checkpointed_bytes(db_path: Path) -> bytes:
    """The database file's bytes and its log's, once the log is checkpointed."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_a_deleted_conversations_text_is_not_left_in_the_file(
    backend: SqliteBackend, db_path: Path
) -> None:
    # secure_delete is set on every connection, whatever the SQLite build's default.
    phrase = "Zq#quokka@lantern!77 is the vault's password"
    conv = conversation("acme", "c1", stored([Message.from_text("user", phrase)]))
    await write(backend, conv, [memory("acme", "c1", "m1", phrase, unit(RNG))])
    assert await backend.conversations.delete_conversation("acme", "c1") == ("m1",)
    await settle(backend)  # the index's copy goes when it applies the deletion
    # (The keyword index keeps single tokens until its segments merge, never the phrase.)
    assert phrase.encode() not in checkpointed_bytes(db_path)


async def test_a_version_2_file_is_migrated_keeping_every_row(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        for migration in MIGRATIONS[:2]:
            run_steps(conn, migration)
        conn.execute("PRAGMA user_version = 2")
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("embedding_model", MODEL), ("embedding_dimension", str(DIM))],
        )
        conn.execute(
            "INSERT INTO conversations (rowid, id, tenant_id, conversation_id, tags, metadata,"
            " updated_at) VALUES (7, 'x', 'acme', 'c1', '[\"t1\"]', '{}', ?)",
            ("2025-01-01T00:00:00+00:00",),
        )
        conn.execute(
            "INSERT INTO messages (conversation, position, role, content, received_at) VALUES"
            ' (7, 0, \'user\', \'[{"type":"text","text":"the old secret"}]\','
            " '2025-01-01T00:00:00+00:00')"
        )
        conn.execute(
            "INSERT INTO memories (id, tenant_id, conversation, conversation_id, said_at_us,"
            " tags, metadata, vector, positions, text) VALUES"
            " ('old', 'acme', 7, 'c1', 0, '[\"t1\"]', '{}', ?, '[0]', 'the old secret')",
            (unit(RNG).astype(np.float32).tobytes(),),
        )
        conn.execute(
            "INSERT INTO threads (rowid, id, tenant_id, title) VALUES (3, 't', 'acme', '')"
        )
        old_citations = [
            attrs.asdict(attrs.evolve(cite(mid, "the old secret"), forgotten=False))
            for mid in ("old", "older")
        ]
        for cited in old_citations:
            del cited["forgotten"]  # written before the field existed
            # ... and when citations held their times as the API writes them.
            cited["created_at"] = cited["updated_at"] = "2025-01-01T00:00:00Z"
        conn.execute(
            "INSERT INTO thread_messages (thread, seq, role, content, annotations) VALUES"
            " (3, 0, 'assistant', 'a', ?)",
            (json.dumps(old_citations),),
        )
    migrated = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    try:
        got = await migrated.conversations.get_conversation("acme", "c1")
        assert got is not None
        assert (got.id, got.scope, got.container_tags) == ("x", (), ("t1",))
        assert [m.message.text for m in got.messages] == ["the old secret"]
        assert await migrated.conversations.memory_ids("acme", "c1") == ("old",)
        assert await search_ids(migrated, container_tags=("t1",)) == {"old"}
        # A scoped conversation of the same id can now be written beside it.
        mine = scoped(("t1",), "mine", scope=("t1",))
        await write(migrated, mine, [memory("acme", "c1", "new", "mine", unit(RNG))])
        assert await migrated.conversations.memory_ids("acme", "c1", scope=("t1",)) == ("new",)
        # The citations already stored were indexed by the migration.
        assert await migrated.threads.forget_citations("acme", ["old", "older"]) == 2
        thread = await migrated.threads.get_thread("acme", "t")
        assert thread is not None
        assert [a.forgotten for a in thread.messages[0].annotations] == [True, True]
        assert {(a.created_at, a.updated_at) for a in thread.messages[0].annotations} == {(T0, T0)}
    finally:
        await migrated.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 2
        columns = [r[1] for r in conn.execute("PRAGMA table_info(conversations)")]
        assert "scope" in columns
        indexes = {
            tuple(r[2] for r in conn.execute(f"PRAGMA index_info('{name}')"))
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'conversations'"
            )
        }
        assert ("tenant_id", "conversation_id", "scope") in indexes


async def test_the_writer_keeps_foreign_keys_on_after_migrating(backend: SqliteBackend) -> None:
    conv = scoped((), "x", scope=())
    await write(backend, conv, [memory("acme", "c1", "m1", "x", unit(RNG))])

    # A conversation's delete cascades to its messages only if foreign keys are on.
    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA foreign_keys").fetchone()[0])

    assert await backend._db.write(count) == 1


async def test_a_replacing_edit_forgets_what_threads_quote_of_the_memories_it_removes(
    backend: SqliteBackend,
) -> None:
    conv = scoped((), "x", scope=())
    await write(backend, conv, [memory("acme", "c1", m, m, unit(RNG)) for m in ("m1", "m2")])
    await backend.threads.create_thread(Thread(id="t", tenant_id="acme", created_at=T0))
    cited = (cite("m1", "the old words"), cite("m2", "kept words"))
    await backend.threads.append_messages("acme", "t", [ThreadMessage("assistant", "a", cited)])

    edited = stored([Message.from_text("user", "new words")])
    await backend.conversations.commit(
        ConversationChange("replaced", attrs.evolve(conv, messages=edited), edited, (), ("m1",))
    )

    thread = await backend.threads.get_thread("acme", "t")
    assert thread is not None
    gone, kept = thread.messages[0].annotations
    assert (gone.id, gone.forgotten, gone.content) == ("m1", True, "")
    assert kept == cite("m2", "kept words")
