"""The keyword side searches the words the embedded store would (``_terms``).

Both backends hold the same memories; each query's keyword hits must be the
same set: stopwords of the embedded store's list ("did", "when") and, in a
scope of 100 memories or more, words in more than half of it (a speaker's
name) are not searched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig, open_elasticsearch
from memoryd.adapters.storage.elasticsearch._terms import TermPlanner
from memoryd.adapters.storage.sqlite import open_sqlite
from memoryd.core.filters import MemoryFilter
from memoryd.core.indexer import Indexer
from memoryd.core.ports import IndexQuery
from memoryd.testing.contract import DIMENSION, _change, _conversation, _stored, indexed, unit

pytestmark = pytest.mark.slow

WORDS = ("kite", "dunes", "pottery", "sunrise", "violin", "garden")


def _texts(n: int) -> list[str]:
    """``n`` turns, every one naming Caroline, each holding one of a few topic words."""
    return [f"Caroline: I did love the {WORDS[i % len(WORDS)]} number {i}" for i in range(n)]


async def _fill(backend: object, texts: list[str], tag: str) -> None:
    rng = np.random.default_rng(5)
    messages = _stored(texts)
    conv = _conversation("acme", tag, messages, tags=(tag,))
    added = [
        indexed("acme", tag, f"{tag}-{i}", t, unit(rng), tags=(tag,), position=i)
        for i, t in enumerate(texts)
    ]
    await backend.conversations.commit(_change("created", conv, messages, added))  # type: ignore[attr-defined]
    await Indexer(backend.conversations, backend.index).drain("acme", tag)  # type: ignore[attr-defined]


async def _keyword_ids(backend: object, text: str, tag: str) -> set[str]:
    q = IndexQuery(
        filter=MemoryFilter(tenant_id="acme", container_tags=(tag,)),
        vector=np.ones(DIMENSION, np.float32) / np.sqrt(DIMENSION),
        text=text,
        k=200,
    )
    found = await backend.index.search(q)  # type: ignore[attr-defined]
    return {c.memory_id for c in found if c.keyword_rank is not None}


@pytest.mark.parametrize(("size", "common_dropped"), [(120, True), (30, False)])
async def test_both_backends_search_the_same_words(
    local_cluster: object, es_config: ElasticsearchConfig, tmp_path: Path, size: int,
    common_dropped: bool,
) -> None:  # fmt: skip
    texts = _texts(size)
    sqlite = await open_sqlite(tmp_path / "m.sqlite3", model_name="m", dimension=DIMENSION)
    es = await open_elasticsearch(es_config, dimension=DIMENSION, model_name="m")
    try:
        # Another scope of the same tenant: index-wide statistics that do not say "common".
        for backend in (sqlite, es):
            await _fill(backend, texts, "c1")
            await _fill(backend, [f"Melanie: the {w} again" for w in WORDS] * 40, "c2")
        for query in ("When did Caroline fly a kite?", "caroline", "did when", "violin garden"):
            want = await _keyword_ids(sqlite, query, "c1")
            got = await _keyword_ids(es, query, "c1")
            assert got == want, query
            # The second time, from the cached counts in one round trip: the same.
            assert await _keyword_ids(es, query, "c1") == want, query
        kite = await _keyword_ids(es, "When did Caroline fly a kite?", "c1")
        if common_dropped:  # "caroline" is in every memory of the scope: not searched
            assert kite == {f"c1-{i}" for i in range(size) if i % len(WORDS) == 0}
            assert await _keyword_ids(es, "caroline", "c1") == set()
        else:  # a small scope searches every word
            assert len(kite) == size
    finally:
        await es.close()
        await sqlite.close()


def test_the_planner_keeps_counts_until_the_scope_moves_by_a_quarter() -> None:
    planner = TermPlanner()
    assert planner.known("s", ["a", "b"]) == (None, ["a", "b"])
    planner.learn("s", 200, {"a": 150, "b": 3})
    assert planner.known("s", ["a", "b", "c"]) == (200, ["c"])
    assert planner.choose("s", ["a", "b"], 200) == ["b"]  # "a" is in more than half
    assert planner.choose("s", ["a", "b"], 99) == ["a", "b"]  # too small to judge
    planner.learn("s", 260, {})  # grew by more than a quarter: counted again
    assert planner.known("s", ["a", "b"]) == (260, ["a", "b"])


async def test_a_word_of_the_text_outranks_one_of_the_context_on_both_backends(
    local_cluster: object, es_config: ElasticsearchConfig, tmp_path: Path
) -> None:
    """FTS5 weighs the keyword context 0.35 against the text: a shorter memory whose
    context holds the word ranks below one whose text does. (Matched with equal weights,
    as noida-db's ``combined_fields`` did when it ignored the boosts, the shorter wins.)"""
    rng = np.random.default_rng(6)
    memories = [
        ("in-text", "Caroline: the violin", "apple pear plum fig"),
        ("in-context", "Caroline: hello", "violin"),
        *((f"other-{i}", f"Melanie: the garden number {i}", "") for i in range(6)),
    ]
    added = [
        indexed("acme", "c3", mid, text, unit(rng), tags=("c3",), position=i, context=context)
        for i, (mid, text, context) in enumerate(memories)
    ]
    messages = _stored([text for _, text, _ in memories])
    order = {}
    for name, backend in (
        ("sqlite", await open_sqlite(tmp_path / "r.sqlite3", model_name="m", dimension=DIMENSION)),
        ("elasticsearch", await open_elasticsearch(es_config, dimension=DIMENSION, model_name="m")),
    ):
        try:
            conv = _conversation("acme", "c3", messages, tags=("c3",))
            await backend.conversations.commit(_change("created", conv, messages, added))
            await Indexer(backend.conversations, backend.index).drain("acme", "c3")
            found = await backend.index.search(
                IndexQuery(
                    filter=MemoryFilter(tenant_id="acme", container_tags=("c3",)),
                    vector=unit(rng),
                    text="violin",
                    k=10,
                )
            )
            hits = sorted((c for c in found if c.keyword_rank is not None),
                          key=lambda c: c.keyword_rank or 0)  # fmt: skip
            order[name] = [c.memory_id for c in hits]
        finally:
            await backend.close()
    assert order["sqlite"] == ["in-text", "in-context"]
    assert order["elasticsearch"] == order["sqlite"]
