"""The SQLite adapter's MemoryIndex: dense and keyword search, filters, rebuild."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from memoryd.adapters.storage.sqlite import ScanTuning, SqliteBackend, open_sqlite
from memoryd.core.filters import Condition, MemoryFilter
from memoryd.core.model import Message
from memoryd.core.ports import ConversationChange, IndexChange, IndexedMemory, IndexQuery
from memoryd.testing.contract import (
    assert_same_top,
    brute_force,
    random_filter,
    random_memories,
)
from tests.integration.storage.sqlite_helpers import (
    DIM,
    MODEL,
    conversation,
    created,
    index_change,
    memory,
    stored,
    unit,
)

MESSAGES = stored([Message.from_text("user", "hello")])


async def ingest(backend: SqliteBackend, items: list[IndexedMemory]) -> None:
    """Commit and index each memory in a conversation of its own (with its attributes)."""
    for item in items:
        m = item.memory
        conv = conversation(
            m.tenant_id, m.conversation_id, MESSAGES, tags=m.container_tags, metadata=m.metadata
        )
        change = created(conv, [item])
        await backend.conversations.commit(change)
        await backend.index.apply(index_change(conv, change))


async def dense(
    backend: SqliteBackend, memory_filter: MemoryFilter, q: np.ndarray, k: int
) -> list[str]:
    candidates = await backend.index.search(
        IndexQuery(filter=memory_filter, vector=q, text="", k=k)
    )
    assert all(c.keyword_rank is None for c in candidates)
    ordered = sorted(
        (c for c in candidates if c.dense_rank is not None), key=lambda c: c.dense_rank or 0
    )
    return [c.memory_id for c in ordered]


@pytest.mark.parametrize("quantised", [False, True], ids=["exact", "int8-first-pass"])
async def test_dense_search_equals_brute_force_under_random_filters(
    db_path: Path, quantised: bool
) -> None:
    # The int8 path is forced on a small tenant by lowering its thresholds.
    tuning = ScanTuning(quantise_from=50, exact_below=20, rescore=40) if quantised else ScanTuning()
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM, tuning=tuning)
    try:
        await check_against_brute_force(backend, seed=1, rounds=150, every=3, after=50)
    finally:
        await backend.close()


async def check_against_brute_force(
    backend: SqliteBackend, *, seed: int, rounds: int, every: int, after: int
) -> None:
    """Dense search equals brute force under random filters, before and after deletes.

    Every ``every``-th memory is deleted: deletes move the last rows into the
    holes, and every column (vectors, codes, bits, groups) must move along.
    """
    items = random_memories(400, seed=seed)
    await ingest(backend, items + random_memories(50, seed=seed + 1, tenant="globex"))
    rng = random.Random(seed + 2)
    nprng = np.random.default_rng(seed + 3)
    for _ in range(rounds):
        memory_filter = random_filter(rng, "acme")
        q = unit(nprng)
        k = rng.choice([1, 5, 10, 50])
        want, scores = brute_force(items, q, memory_filter, k)
        assert_same_top(await dense(backend, memory_filter, q, k), want, scores)

    for item in items[::every]:
        m = item.memory
        removed = await backend.conversations.delete_conversation(m.tenant_id, m.conversation_id)
        assert removed == (m.id,)
        await backend.index.apply(
            IndexChange("acme", m.conversation_id, removed_memory_ids=removed)
        )
    kept = [item for i, item in enumerate(items) if i % every]
    assert backend.index.size("acme") == len(kept)
    for _ in range(after):
        memory_filter = random_filter(rng, "acme")
        q = unit(nprng)
        want, scores = brute_force(kept, q, memory_filter, 10)
        assert_same_top(await dense(backend, memory_filter, q, 10), want, scores)


async def test_candidates_carry_cosine_for_keyword_hits(backend: SqliteBackend) -> None:
    rng = np.random.default_rng(5)
    items = [
        memory("acme", "c1", "m1", "We adopted a golden retriever named Max", unit(rng)),
        memory("acme", "c2", "m2", "The quarterly report is due on Friday", unit(rng)),
        memory("acme", "c3", "m3", "Retrievers love swimming", unit(rng)),
    ]
    await ingest(backend, items)
    q = np.asarray(items[1].vectors[0])

    found = await backend.index.search(
        IndexQuery(MemoryFilter("acme"), vector=q, text='the retriever?! (AND) NOT "', k=1)
    )

    by_id = {c.memory_id: c for c in found}
    assert by_id["m2"].dense_rank == 0
    keyword = sorted(
        (c for c in found if c.keyword_rank is not None), key=lambda c: c.keyword_rank or 0
    )
    assert len(keyword) == 1
    assert keyword[0].memory_id in {"m1", "m3"}  # porter: "retriever" matches "Retrievers"
    expected = float(np.asarray(items[int(keyword[0].memory_id[1]) - 1].vectors[0]) @ q)
    assert keyword[0].similarity == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("text", ["", "   ", "the and of", "!!! ??? ---", '"', "*", "^"])
async def test_queries_without_words_have_no_keyword_hits(
    backend: SqliteBackend, text: str
) -> None:
    rng = np.random.default_rng(6)
    await ingest(backend, [memory("acme", "c1", "m1", "the and of NEAR * stuff", unit(rng))])
    found = await backend.index.search(IndexQuery(MemoryFilter("acme"), unit(rng), text, k=5))
    assert [c.keyword_rank for c in found] == [None]


@pytest.mark.parametrize("text", ["NEAR(stuff", 'stuff" OR *', "text:stuff", "-stuff^"])
async def test_fts_syntax_in_queries_is_searched_as_words(
    backend: SqliteBackend, text: str
) -> None:
    rng = np.random.default_rng(6)
    await ingest(backend, [memory("acme", "c1", "m1", "near the stuff, some text", unit(rng))])
    found = await backend.index.search(IndexQuery(MemoryFilter("acme"), unit(rng), text, k=5))
    assert [c.keyword_rank for c in found] == [0]


async def test_keyword_side_skips_words_too_common_to_afford(db_path: Path) -> None:
    backend = await open_sqlite(db_path, model_name=MODEL, dimension=DIM, keyword_budget=5)
    try:
        rng = np.random.default_rng(15)
        common = [memory("acme", f"c{i}", f"m{i}", f"pizza night {i}", unit(rng)) for i in range(8)]
        rare = memory("acme", "cz", "zebra", "a zebra ate pizza", unit(rng))
        await ingest(backend, [*common, rare])

        both = await backend.index.search(
            IndexQuery(MemoryFilter("acme"), unit(rng), "pizza zebra", k=20)
        )
        only_common = await backend.index.search(
            IndexQuery(MemoryFilter("acme"), unit(rng), "pizza", k=20)
        )
    finally:
        await backend.close()
    assert [c.memory_id for c in both if c.keyword_rank is not None] == ["zebra"]
    assert [c for c in only_common if c.keyword_rank is not None] == []


async def test_keyword_side_respects_filter_and_tenant(backend: SqliteBackend) -> None:
    rng = np.random.default_rng(8)
    items = [
        memory(
            "acme",
            f"c{i}",
            f"m{i}",
            f"pizza party number {i}",
            unit(rng),
            tags=(("a",) if i % 2 else ("b",)),
        )
        for i in range(20)
    ]
    await ingest(backend, [*items, memory("globex", "g1", "g1", "pizza pizza pizza", unit(rng))])

    found = await backend.index.search(
        IndexQuery(MemoryFilter("acme", container_tags=("a",)), unit(rng), "pizza", k=50)
    )

    keyword = {c.memory_id for c in found if c.keyword_rank is not None}
    assert keyword == {f"m{i}" for i in range(1, 20, 2)}
    assert {c.memory_id for c in found} == keyword
    assert (
        await backend.index.search(IndexQuery(MemoryFilter("nobody"), unit(rng), "pizza", k=5))
        == []
    )


async def test_tenant_isolation(backend: SqliteBackend) -> None:
    rng = np.random.default_rng(9)
    mine = memory("acme", "c1", "mine", "secret plans", unit(rng))
    theirs = memory("globex", "c1", "theirs", "secret plans", mine.vectors)
    await ingest(backend, [mine, theirs])

    found = await backend.index.search(
        IndexQuery(MemoryFilter("acme"), mine.vectors[0], "secret plans", k=10)
    )

    assert [c.memory_id for c in found] == ["mine"]
    assert [m.id for m in await backend.index.fetch("acme", ["theirs", "mine"])] == ["mine"]


async def test_removed_memories_leave_vectors_and_keywords(backend: SqliteBackend) -> None:
    rng = np.random.default_rng(10)
    items = [memory("acme", "c1", f"m{i}", f"unique phrase zebra{i}", unit(rng)) for i in range(5)]
    conv = conversation("acme", "c1", MESSAGES)
    change = created(conv, items)
    await backend.conversations.commit(change)
    await backend.index.apply(index_change(conv, change))
    generation = await backend.index.generation("acme")

    removal = ConversationChange("replaced", conv, MESSAGES, (), ("m1", "m3"))
    await backend.conversations.commit(removal)
    await backend.index.apply(index_change(conv, removal))

    assert await backend.index.generation("acme") != generation
    for i in (1, 3):
        found = await backend.index.search(
            IndexQuery(MemoryFilter("acme"), items[i].vectors[0], f"unique phrase zebra{i}", k=10)
        )
        assert f"m{i}" not in {c.memory_id for c in found}
        keyword_only = await backend.index.search(
            IndexQuery(MemoryFilter("acme"), unit(rng), f"zebra{i}", k=10)
        )
        assert [c for c in keyword_only if c.keyword_rank is not None] == []
    assert backend.index.size("acme") == 3

    deleted = await backend.conversations.delete_conversation("acme", "c1")
    assert deleted is not None
    await backend.index.apply(IndexChange("acme", "c1", removed_memory_ids=deleted))
    assert backend.index.size("acme") == 0
    assert (
        await backend.index.search(
            IndexQuery(MemoryFilter("acme"), unit(rng), "unique phrase", k=10)
        )
        == []
    )


async def test_retagging_applies_to_every_memory(backend: SqliteBackend) -> None:
    rng = np.random.default_rng(11)
    conv = conversation("acme", "c1", MESSAGES, tags=("old",), metadata={"n": 1})
    items = [
        memory("acme", "c1", f"m{i}", "text", unit(rng), tags=("old",), metadata={"n": 1})
        for i in range(3)
    ]
    change = created(conv, items)
    await backend.conversations.commit(change)
    await backend.index.apply(index_change(conv, change))

    await backend.index.apply(IndexChange("acme", "c1", container_tags=("new",), metadata={"n": 2}))

    q = unit(rng)
    assert await dense(backend, MemoryFilter("acme", container_tags=("old",)), q, 10) == []
    assert len(await dense(backend, MemoryFilter("acme", container_tags=("new",)), q, 10)) == 3
    by_n = MemoryFilter("acme", conditions=(Condition("n", "gte", 2),))
    assert len(await dense(backend, by_n, q, 10)) == 3


@pytest.mark.parametrize("quantise_from", [10_000, 30])
async def test_reopen_rebuilds_the_index(db_path: Path, quantise_from: int) -> None:
    backend = await open_sqlite(
        db_path,
        model_name=MODEL,
        dimension=DIM,
        tuning=ScanTuning(quantise_from=quantise_from, exact_below=10),
    )
    items = random_memories(120, seed=12)
    await ingest(backend, items)
    rng = random.Random(13)
    nprng = np.random.default_rng(14)
    queries = [(random_filter(rng, "acme"), unit(nprng)) for _ in range(20)]
    before = [await dense(backend, f, q, 10) for f, q in queries]
    await backend.close()

    reopened = await open_sqlite(
        db_path,
        model_name=MODEL,
        dimension=DIM,
        tuning=ScanTuning(quantise_from=quantise_from, exact_below=10),
    )
    try:
        assert reopened.index.size("acme") == 120
        for (f, q), earlier in zip(queries, before, strict=True):
            want, scores = brute_force(items, q, f, 10)
            got = await dense(reopened, f, q, 10)
            assert_same_top(got, want, scores)
            assert_same_top(earlier, want, scores)
    finally:
        await reopened.close()


async def test_vectors_are_stored_unit_length(backend: SqliteBackend) -> None:
    v = np.arange(1, DIM + 1, dtype=np.float32)  # not unit length
    await ingest(backend, [memory("acme", "c1", "m1", "x", v)])
    found = await backend.index.search(IndexQuery(MemoryFilter("acme"), v * 3, "", k=1))
    assert found[0].similarity == pytest.approx(1.0, abs=1e-6)
