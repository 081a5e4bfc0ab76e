"""``memoryd es migrate`` on the local server: new indices, a reindex, one atomic alias swap.

A run that finds every index current is a no-op; one that finds an outdated
index (another schema version, or memories built with other
``index_options``) moves that kind to ``vN+1``; ``--force`` moves every kind.
"""

from __future__ import annotations

import numpy as np
import pytest
from attrs import evolve

from memoryd import cli
from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig, open_elasticsearch
from memoryd.adapters.storage.elasticsearch._codec import keyword_values
from memoryd.adapters.storage.elasticsearch._codec import memory_doc_id as doc_id_of
from memoryd.adapters.storage.elasticsearch._migrate import current, migrate_url
from memoryd.adapters.storage.elasticsearch._schema import ANALYSIS, KINDS, SCHEMA_VERSION
from memoryd.core.filters import MemoryFilter
from memoryd.core.ports import IndexQuery
from memoryd.testing.contract import DIMENSION, _ingest, indexed, unit

pytest.importorskip("elasticsearch", reason="elasticsearch[async] is not installed")

V = SCHEMA_VERSION


async def _targets(config: ElasticsearchConfig) -> dict[str, str]:
    backend = await open_elasticsearch(config, dimension=DIMENSION, model_name="contract")
    try:
        found = {k: await current(backend.cluster, k) for k in KINDS}
        return {k: c.index for k, c in found.items() if c is not None}
    finally:
        await backend.close()


async def _state(config: ElasticsearchConfig, q: np.ndarray) -> tuple[list[str], list[str], int]:  # type: ignore[type-arg]
    """What a server sees: dense hits, keyword hits, the conversation's message count."""
    backend = await open_elasticsearch(config, dimension=DIMENSION, model_name="contract")
    try:
        f = MemoryFilter(tenant_id="acme", container_tags=("red",))
        dense = await backend.index.search(IndexQuery(filter=f, vector=q, text="", k=10))
        words = await backend.index.search(IndexQuery(filter=f, vector=q, text="lisbon", k=10))
        conv = await backend.conversations.get_conversation("acme", "c0")
        assert conv is not None
        return (
            sorted(c.memory_id for c in dense),
            sorted(c.memory_id for c in words if c.keyword_rank is not None),
            len(conv.messages),
        )
    finally:
        await backend.close()


async def test_migrate_moves_outdated_indices_and_keeps_the_data(
    es_config: ElasticsearchConfig,
) -> None:
    rng = np.random.default_rng(3)
    q = unit(rng)
    items = [
        indexed("acme", f"c{i}", f"m{i}", f"trip {i} to Lisbon", unit(rng), tags=("red",),
                metadata={"n": i})
        for i in range(5)
    ]  # fmt: skip
    backend = await open_elasticsearch(es_config, dimension=DIMENSION, model_name="contract")
    try:
        await _ingest(backend, items)
        await backend.keys.create_key(tenant="acme", digest="d" * 64, label="k")
    finally:
        await backend.close()
    before = await _state(es_config, q)
    assert before[0] == [f"m{i}" for i in range(5)]
    first = await _targets(es_config)
    # A fresh index is numbered by the schema version it was built for.
    assert set(first.values()) == {es_config.index_name(k, V) for k in KINDS}

    # Everything current: nothing moves.
    assert await migrate_url(es_config) == []
    assert await _targets(es_config) == first

    # The memories were built with int8_hnsw; the settings now say hnsw: that kind moves.
    hnsw = evolve(es_config, index_options="hnsw")
    moved = await migrate_url(hnsw)
    assert [(m.kind, m.old_index, m.new_index, m.documents) for m in moved] == [
        ("memories", es_config.index_name("memories", V),
         es_config.index_name("memories", V + 1), 5)
    ]  # fmt: skip
    after = await _targets(hnsw)
    assert after == {**first, "memories": es_config.index_name("memories", V + 1)}
    backend = await open_elasticsearch(hnsw, dimension=DIMENSION, model_name="contract")
    try:
        found = await current(backend.cluster, "memories")
        assert found is not None
        assert found.index_options == "hnsw"
        # Intact: the same memories, their text, tags and metadata.
        got = await backend.index.fetch("acme", [f"m{i}" for i in range(5)])
        assert [(m.id, m.text, m.container_tags, dict(m.metadata)) for m in got] == [
            (i.memory.id, i.memory.text, i.memory.container_tags, dict(i.memory.metadata))
            for i in items
        ]
        key = await backend.keys.find_key("d" * 64)
        assert key is not None
        assert key.label == "k"
        # The old index is kept for a rollback, write-blocked.
        settings = await backend.cluster.client.indices.get_settings(
            index=es_config.index_name("memories", V)
        )
        blocks = next(iter(settings.values()))["settings"]["index"]["blocks"]
        assert str(blocks["write"]).lower() == "true"
    finally:
        await backend.close()
    assert await _state(hnsw, q) == before

    # A second run is a no-op.
    assert await migrate_url(hnsw) == []
    assert await _targets(hnsw) == after

    # --force moves every kind (memories once more), --delete-old removes the old ones.
    moved = await migrate_url(hnsw, force=True, delete_old=True)
    assert {m.kind: m.new_index for m in moved} == {
        k: hnsw.index_name(k, V + 2 if k == "memories" else V + 1) for k in KINDS
    }
    assert await _state(hnsw, q) == before
    backend = await open_elasticsearch(hnsw, dimension=DIMENSION, model_name="contract")
    try:
        for m in moved:
            assert not await backend.cluster.client.indices.exists(index=m.old_index)
        # The new indices take writes: a server goes on as before.
        await _ingest(backend, [indexed("acme", "c9", "m9", "later", q, tags=("red",))])
    finally:
        await backend.close()
    assert "m9" in (await _state(hnsw, q))[0]


