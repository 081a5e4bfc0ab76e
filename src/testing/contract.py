"""The contract every storage backend passes: stores, index, outbox, over the ports.

Use it from a test module of your backend::

    from memoryd.testing.contract import *  # noqa: F403 (the tests and the fixture names)

    @pytest.fixture
    def open_backend(tmp_path):
        # A callable that opens the backend over the same data every time it is called,
        # as an async context manager yielding an object with ``conversations``,
        # ``keys``, ``threads`` and ``index`` (a ``StorageBackend``). Vectors have
        # ``DIMENSION`` dimensions.
        return lambda: my_backend(tmp_path)

Each test changes the store only through the ports and waits for the index
through the :class:`~memoryd.core.indexer.Indexer`, as the services do.
Filters are checked by brute force against ``MemoryFilter.matches``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import numpy as np
import pytest

from memoryd.core.errors import QuotaExceeded
from memoryd.core.filters import AllOf, AnyOf, Clause, Condition, MemoryFilter, Not
from memoryd.core.indexer import Indexer
from memoryd.core.model import (
    Citation,
    Conversation,
    Memory,
    Message,
    Scalar,
    Scope,
    StoredMessage,
    Thread,
    ThreadMessage,
)
from memoryd.core.ports import (
    ChangeKind,
    ConversationChange,
    IndexedMemory,
    IndexQuery,
    StorageBackend,
    TokenCharge,
)

__all__ = [
    "DIMENSION",
    "OpenBackend",
    "assert_same_top",
    "brute_force",
    "random_filter",
    "random_memories",
    "test_contract_conversation_by_id",
    "test_contract_conversations_of",
    "test_contract_deletes",
    "test_contract_filters_equal_brute_force",
    "test_contract_ingest_queue",
    "test_contract_memory_edits",
    "test_contract_memory_forget",
    "test_contract_outbox_replay",
    "test_contract_quota_is_atomic",
    "test_contract_tenancy",
    "test_contract_threads",
    "test_contract_upsert_kinds",
    "unit",
]

#: The dimension of the contract's vectors: open the backend for it.
DIMENSION = 16
T0 = datetime(2025, 1, 1, tzinfo=UTC)

#: Opens the backend over the same data at each call (the ``open_backend`` fixture).
OpenBackend: TypeAlias = Callable[[], AbstractAsyncContextManager[StorageBackend]]

WORDS = ("apple", "banana", "cherry", "dog", "eagle", "fish", "guitar", "house", "island", "kite")
TAGS = ("red", "green", "blue", "gold")


# --- builders and the brute force --------------------------------------------------------------


def unit(rng: np.random.Generator, dim: int = DIMENSION) -> np.ndarray[Any, Any]:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def indexed(
    tenant: str,
    conversation_id: str,
    memory_id: str,
    text: str,
    vector: Any,
    *,
    tags: tuple[str, ...] = (),
    metadata: Mapping[str, Scalar] | None = None,
    said_at: datetime = T0,
    position: int = 0,
    scope: Scope = (),
    context: str = "",
    speaker: str = "",
) -> IndexedMemory:
    """A memory with one vector, or with one per piece when ``vector`` is 2-D."""
    return IndexedMemory(
        memory=Memory(
            id=memory_id,
            tenant_id=tenant,
            conversation_id=conversation_id,
            text=text,
            positions=(position,),
            said_at=said_at,
            container_tags=tags,
            metadata=dict(metadata or {}),
            created_at=T0,
            updated_at=T0,
            scope=scope,
            speaker=speaker,
        ),
        vectors=np.atleast_2d(np.asarray(vector, np.float32)),
        keyword_context=context,
    )


def random_metadata(rng: random.Random) -> dict[str, Scalar]:
    choices: list[Scalar] = [1, 2, 2.0, 2.5, -3, True, False, "x", "y", "2", 0, 0.0]
    return {key: rng.choice(choices) for key in ("a", "b", "c") if rng.random() < 0.7}


_VALUES: list[Scalar] = [1, 2, 2.0, 2.5, True, False, "x", "2", 0, 99]
#: Texts of ``contains``/``icontains``: "" is in every string, "X" is "x" ignoring case.
_SUBSTRINGS = ("x", "X", "", "2", "y", "xy")


def random_condition(rng: random.Random) -> Condition:
    """One condition of any operator, on one of the keys random metadata has (or ``z``)."""
    op = rng.choice(
        ["eq", "ne", "ne", "gt", "gte", "lt", "lte", "in", "in", "contains", "icontains"]
    )
    value: Scalar | tuple[Scalar, ...]
    if op == "in":
        value = tuple(rng.sample(_VALUES, rng.randint(0, 5)))
    elif op in ("contains", "icontains"):
        value = rng.choice(_SUBSTRINGS)
    else:
        value = rng.choice(_VALUES)
    return Condition(key=rng.choice("abcz"), op=op, value=value)  # type: ignore[arg-type]


def random_clause(rng: random.Random, depth: int = 0) -> Clause:
    """A condition, or now and then AND/OR (of 0 to 3 clauses) or NOT, nested up to 3 deep."""
    if depth < 3 and rng.random() < 0.3:
        kind = rng.choice(["and", "or", "or", "not"])
        if kind == "not":
            return Not(random_clause(rng, depth + 1))
        inner = tuple(random_clause(rng, depth + 1) for _ in range(rng.randint(0, 3)))
        return AllOf(inner) if kind == "and" else AnyOf(inner)
    return random_condition(rng)


def random_filter(rng: random.Random, tenant: str) -> MemoryFilter:
    """Tags, clauses (conditions of every operator, AND/OR/NOT of them), and dates, at random."""
    conditions = [random_clause(rng) for _ in range(rng.choice([0, 0, 1, 1, 2]))]
    after = T0 + timedelta(days=rng.randint(0, 30)) if rng.random() < 0.3 else None
    before = T0 + timedelta(days=rng.randint(20, 60)) if rng.random() < 0.3 else None
    tags = tuple(rng.sample(TAGS, rng.randint(1, 2))) if rng.random() < 0.5 else ()
    return MemoryFilter(
        tenant_id=tenant,
        container_tags=tags,
        conditions=tuple(conditions),
        after=after,
        before=before,
    )


def random_memories(count: int, seed: int, tenant: str = "acme") -> list[IndexedMemory]:
    """One memory per conversation ``c<i>``, of random tags, metadata, dates and pieces."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        tags = tuple(rng.sample(TAGS, rng.randint(0, 2)))
        out.append(
            indexed(
                tenant,
                f"c{i}",
                f"{tenant}-m{i}",
                " ".join(rng.sample(WORDS, 3)),
                # Some memories have several pieces, one vector each.
                np.stack([unit(nprng) for _ in range(rng.choice((1, 1, 1, 2, 3)))]),
                tags=tags,
                metadata=random_metadata(rng),
                said_at=T0 + timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 86399)),
            )
        )
    return out


