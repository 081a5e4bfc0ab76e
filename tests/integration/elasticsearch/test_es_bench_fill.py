"""``bench.es_fill``: a SQLite data dir copied into the Elasticsearch backend through its port.

The scale bench of ``--storage elasticsearch`` measures the SQLite data dirs'
memories on the cluster, and takes the exact top 10 from the SQLite file: the
copy must hold the same conversations, memory ids, vectors and keyword
context, only the bench's tenant, nothing pending, and a key that works.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bench.es_fill import bulk_copy_to_elasticsearch, copy_to_elasticsearch

from memoryd.adapters.storage.elasticsearch import open_elasticsearch
from memoryd.adapters.storage.sqlite import open_sqlite
from memoryd.core.auth import digest
from memoryd.core.filters import MemoryFilter
from memoryd.core.indexer import Indexer
from memoryd.core.ports import IndexQuery
from memoryd.testing.contract import DIMENSION, _change, _conversation, _stored, indexed, unit
from tests.integration.elasticsearch.cluster import LocalCluster
from tests.integration.elasticsearch.conftest import new_prefix

pytestmark = pytest.mark.slow


async def _source(path: Path) -> dict[str, np.ndarray]:
    """A SQLite data dir: two conversations of ``acme`` (one of two-piece memories), one other."""
    rng = np.random.default_rng(3)
    backend = await open_sqlite(path, model_name="test-model", dimension=DIMENSION)
    vectors: dict[str, np.ndarray] = {}
    try:
        for tenant, cid, texts in (
            ("acme", "c1", ["the lighthouse keeper feeds cats", "seventeen of them"]),
            ("acme", "c2", ["a red kite over the dunes"]),
            ("other", "c1", ["not to be copied"]),
        ):
            messages = _stored(texts)
            conv = _conversation(tenant, cid, messages, tags=("t1",), metadata={"bucket": 3})
            added = []
            for i, text in enumerate(texts):
                v = np.stack([unit(rng), unit(rng)]) if cid == "c1" else unit(rng)
                mid = f"{tenant}-{cid}-{i}"
                vectors[mid] = np.atleast_2d(v)
                added.append(indexed(tenant, cid, mid, text, v, tags=("t1",),
                                     metadata={"bucket": 3}, position=i,
                                     context=f"context of {text}"))  # fmt: skip
            change = _change("created", conv, messages, added)
            await backend.conversations.commit(change)
            await Indexer(backend.conversations, backend.index).drain(tenant, cid)
    finally:
        await backend.close()
    return vectors


async def test_the_copy_holds_the_same_conversations_memories_and_vectors(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    vectors = await _source(tmp_path / "memoryd.sqlite3")
    prefix = new_prefix()
    result = await copy_to_elasticsearch(
        tmp_path, local_cluster.url, tenant="acme", prefix=prefix, concurrency=2, log=lambda _: None
    )
    assert (result.conversations, result.memories) == (2, 3)
    from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig

    config = ElasticsearchConfig(url=local_cluster.url, index_prefix=prefix, replicas=0)
    target = await open_elasticsearch(config, dimension=DIMENSION, model_name="test-model")
    source = await open_sqlite(tmp_path / "memoryd.sqlite3", model_name="test-model",
                               dimension=DIMENSION)  # fmt: skip
    try:
        for cid in ("c1", "c2"):
            want = await source.conversations.get_conversation("acme", cid)
            got = await target.conversations.get_conversation("acme", cid)
            assert want is not None
            assert got is not None
            assert [m.message for m in got.messages] == [m.message for m in want.messages]
            assert (got.container_tags, dict(got.metadata)) == (("t1",), {"bucket": 3})
            assert await target.conversations.memory_ids("acme", cid) == (
                await source.conversations.memory_ids("acme", cid)
            )
        assert await target.conversations.get_conversation("other", "c1") is None
        assert await target.conversations.pending_changes() == []
        # Each memory found by its own best piece, with the exact cosine; contexts searchable.
        for mid, rows in vectors.items():
            if not mid.startswith("acme"):
                continue
            query = IndexQuery(filter=MemoryFilter(tenant_id="acme"), vector=rows[-1], text="", k=3)
            best = max(await target.index.search(query), key=lambda c: c.similarity)
            assert best.memory_id == mid
            assert best.similarity == pytest.approx(1.0, abs=1e-5)
        query = IndexQuery(filter=MemoryFilter(tenant_id="acme"), vector=vectors["acme-c2-0"][0],
                           text="context kite", k=3)  # fmt: skip
        found = {c.memory_id: c for c in await target.index.search(query)}
        assert found["acme-c2-0"].keyword_rank == 0
        key = await target.keys.find_key(digest(result.key))
        assert key is not None
        assert key.tenant_id == "acme"
    finally:
        await target.close()
        await source.close()


async def _documents(url: str, prefix: str) -> dict[str, dict[str, object]]:
    """Every memory and conversation document under ``prefix``: (kind, _id) -> _source."""
    from elasticsearch import AsyncElasticsearch

    client = AsyncElasticsearch(url)
    try:
        found: dict[str, dict[str, object]] = {}
        for kind in ("memories", "conversations"):
            await client.indices.refresh(index=f"{prefix}-{kind}")
            answer = await client.search(index=f"{prefix}-{kind}", size=100)
            for hit in answer["hits"]["hits"]:
                found[f"{kind}/{hit['_id']}"] = hit["_source"]
        return found
    finally:
        await client.close()


async def test_the_bulk_load_writes_the_documents_the_port_writes(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    """``bulk_copy_to_elasticsearch`` (the 100k bench's loader) leaves, document for
    document, what ``copy_to_elasticsearch`` (commit + the outbox drain) leaves."""
    vectors = await _source(tmp_path / "memoryd.sqlite3")
    port, bulk = new_prefix(), new_prefix()
    url = local_cluster.url
    await copy_to_elasticsearch(tmp_path, url, tenant="acme", prefix=port, log=lambda _: None)
    result = await bulk_copy_to_elasticsearch(
        tmp_path, url, tenant="acme", prefix=bulk, batch=2, log=lambda _: None
    )
    assert (result.conversations, result.memories) == (2, 3)
    want = await _documents(local_cluster.url, port)
    got = await _documents(local_cluster.url, bulk)
    assert len(want) == 5  # 3 memories, 2 conversations
    assert got == want
    from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig

    config = ElasticsearchConfig(url=local_cluster.url, index_prefix=bulk, replicas=0)
    target = await open_elasticsearch(config, dimension=DIMENSION, model_name="test-model")
    try:
        assert await target.conversations.pending_changes() == []
        query = IndexQuery(filter=MemoryFilter(tenant_id="acme"), vector=vectors["acme-c2-0"][0],
                           text="context kite", k=3)  # fmt: skip
        found = {c.memory_id: c for c in await target.index.search(query)}
        assert found["acme-c2-0"].keyword_rank == 0
        assert found["acme-c2-0"].similarity == pytest.approx(1.0, abs=1e-5)
        assert await target.keys.find_key(digest(result.key)) is not None
    finally:
        await target.close()