async def test_migrating_memories_from_schema_1_fills_the_keyword_field(
    es_config: ElasticsearchConfig,
) -> None:
    """Schema 1 ranked ``text`` and ``context`` and had no ``keywords``: its memories,
    reindexed with the upgrade script, are found by the keyword side again."""
    rng = np.random.default_rng(4)
    q = unit(rng)
    items = [
        indexed("acme", f"c{i}", f"m{i}", f"trip {i} to Lisbon", unit(rng), tags=("red",),
                context=f"the turn before {i}")
        for i in range(3)
    ]  # fmt: skip
    backend = await open_elasticsearch(es_config, dimension=DIMENSION, model_name="contract")
    alias = es_config.alias("memories")
    current_index = es_config.index_name("memories", V)
    old = f"{alias}-old-v1"  # outside the template's pattern: schema 1's mapping as it was
    try:
        await _ingest(backend, items)
        client = backend.cluster.client
        mapping = (await client.indices.get_mapping(index=current_index))[current_index]
        properties = dict(mapping["mappings"]["properties"])
        del properties["keywords"]
        properties["text"] = properties["context"] = {"type": "text", "analyzer": "memoryd_text"}
        meta = {**mapping["mappings"]["_meta"], "schema_version": 1}
        await client.indices.create(
            index=old,
            settings={"number_of_replicas": 0, "analysis": ANALYSIS},
            mappings={"dynamic": "strict", "_meta": meta, "properties": properties},
        )
        hits = (await client.search(index=current_index, size=100))["hits"]["hits"]
        assert len(hits) == 3
        for hit in hits:
            source = {k: v for k, v in hit["_source"].items() if k != "keywords"}
            await client.index(index=old, id=hit["_id"], routing="acme", document=source)
        await client.indices.refresh(index=old)
        await client.indices.update_aliases(
            actions=[
                {"remove": {"index": current_index, "alias": alias}},
                {"add": {"index": old, "alias": alias, "is_write_index": True}},
            ]
        )
        await client.indices.delete(index=current_index)
        words = await backend.index.search(
            IndexQuery(filter=MemoryFilter(tenant_id="acme"), vector=q, text="lisbon", k=10)
        )
        assert not [c for c in words if c.keyword_rank is not None]  # no keywords yet
    finally:
        await backend.close()

    moved = await migrate_url(es_config)
    assert [(m.kind, m.old_index, m.new_index, m.documents) for m in moved] == [
        ("memories", old, es_config.index_name("memories", 2), 3)
    ]
    backend = await open_elasticsearch(es_config, dimension=DIMENSION, model_name="contract")
    try:
        words = await backend.index.search(
            IndexQuery(filter=MemoryFilter(tenant_id="acme"), vector=q, text="lisbon", k=10)
        )
        assert sorted(c.memory_id for c in words if c.keyword_rank is not None) == [
            "m0", "m1", "m2"
        ]  # fmt: skip
        doc = await backend.cluster.client.get(
            index=alias, id=doc_id_of("acme", "m1"), routing="acme"
        )
        text = doc["_source"]["text"]
        assert doc["_source"]["keywords"] == keyword_values(text, "the turn before 1")
    finally:
        await backend.close()


def test_the_command_line(
    es_config: ElasticsearchConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    async def prepare() -> None:
        backend = await open_elasticsearch(es_config, dimension=DIMENSION, model_name="contract")
        await backend.close()

    asyncio.run(prepare())
    monkeypatch.setenv("MEMORYD_ELASTICSEARCH_URL", es_config.url)
    monkeypatch.setenv("MEMORYD_ELASTICSEARCH_INDEX_PREFIX", es_config.index_prefix)
    monkeypatch.setenv("MEMORYD_ELASTICSEARCH_REPLICAS", "0")
    assert cli.main(["es", "migrate"]) == 0
    assert "Nothing to migrate" in capsys.readouterr().out
    assert cli.main(["es", "migrate", "--force", "--delete-old"]) == 0
    out = capsys.readouterr().out
    assert f"{es_config.alias('memories')} -> {es_config.index_name('memories', V + 1)}" in out
    assert f"deleted {es_config.index_name('memories', V)}" in out
    assert "Migrated 5 indices." in out