def brute_force(
    items: Sequence[IndexedMemory], query: Any, memory_filter: MemoryFilter, k: int
) -> tuple[list[str], dict[str, float]]:
    """The ``k`` best memories passing ``MemoryFilter.matches``, by their best piece."""
    passing = [i for i in items if memory_filter.matches(i.memory)]
    scores = {
        i.memory.id: float((np.asarray(i.vectors, np.float32) @ query).max()) for i in passing
    }
    ranked = sorted(scores, key=lambda mid: -scores[mid])
    return ranked[:k], scores


def assert_same_top(got: Sequence[str], want: Sequence[str], scores: Mapping[str, float]) -> None:
    """Same ids in the same order, up to float ties at the cut and between neighbours."""
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want, strict=True):
        assert abs(scores[g] - scores[w]) < 1e-5, (got, want)
    if want:
        cut = scores[want[-1]]
        assert {g for g in got if scores[g] > cut + 1e-5} == {
            w for w in want if scores[w] > cut + 1e-5
        }


def _stored(texts: Sequence[str], start: int = 0) -> tuple[StoredMessage, ...]:
    return tuple(
        StoredMessage(Message.from_text("user", t), position=start + i, received_at=T0)
        for i, t in enumerate(texts)
    )


def _conversation(
    tenant: str,
    cid: str,
    messages: tuple[StoredMessage, ...],
    *,
    tags: tuple[str, ...] = (),
    metadata: Mapping[str, Scalar] | None = None,
    scope: Scope = (),
) -> Conversation:
    return Conversation(
        id=f"id-{tenant}-{cid}-{'-'.join(scope)}",
        tenant_id=tenant,
        conversation_id=cid,
        messages=messages,
        container_tags=tags,
        metadata=dict(metadata or {}),
        created_at=T0,
        updated_at=T0,
        scope=scope,
    )


