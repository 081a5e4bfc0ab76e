"""A crash between the writes, on Elasticsearch: the conversation written, the index not.

A ``FlakyIndex`` around the real Elasticsearch index refuses the apply after
the conversation document (with its outbox entry) is written: the request
answers 503 and the entry waits in the conversation's document. The same
request sent again finishes it, and after that 200 no search returns a
replaced memory; a restart replays what is still pending.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from attrs import frozen

from memoryd import bootstrap
from memoryd.adapters.storage.elasticsearch import ElasticsearchBackend
from memoryd.core.indexer import Indexer
from memoryd.settings import Settings
from memoryd.testing import FlakyIndex
from tests.helpers import auth
from tests.integration.elasticsearch.cluster import LocalCluster
from tests.integration.elasticsearch.conftest import new_prefix
from tests.integration.elasticsearch.test_es_http import es_settings, make_key

Client = TestClient[Any, Any]
ATTEMPTS = Indexer.__attrs_attrs__.attempts.default  # type: ignore[attr-defined]

OLD = ("We drove to the lake on Saturday.", "Did you bring the kayak?")
NEW = ("We flew to the mountains on Sunday.", "Did you bring the skis?")
QUERY = "lake kayak mountains skis trip"


@frozen
class Backend:
    """The real Elasticsearch backend with its index wrapped."""

    real: ElasticsearchBackend
    index: FlakyIndex

    @property
    def conversations(self) -> Any:
        return self.real.conversations

    @property
    def threads(self) -> Any:
        return self.real.threads

    @property
    def keys(self) -> Any:
        return self.real.keys

    async def close(self) -> None:
        await self.real.close()


@pytest.fixture
def settings(tmp_path: Path, local_cluster: LocalCluster) -> Settings:
    return es_settings(tmp_path, local_cluster.url, new_prefix())


@pytest.fixture
async def flaky(settings: Settings) -> AsyncIterator[tuple[Client, Backend]]:
    from memoryd.adapters.storage.elasticsearch import open_elasticsearch
    from memoryd.plugins.builtin.elasticsearch import config_of

    async with bootstrap.embedder(settings) as embedder:
        real = await open_elasticsearch(
            config_of(settings), dimension=embedder.dimension, model_name=embedder.model_name
        )
        backend = Backend(real, FlakyIndex(real.index))
        app = await bootstrap.create_app(
            settings, overrides={"embedder": embedder, "storage": backend}
        )
        try:
            async with TestClient(TestServer(app)) as client:
                yield client, backend
        finally:
            await real.close()


def body(*texts: str) -> dict[str, Any]:
    roles = ("user", "assistant")
    return {
        "conversationId": "trip",
        "messages": [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)],
    }


async def found(client: Client, key: str, q: str = QUERY) -> list[str]:
    answer = await client.post("/v4/search", json={"q": q, "limit": 50}, headers=auth(key))
    assert answer.status == 200, await answer.text()
    return sorted(r["memory"].split(": ", 1)[1] for r in (await answer.json())["results"])


async def pending(backend: Backend) -> int:
    return len(await backend.conversations.pending_changes())


async def test_a_replace_the_index_refuses_converges_on_retry(
    flaky: tuple[Client, Backend], settings: Settings
) -> None:
    client, backend = flaky
    key = await make_key(settings)
    first = await client.post("/v4/conversations", json=body(*OLD), headers=auth(key))
    assert first.status == 200
    assert await found(client, key) == sorted(OLD)

    backend.index.fail_next(ATTEMPTS)
    failed = await client.post("/v4/conversations", json=body(*NEW), headers=auth(key))
    assert failed.status == 503
    error = await failed.json()
    assert "send the same request again" in error["error"]
    assert backend.index.failed
    assert not backend.index.failures
    assert await pending(backend) == 1  # the outbox entry, in the conversation's document
    stored = await (await client.get("/v4/conversations/trip", headers=auth(key))).json()
    assert [m["content"] for m in stored["messages"]] == list(NEW)  # the store has it

    retried = await client.post("/v4/conversations", json=body(*NEW), headers=auth(key))
    assert retried.status == 200
    assert (await retried.json())["action"] == "unchanged"
    assert await pending(backend) == 0
    # After the 200, no search returns a replaced memory: not once, not by keyword either.
    for q in (QUERY, "lake", "kayak Saturday"):
        for _ in range(3):
            assert not set(await found(client, key, q)) & set(OLD), q
    assert await found(client, key) == sorted(NEW)


async def test_a_delete_the_index_refuses_converges_on_retry(
    flaky: tuple[Client, Backend], settings: Settings
) -> None:
    client, backend = flaky
    key = await make_key(settings)
    await client.post("/v4/conversations", json=body(*OLD), headers=auth(key))
    assert await found(client, key) == sorted(OLD)

    backend.index.fail_next(ATTEMPTS)
    assert (await client.delete("/v4/conversations/trip", headers=auth(key))).status == 503
    assert await pending(backend) == 1
    assert (await client.delete("/v4/conversations/trip", headers=auth(key))).status == 404
    assert await pending(backend) == 0
    assert await found(client, key) == []


async def test_a_change_pending_at_a_restart_is_replayed(
    flaky: tuple[Client, Backend], settings: Settings
) -> None:
    client, backend = flaky
    key = await make_key(settings)
    await client.post("/v4/conversations", json=body(*OLD), headers=auth(key))
    backend.index.fail_next(ATTEMPTS)
    failed = await client.post("/v4/conversations", json=body(*NEW), headers=auth(key))
    assert failed.status == 503
    await client.close()
    assert await pending(backend) == 1

    # Another server (a fresh app on the same cluster) replays it at its start.
    async with TestClient(TestServer(await bootstrap.create_app(settings))) as again:
        assert await pending(backend) == 0
        assert await found(again, key) == sorted(NEW)
