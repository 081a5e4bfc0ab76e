"""The outbox over HTTP with the real SQLite file: an index update that fails is finished.

A ``FlakyIndex`` around the real index refuses the apply after the commit:
the request answers 503, the change waits in the file's outbox, the same
request sent again (``unchanged``) finishes it, and a restart replays it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from attrs import frozen

from memoryd import bootstrap
from memoryd.adapters.storage.sqlite import SqliteBackend, open_sqlite
from memoryd.core.indexer import Indexer
from memoryd.settings import Settings
from memoryd.testing import FlakyIndex
from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]
ATTEMPTS = Indexer.__attrs_attrs__.attempts.default  # type: ignore[attr-defined]


@frozen
class Backend:
    """The real backend with its index wrapped."""

    real: SqliteBackend
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
async def flaky(settings: Settings) -> AsyncIterator[tuple[Client, FlakyIndex]]:
    async with bootstrap.embedder(settings) as embedder:
        real = await open_sqlite(
            settings.database_path, model_name=embedder.model_name, dimension=embedder.dimension
        )
        backend = Backend(real, FlakyIndex(real.index))
        app = await bootstrap.create_app(
            settings, overrides={"embedder": embedder, "storage": backend}
        )
        try:
            async with TestClient(TestServer(app)) as client:
                yield client, backend.index
        finally:
            await real.close()


def pending(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


def body(*texts: str) -> dict[str, Any]:
    roles = ("user", "assistant")
    return {
        "conversationId": "trip",
        "messages": [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)],
    }


async def found(client: Client, key: str, q: str) -> list[str]:
    answer = await client.post("/v4/search", json={"q": q, "limit": 50}, headers=auth(key))
    assert answer.status == 200
    return sorted(r["memory"].split(": ", 1)[1] for r in (await answer.json())["results"])


OLD = ("We drove to the lake on Saturday.", "Did you bring the kayak?")
NEW = ("We flew to the mountains on Sunday.", "Did you bring the skis?")


async def test_a_replace_that_the_index_refuses_converges_on_retry(
    flaky: tuple[Client, FlakyIndex], make_key: MakeKey, settings: Settings
) -> None:
    client, index = flaky
    key = await make_key()
    first = await client.post("/v4/conversations", json=body(*OLD), headers=auth(key))
    assert first.status == 200

    index.fail_next(ATTEMPTS)
    failed = await client.post("/v4/conversations", json=body(*NEW), headers=auth(key))
    assert failed.status == 503
    error = await failed.json()
    assert "send the same request again" in error["error"]
    assert error["details"]["conversationId"] == "trip"
    assert pending(settings.database_path) == 1
    stored = await (await client.get("/v4/conversations/trip", headers=auth(key))).json()
    assert [m["content"] for m in stored["messages"]] == list(NEW)  # the store has it

    retried = await client.post("/v4/conversations", json=body(*NEW), headers=auth(key))
    assert retried.status == 200
    assert (await retried.json())["action"] == "unchanged"
    assert pending(settings.database_path) == 0
    assert await found(client, key, "lake kayak mountains skis trip") == sorted(NEW)


async def test_a_delete_that_the_index_refuses_converges_on_retry(
    flaky: tuple[Client, FlakyIndex], make_key: MakeKey, settings: Settings
) -> None:
    client, index = flaky
    key = await make_key()
    await client.post("/v4/conversations", json=body(*OLD), headers=auth(key))
    assert await found(client, key, "lake kayak") == sorted(OLD)

    index.fail_next(ATTEMPTS)
    assert (await client.delete("/v4/conversations/trip", headers=auth(key))).status == 503
    assert pending(settings.database_path) == 1
    assert (await client.delete("/v4/conversations/trip", headers=auth(key))).status == 404
    assert pending(settings.database_path) == 0
    assert await found(client, key, "lake kayak") == []


async def test_a_change_pending_at_a_restart_is_replayed(
    flaky: tuple[Client, FlakyIndex], make_key: MakeKey, settings: Settings
) -> None:
    client, index = flaky
    key = await make_key()
    await client.post("/v4/conversations", json=body(*OLD), headers=auth(key))
    index.fail_next(ATTEMPTS)
    failed = await client.post("/v4/conversations", json=body(*NEW), headers=auth(key))
    assert failed.status == 503
    await client.close()
    assert pending(settings.database_path) == 1

    async with TestClient(TestServer(await bootstrap.create_app(settings))) as again:
        assert pending(settings.database_path) == 0
        assert await found(again, key, "lake kayak mountains skis trip") == sorted(NEW)
