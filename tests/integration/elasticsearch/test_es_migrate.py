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
from memoryd.adapters.storage.elasticsearch._migrate import current, migrate_url
from memoryd.adapters.storage.elasticsearch._schema import KINDS
from memoryd.core.filters import MemoryFilter
from memoryd.core.ports import IndexQuery
from memoryd.testing.contract import DIMENSION, _ingest, indexed, unit

pytest.importorskip("elasticsearch", reason="elasticsearch[async] is not installed")


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
    assert set(first.values()) == {es_config.index_name(k, 1) for k in KINDS}

    # Everything current: nothing moves.
    assert await migrate_url(es_config) == []
    assert await _targets(es_config) == first

    # The memories were built with int8_hnsw; the settings now say hnsw: that kind moves.
    hnsw = evolve(es_config, index_options="hnsw")
    moved = await migrate_url(hnsw)
    assert [(m.kind, m.old_index, m.new_index, m.documents) for m in moved] == [
        ("memories", es_config.index_name("memories", 1),
         es_config.index_name("memories", 2), 5)
    ]  # fmt: skip
    after = await _targets(hnsw)
    assert after == {**first, "memories": es_config.index_name("memories", 2)}
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
            index=es_config.index_name("memories", 1)
        )
        blocks = next(iter(settings.values()))["settings"]["index"]["blocks"]
        assert str(blocks["write"]).lower() == "true"
    finally:
        await backend.close()
    assert await _state(hnsw, q) == before

    # A second run is a no-op.
    assert await migrate_url(hnsw) == []
    assert await _targets(hnsw) == after

    # --force moves every kind (memories v2 -> v3), --delete-old removes the old ones.
    moved = await migrate_url(hnsw, force=True, delete_old=True)
    assert {m.kind: m.new_index for m in moved} == {
        k: hnsw.index_name(k, 3 if k == "memories" else 2) for k in KINDS
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
    assert f"{es_config.alias('memories')} -> {es_config.index_name('memories', 2)}" in out
    assert f"deleted {es_config.index_name('memories', 1)}" in out
    assert "Migrated 5 indices." in out
