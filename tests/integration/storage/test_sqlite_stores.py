"""ConversationStore, KeyStore and ThreadStore against a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import attrs
import numpy as np
import pytest

from memoryd.adapters.storage.sqlite import SqliteBackend, open_sqlite
from memoryd.adapters.storage.sqlite._schema import SCHEMA_VERSION
from memoryd.core.errors import ConfigurationError, NotFound, QuotaExceeded, StoreUnavailable
from memoryd.core.filters import MemoryFilter
from memoryd.core.model import Citation, ContentPart, Message, Thread, ThreadMessage
from memoryd.core.ports import ConversationChange, IndexQuery, TokenCharge
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

RNG = np.random.default_rng(7)


def rich_messages() -> list[Message]:
    return [
        Message.from_text("system", "Be brief."),
        Message(
            role="user",
            content=(
                ContentPart.from_text("What is in this picture?"),
                ContentPart.image("https://example.org/cat.png"),
                ContentPart(type="file", data="aGVsbG8=", mime_type="text/plain"),
            ),
            name="caroline",
            timestamp=datetime(2024, 5, 8, 13, 56, tzinfo=timezone(timedelta(hours=2))),
        ),
        Message(
            role="assistant",
            content=(),
            tool_calls=({"id": "call_1", "function": {"name": "look", "arguments": "{}"}},),
        ),
        Message(role="tool", content=(ContentPart.from_text("a cat"),), tool_call_id="call_1"),
        Message.from_text("assistant", "A cat. 🐈"),
    ]


async def test_conversation_round_trips_exactly(backend: SqliteBackend) -> None:
    conv = conversation(
        "acme", "c1", stored(rich_messages()), tags=("work",), metadata={"a": 1, "b": True}
    )
    await backend.conversations.commit(created(conv))

    got = await backend.conversations.get_conversation("acme", "c1")

    assert got == conv
    assert got is not None
    assert [m.message.fingerprint() for m in got.messages] == [
        m.message.fingerprint() for m in conv.messages
    ]
    assert got.messages[1].message.timestamp == conv.messages[1].message.timestamp
    assert got.messages[0].message.timestamp is None
    assert await backend.conversations.get_conversation("other", "c1") is None
    assert await backend.conversations.get_conversation("acme", "nope") is None


async def test_appended_replaced_and_unchanged(backend: SqliteBackend) -> None:
    first = stored([Message.from_text("user", "one"), Message.from_text("assistant", "two")])
    conv = conversation("acme", "c1", first, tags=("a",), metadata={"k": "v"})
    m1 = memory("acme", "c1", "m1", "one", unit(RNG), tags=("a",), metadata={"k": "v"})
    await backend.conversations.commit(created(conv, [m1]))

    extra = stored([Message.from_text("user", "three")], start=2)
    appended = attrs.evolve(conv, messages=first + extra)
    m2 = memory("acme", "c1", "m2", "three", unit(RNG), tags=("a",), metadata={"k": "v"})
    await backend.conversations.commit(ConversationChange("appended", appended, extra, (m2,), ()))
    got = await backend.conversations.get_conversation("acme", "c1")
    assert got is not None
    assert [m.message.text for m in got.messages] == ["one", "two", "three"]
    assert await backend.conversations.memory_ids("acme", "c1") == ("m1", "m2")

    retagged = attrs.evolve(appended, container_tags=("b",), metadata={"k": 2})
    await backend.conversations.commit(ConversationChange("unchanged", retagged, (), (), ()))
    got = await backend.conversations.get_conversation("acme", "c1")
    assert got is not None
    assert got.container_tags == ("b",)
    assert got.metadata == {"k": 2}
    assert len(got.messages) == 3
    await settle(backend)
    fetched = await backend.index.fetch("acme", ["m1", "m2"])
    assert [(m.container_tags, dict(m.metadata)) for m in fetched] == [(("b",), {"k": 2})] * 2

    new = stored([Message.from_text("user", "edited")])
    replaced = attrs.evolve(retagged, messages=new)
    m3 = memory("acme", "c1", "m3", "edited", unit(RNG))
    await backend.conversations.commit(
        ConversationChange("replaced", replaced, new, (m3,), ("m1", "m2"))
    )
    got = await backend.conversations.get_conversation("acme", "c1")
    assert got is not None
    assert [m.message.text for m in got.messages] == ["edited"]
    assert await backend.conversations.memory_ids("acme", "c1") == ("m3",)
    await settle(backend)
    assert await backend.index.fetch("acme", ["m1", "m2"]) == []
    (m3_stored,) = await backend.index.fetch("acme", ["m3"])
    # Added memories take on the conversation's tags and metadata too.
    assert m3_stored.container_tags == ("b",)
    assert m3_stored.metadata == {"k": 2}


async def test_memories_round_trip_through_fetch(backend: SqliteBackend) -> None:
    said = datetime(2023, 5, 8, 13, 56, 1, 123456, tzinfo=UTC)
    conv = conversation("acme", "c1", stored([Message.from_text("user", "x")]), tags=("t",))
    item = memory("acme", "c1", "m1", "[2023-05-08] user: x", unit(RNG), tags=("t",), said_at=said)
    await backend.conversations.commit(created(conv, [item]))
    assert await backend.index.fetch("acme", ["m1"]) == []  # not yet applied
    assert await settle(backend) == 1

    (got,) = await backend.index.fetch("acme", ["m1"])

    assert got == item.memory
    assert await backend.index.fetch("other-tenant", ["m1"]) == []


async def test_quota_is_charged_atomically(backend: SqliteBackend) -> None:
    key = await backend.keys.create_key(tenant="acme", digest="d1", quota_tokens=100)
    conv = conversation("acme", "c1", stored([Message.from_text("user", "hi")]))
    await backend.conversations.commit(
        created(
            conv, [memory("acme", "c1", "m1", "hi", unit(RNG))], charge=TokenCharge(key.id, 60, 100)
        )
    )
    found = await backend.keys.find_key("d1")
    assert found is not None
    assert found.used_tokens == 60

    conv2 = conversation("acme", "c2", stored([Message.from_text("user", "more")]))
    with pytest.raises(QuotaExceeded) as raised:
        await backend.conversations.commit(
            created(
                conv2,
                [memory("acme", "c2", "m2", "more", unit(RNG))],
                charge=TokenCharge(key.id, 41, 100),
            )
        )
    assert raised.value.details == {"quotaTokens": 100, "usedTokens": 60, "requestTokens": 41}
    assert await backend.conversations.get_conversation("acme", "c2") is None
    assert await backend.index.fetch("acme", ["m2"]) == []
    found = await backend.keys.find_key("d1")
    assert found is not None
    assert found.used_tokens == 60

    await backend.conversations.commit(created(conv2, charge=TokenCharge(key.id, 40, 100)))
    found = await backend.keys.find_key("d1")
    assert found is not None
    assert found.used_tokens == 100


async def test_delete_conversation(backend: SqliteBackend) -> None:
    conv = conversation("acme", "c1", stored([Message.from_text("user", "hi")]))
    items = [memory("acme", "c1", f"m{i}", f"text {i}", unit(RNG)) for i in range(3)]
    await backend.conversations.commit(created(conv, items))

    assert await backend.conversations.delete_conversation("other", "c1") is None
    assert await backend.conversations.delete_conversation("acme", "c1") == ("m0", "m1", "m2")
    assert await backend.conversations.get_conversation("acme", "c1") is None
    assert await backend.conversations.memory_ids("acme", "c1") == ()
    assert await backend.index.fetch("acme", ["m0", "m1", "m2"]) == []
    assert await backend.conversations.delete_conversation("acme", "c1") is None


async def test_keys(backend: SqliteBackend) -> None:
    k1 = await backend.keys.create_key(tenant="acme", digest="d1", tags=("a", "b"), label="ci")
    k2 = await backend.keys.create_key(tenant="acme", digest="d2", quota_tokens=5)
    k3 = await backend.keys.create_key(tenant="globex", digest="d3")

    found = await backend.keys.find_key("d1")
    assert found == k1
    assert found is not None
    assert (found.tenant_id, found.tags, found.label, found.quota_tokens) == (
        "acme",
        ("a", "b"),
        "ci",
        None,
    )
    assert await backend.keys.find_key("nope") is None
    assert [k.id for k in await backend.keys.list_keys()] == [k1.id, k2.id, k3.id]

    assert await backend.keys.revoke_key(k2.id) is True
    assert await backend.keys.revoke_key(k2.id) is False
    assert await backend.keys.revoke_key("missing") is False
    assert await backend.keys.find_key("d2") is None
    listed = {k.id: k for k in await backend.keys.list_keys()}
    assert listed[k2.id].revoked_at is not None
    assert listed[k1.id].revoked_at is None


async def test_threads(backend: SqliteBackend) -> None:
    # The memory the answer cites (a citation of a missing memory is stored forgotten).
    conv = conversation("acme", "c1", stored([Message.from_text("user", "hi")]))
    await backend.conversations.commit(created(conv, [memory("acme", "c1", "m1", "hi", unit(RNG))]))
    annotation = Citation(
        similarity=0.87,
        id="m1",
        content="[2023-05-08] Caroline: hi",
        type="memory",
        url="",
        title="c1",
        description="",
        og_image="",
        created_at=datetime(2023, 5, 8, tzinfo=UTC),
        updated_at=datetime(2023, 5, 8, 9, 30, tzinfo=timezone(timedelta(hours=2))),
    )
    old = Thread(id="t1", tenant_id="acme", title="first", created_at=T0, updated_at=T0)
    new = Thread(
        id="t2",
        tenant_id="acme",
        messages=(ThreadMessage("user", "hello", created_at=T0),),
        created_at=T0 + timedelta(hours=1),
    )
    await backend.threads.create_thread(old)
    await backend.threads.create_thread(new)
    await backend.threads.create_thread(Thread(id="t1", tenant_id="globex", created_at=T0))

    later = T0 + timedelta(hours=2)
    await backend.threads.append_messages(
        "acme",
        "t1",
        [
            ThreadMessage("user", "what did I say?", created_at=later),
            ThreadMessage("assistant", "You said hi.", (annotation,), created_at=later),
        ],
    )
    got = await backend.threads.get_thread("acme", "t1")
    assert got is not None
    assert [(m.role, m.content) for m in got.messages] == [
        ("user", "what did I say?"),
        ("assistant", "You said hi."),
    ]
    assert got.messages[1].annotations == (annotation,)
    assert got.updated_at == later

    listed = await backend.threads.list_threads("acme", limit=10, offset=0)
    assert [t.id for t in listed] == ["t1", "t2"]
    assert all(t.messages == () for t in listed)
    assert [t.id for t in await backend.threads.list_threads("acme", limit=1, offset=1)] == ["t2"]

    with pytest.raises(NotFound):
        await backend.threads.append_messages("acme", "nope", [ThreadMessage("user", "x")])
    assert await backend.threads.get_thread("acme", "nope") is None
    assert await backend.threads.delete_thread("acme", "t1") is True
    assert await backend.threads.delete_thread("acme", "t1") is False
    assert await backend.threads.get_thread("acme", "t1") is None
    assert await backend.threads.get_thread("globex", "t1") is not None


#: A thread message's annotations as stored before citations held datetimes: their
#: times as the API wrote them (UTC, ``Z``), under the keys that are still written.
OLD_ANNOTATIONS = (
    '[{"similarity":0.87,"id":"m1","content":"[2023-05-08] Caroline: hi","type":"conversation",'
    '"url":"https://example.org/c1","title":"c1","description":"","og_image":"",'
    '"created_at":"2023-05-08T00:00:00Z","updated_at":"2023-05-09T10:30:00.250000Z",'
    '"forgotten":false}]'
)


async def test_a_citation_stored_by_the_old_format_reads_back(
    backend: SqliteBackend, db_path: Path
) -> None:
    conv = conversation("acme", "c1", stored([Message.from_text("user", "hi")]))
    await backend.conversations.commit(created(conv, [memory("acme", "c1", "m1", "hi", unit(RNG))]))
    await backend.threads.create_thread(Thread(id="t1", tenant_id="acme", created_at=T0))
    fresh = Citation(
        similarity=0.87,
        id="m1",
        content="[2023-05-08] Caroline: hi",
        type="conversation",
        url="https://example.org/c1",
        title="c1",
        description="",
        og_image="",
        created_at=datetime(2023, 5, 8, tzinfo=UTC),
        updated_at=datetime(2023, 5, 9, 10, 30, 0, 250000, tzinfo=UTC),
    )
    await backend.threads.append_messages(
        "acme", "t1", [ThreadMessage("assistant", "You said hi.", (fresh,), created_at=T0)]
    )
    with sqlite3.connect(db_path) as conn:
        (written,) = conn.execute("SELECT annotations FROM thread_messages").fetchone()
        # The stored shape is stable: the same keys, in the same order, times as ISO text.
        keys = [list(a) for a in json.loads(OLD_ANNOTATIONS)]
        assert [list(a) for a in json.loads(written)] == keys
        conn.execute("UPDATE thread_messages SET annotations = ?", (OLD_ANNOTATIONS,))

    got = await backend.threads.get_thread("acme", "t1")
    assert got is not None
    (cited,) = got.messages[0].annotations
    assert cited == fresh
    assert cited.created_at is not None
    assert cited.created_at.tzinfo is not None
    # Forgetting rewrites an old row too; its times stay.
    assert await backend.threads.forget_citations("acme", ["m1"]) == 1
    got = await backend.threads.get_thread("acme", "t1")
    assert got is not None
    assert got.messages[0].annotations == (fresh.forget(),)


async def test_file_settings(backend: SqliteBackend, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()
    assert meta["embedding_model"] == MODEL
    assert meta["embedding_dimension"] == str(DIM)


async def test_another_model_is_refused(backend: SqliteBackend, db_path: Path) -> None:
    await backend.close()
    with pytest.raises(ConfigurationError) as raised:
        await open_sqlite(db_path, model_name="other-model", dimension=DIM)
    assert "data_dir" in raised.value.message
    assert raised.value.details["storedModel"] == MODEL
    with pytest.raises(ConfigurationError):
        await open_sqlite(db_path, model_name=MODEL, dimension=DIM * 2)
    # Tools that never touch vectors open it without naming a model.
    tool = await open_sqlite(db_path, model_name=None, dimension=None, load_index=False)
    await tool.keys.create_key(tenant="acme", digest="d9")
    await tool.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigurationError, match="newer"):
        await open_sqlite(path, model_name=MODEL, dimension=DIM)


async def test_broken_files_are_unavailable(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database, not at all" * 200)
    with pytest.raises(StoreUnavailable):
        await open_sqlite(garbage, model_name=MODEL, dimension=DIM)


async def test_check(backend: SqliteBackend, db_path: Path) -> None:
    await backend.conversations.check()
    db_path.unlink()  # noqa: ASYNC240 - a test's setup, not server code
    with pytest.raises(StoreUnavailable):
        await backend.conversations.check()
    conv = conversation("acme", "c1", stored([Message.from_text("user", "hi")]))
    with pytest.raises(StoreUnavailable):
        await backend.conversations.commit(created(conv))


async def test_closed_backend_is_unavailable(backend: SqliteBackend) -> None:
    await backend.close()
    with pytest.raises(StoreUnavailable):
        await backend.keys.find_key("d1")
    with pytest.raises(StoreUnavailable):
        await backend.conversations.check()
    with pytest.raises(StoreUnavailable):
        await backend.index.search(IndexQuery(MemoryFilter("acme"), np.ones(DIM), "x", k=1))
    with pytest.raises(StoreUnavailable):
        await backend.index.fetch("acme", ["m1"])