def _change(
    kind: ChangeKind,
    conversation: Conversation,
    new_messages: tuple[StoredMessage, ...],
    added: Sequence[IndexedMemory] = (),
    removed: Sequence[str] = (),
    *,
    charge: TokenCharge | None = None,
    context_updates: tuple[tuple[int, str], ...] = (),
) -> ConversationChange:
    return ConversationChange(
        kind=kind,
        conversation=conversation,
        new_messages=new_messages,
        added=tuple(added),
        removed_memory_ids=tuple(removed),
        charge=charge,
        context_updates=context_updates,
    )


async def _commit(backend: StorageBackend, change: ConversationChange) -> None:
    """Commit, then bring the index up to date as the services do."""
    await backend.conversations.commit(change)
    await Indexer(backend.conversations, backend.index).drain(
        change.conversation.tenant_id, change.conversation.conversation_id
    )


async def _ingest(backend: StorageBackend, items: Sequence[IndexedMemory]) -> None:
    for item in items:
        m = item.memory
        conv = _conversation(
            m.tenant_id, m.conversation_id, _stored(["x"]), tags=m.container_tags,
            metadata=m.metadata, scope=m.scope,
        )  # fmt: skip
        await _commit(backend, _change("created", conv, conv.messages, [item]))


async def _dense(backend: StorageBackend, memory_filter: MemoryFilter, q: Any, k: int) -> list[str]:
    found = await backend.index.search(IndexQuery(filter=memory_filter, vector=q, text="", k=k))
    dense = sorted((c for c in found if c.dense_rank is not None), key=lambda c: c.dense_rank or 0)
    return [c.memory_id for c in dense]


async def _keyword_ids(backend: StorageBackend, tenant: str, text: str) -> set[str]:
    """The memories the keyword side finds for ``text`` (in the text or the keyword context)."""
    q = np.zeros(DIMENSION, np.float32)
    q[0] = 1.0
    found = await backend.index.search(
        IndexQuery(filter=MemoryFilter(tenant), vector=q, text=text, k=50)
    )
    return {c.memory_id for c in found if c.keyword_rank is not None}


async def _ids(backend: StorageBackend, tenant: str, q: Any, k: int = 50) -> set[str]:
    return set(await _dense(backend, MemoryFilter(tenant), q, k))


# --- the contract ------------------------------------------------------------------------------


async def test_contract_upsert_kinds(open_backend: OpenBackend) -> None:
    rng = np.random.default_rng(7)
    q = unit(rng)
    async with open_backend() as backend:
        first = _stored(["one", "two"])
        conv = _conversation("acme", "c1", first, tags=("red",))
        a = indexed("acme", "c1", "m1", "one", q, tags=("red",), speaker="Caroline")
        b = indexed("acme", "c1", "m2", "two", unit(rng), tags=("red",), position=1)
        await _commit(backend, _change("created", conv, first, [a, b]))
        assert await backend.conversations.memory_ids("acme", "c1") == ("m1", "m2")
        assert await _ids(backend, "acme", q) == {"m1", "m2"}

        more = _stored(["three"], start=2)
        conv = _conversation("acme", "c1", first + more, tags=("red",))
        c = indexed("acme", "c1", "m3", "three", unit(rng), tags=("red",), position=2)
        appended = _change("appended", conv, more, [c], context_updates=((1, "user: three"),))
        await _commit(backend, appended)
        found = await backend.conversations.get_conversation("acme", "c1")
        assert found is not None
        assert [m.message.text for m in found.messages] == ["one", "two", "three"]
        assert await backend.conversations.memory_ids("acme", "c1") == ("m1", "m2", "m3")
        # The earlier turn's new keyword context reached the index with the change.
        assert await _keyword_ids(backend, "acme", "three") == {"m2", "m3"}
        (m1,) = await backend.index.fetch("acme", ["m1"])
        assert (m1.speaker, m1.text) == ("Caroline", "one")

        # Unchanged messages, new tags: every memory of the conversation takes them on.
        conv = _conversation("acme", "c1", first + more, tags=("blue",), metadata={"a": 1})
        await _commit(backend, _change("unchanged", conv, ()))
        blue = MemoryFilter("acme", container_tags=("blue",))
        assert set(await _dense(backend, blue, q, 10)) == {"m1", "m2", "m3"}
        assert await _dense(backend, MemoryFilter("acme", container_tags=("red",)), q, 10) == []
        fetched = await backend.index.fetch("acme", ["m3", "m1"])
        assert [m.id for m in fetched] == ["m3", "m1"]
        assert all(m.container_tags == ("blue",) and m.metadata == {"a": 1} for m in fetched)

        replaced = _stored(["uno"])
        conv = _conversation("acme", "c1", replaced, tags=("blue",))
        d = indexed("acme", "c1", "m4", "uno", q, tags=("blue",))
        await _commit(backend, _change("replaced", conv, replaced, [d], ["m1", "m2", "m3"]))
        assert await backend.conversations.memory_ids("acme", "c1") == ("m4",)
        assert await _ids(backend, "acme", q) == {"m4"}
        assert await backend.index.fetch("acme", ["m1", "m4"]) == [d.memory]
        assert await backend.conversations.pending_changes() == []


async def test_contract_filters_equal_brute_force(open_backend: OpenBackend) -> None:
    items = random_memories(120, seed=11)
    async with open_backend() as backend:
        await _ingest(backend, items + random_memories(20, seed=12, tenant="globex"))
        rng = random.Random(13)
        nprng = np.random.default_rng(14)
        for _ in range(60):
            memory_filter = random_filter(rng, "acme")
            q = unit(nprng)
            k = rng.choice([1, 5, 10, 50])
            want, scores = brute_force(items, q, memory_filter, k)
            assert_same_top(await _dense(backend, memory_filter, q, k), want, scores)


async def test_contract_deletes(open_backend: OpenBackend) -> None:
    rng = np.random.default_rng(3)
    q = unit(rng)
    async with open_backend() as backend:
        await _ingest(
            backend,
            [
                indexed("acme", "c1", "plain", "x", q),
                indexed("acme", "c1", "scoped", "x", q, scope=("red",)),
                indexed("acme", "c2", "other", "x", q),
            ],
        )
        store = backend.conversations
        assert await store.delete_conversation("acme", "nope") is None
        assert await store.delete_conversation("acme", "c1", scope=("red",)) == ("scoped",)
        await Indexer(store, backend.index).drain("acme", "c1")
        assert await _ids(backend, "acme", q) == {"plain", "other"}
        assert await store.delete_conversation("acme", "c1", scope=None) == ("plain",)
        await Indexer(store, backend.index).drain("acme", "c1")
        assert await _ids(backend, "acme", q) == {"other"}
        assert await store.get_conversation("acme", "c1", scope=None) is None
        assert [m.id for m in await backend.index.fetch("acme", ["plain", "other"])] == ["other"]


async def test_contract_tenancy(open_backend: OpenBackend) -> None:
    rng = np.random.default_rng(4)
    q = unit(rng)
    async with open_backend() as backend:
        await _ingest(backend, [indexed("acme", "c1", "a1", "x", q)])
        await _ingest(backend, [indexed("globex", "c1", "g1", "x", q)])
        assert await _ids(backend, "acme", q) == {"a1"}
        assert await _ids(backend, "globex", q) == {"g1"}
        assert await backend.index.fetch("globex", ["a1"]) == []
        assert await backend.conversations.get_conversation("initech", "c1") is None
        assert await backend.conversations.delete_conversation("initech", "c1") is None
        assert await backend.conversations.tenant_ids() == ["acme", "globex"]


async def test_contract_quota_is_atomic(open_backend: OpenBackend) -> None:
    rng = np.random.default_rng(5)
    async with open_backend() as backend:
        key = await backend.keys.create_key(tenant="acme", digest="d1", quota_tokens=10)
        messages = _stored(["a"])

        def change(cid: str, tokens: int) -> ConversationChange:
            conv = _conversation("acme", cid, messages)
            item = indexed("acme", cid, f"m-{cid}", "a", unit(rng))
            charge = TokenCharge(key.id, tokens, 10)
            return _change("created", conv, messages, [item], charge=charge)

        await _commit(backend, change("c1", 8))
        with pytest.raises(QuotaExceeded):
            await backend.conversations.commit(change("c2", 3))
        assert await backend.conversations.get_conversation("acme", "c2") is None
        assert await backend.conversations.pending_changes() == []
        found = await backend.keys.find_key("d1")
        assert found is not None
        assert found.used_tokens == 8
        await _commit(backend, change("c3", 2))  # exactly the quota
        found = await backend.keys.find_key("d1")
        assert found is not None
        assert found.used_tokens == 10


def _citation(memory_id: str) -> Citation:
    return Citation(
        similarity=0.9, id=memory_id, content="quoted text", type="memory", url="", title="",
        description="", og_image="", created_at=T0, updated_at=T0 + timedelta(hours=1),
    )  # fmt: skip


async def test_contract_threads(open_backend: OpenBackend) -> None:
    async with open_backend() as backend:
        await _ingest(backend, [indexed("acme", "c1", "m1", "x", unit(np.random.default_rng(6)))])
        threads = backend.threads
        thread = Thread(id="t1", tenant_id="acme", title="trip", created_at=T0, updated_at=T0)
        await threads.create_thread(thread)
        answer = ThreadMessage("assistant", "see [1]", annotations=(_citation("m1"),))
        await threads.append_messages("acme", "t1", [ThreadMessage("user", "hi"), answer])
        got = await threads.get_thread("acme", "t1")
        assert got is not None
        assert [m.content for m in got.messages] == ["hi", "see [1]"]
        assert got.messages[1].annotations == answer.annotations
        assert await threads.get_thread("globex", "t1") is None
        assert [t.id for t in await threads.list_threads("acme", limit=10, offset=0)] == ["t1"]

        assert await backend.conversations.delete_conversation("acme", "c1") == ("m1",)
        got = await threads.get_thread("acme", "t1")
        assert got is not None
        cited = got.messages[1].annotations[0]
        assert cited.forgotten
        assert cited.id == "m1"
        assert cited.content != "quoted text"
        assert (cited.created_at, cited.updated_at) == (T0, T0 + timedelta(hours=1))
        assert await threads.delete_thread("acme", "t1")
        assert await threads.get_thread("acme", "t1") is None


async def test_contract_outbox_replay(open_backend: OpenBackend) -> None:
    rng = np.random.default_rng(8)
    q = unit(rng)
    async with open_backend() as backend:
        await _ingest(backend, [indexed("acme", "c1", "old", "x", q)])
        # Committed, and the process stops before the index learns it.
        messages = _stored(["new"])
        conv = _conversation("acme", "c1", messages)
        new = indexed("acme", "c1", "new", "new", q)
        await backend.conversations.commit(_change("replaced", conv, messages, [new], ["old"]))
        pending = await backend.conversations.pending_changes(
            tenant_id="acme", conversation_id="c1"
        )
        assert [[a.memory.id for a in p.change.added] for p in pending] == [["new"]]
        assert pending[0].change.removed_memory_ids == ("old",)
    async with open_backend() as again:
        assert await Indexer(again.conversations, again.index).replay() == 1
        assert await again.conversations.pending_changes() == []
        assert await _ids(again, "acme", q) == {"new"}
        # A replay of what is already applied changes nothing.
        for entry in pending:
            await again.index.apply(entry.change)
        assert await _ids(again, "acme", q) == {"new"}


async def test_contract_conversations_of(open_backend: OpenBackend) -> None:
    rng = np.random.default_rng(9)
    async with open_backend() as backend:
        first = _stored(["one", "two"])
        plain = _conversation("acme", "c1", first, tags=("red",), metadata={"n": 1})
        scoped = _conversation("acme", "c1", _stored(["three"]), scope=("blue",))
        other = _conversation("globex", "c2", _stored(["four"]))
        for conv in (plain, scoped, other):
            item = indexed(
                conv.tenant_id, conv.conversation_id, f"m-{conv.id}", "x", unit(rng),
                tags=conv.container_tags, metadata=conv.metadata, scope=conv.scope,
            )  # fmt: skip
            await _commit(backend, _change("created", conv, conv.messages, [item]))
        found = [c async for c in backend.conversations.conversations_of("acme")]
        assert sorted((c.conversation_id, c.scope) for c in found) == [
            ("c1", ()),
            ("c1", ("blue",)),
        ]
        got = next(c for c in found if c.scope == ())
        assert [m.message.text for m in got.messages] == ["one", "two"]
        assert [m.position for m in got.messages] == [0, 1]
        assert (got.id, got.container_tags, dict(got.metadata)) == (plain.id, ("red",), {"n": 1})
        assert [c.conversation_id async for c in backend.conversations.conversations_of("x")] == []


# The ConversationsById part (its own module; it reads this one's helpers).
from memoryd.testing.contract_documents import test_contract_conversation_by_id  # noqa: E402

# The MemoryStore part (its own module; it reads this one's helpers).
from memoryd.testing.contract_memories import (  # noqa: E402
    test_contract_memory_edits,
    test_contract_memory_forget,
)

# The IngestQueue part (its own module; it reads this one's helpers).
from memoryd.testing.contract_queue import test_contract_ingest_queue  # noqa: E402
