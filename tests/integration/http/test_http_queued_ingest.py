"""Queued ingest over HTTP: the real SQLite file, a real aiohttp server, the real MiniLM.

The real embedder is wrapped in a gate that holds document embedding until the
test opens it, so that what a client sees while a write is queued is certain.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from attrs import define, field

from memoryd import bootstrap
from memoryd.core.errors import ConfigurationError
from memoryd.settings import Settings, load_settings
from tests.helpers import MakeKey, auth, make_settings

Client = TestClient[Any, Any]


@define
class Gate:
    """The real embedder; ``embed_documents`` waits while the gate is closed."""

    inner: Any
    open: asyncio.Event = field(factory=asyncio.Event)
    batches: int = 0

    @property
    def model_name(self) -> str:
        return str(self.inner.model_name)

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    async def embed_documents(self, texts: Sequence[str]) -> Any:
        await self.open.wait()
        self.batches += 1
        return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> Any:
        return await self.inner.embed_query(text)


@pytest.fixture
def queued_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", queued_ingest=True)


@pytest.fixture
async def served(queued_settings: Settings) -> AsyncIterator[tuple[Client, Gate]]:
    async with bootstrap.embedder(queued_settings) as real:
        gate = Gate(real)
        app = await bootstrap.create_app(queued_settings, overrides={"embedder": gate})
        async with TestClient(TestServer(app)) as client:
            yield client, gate


async def make(settings: Settings) -> str:
    from memoryd.core.auth import digest, new_key

    plaintext = new_key()
    async with bootstrap.key_store(settings) as keys:
        await keys.create_key(tenant="acme", digest=digest(plaintext))
    return plaintext


async def processing(client: Client, key: str) -> dict[str, Any]:
    response = await client.get("/v3/documents/processing", headers=auth(key))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def until_done(client: Client, key: str) -> None:
    for _ in range(600):
        if (await processing(client, key))["totalCount"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the queued writes were not done in 30 s")


HIKING = {
    "conversationId": "trip",
    "messages": [
        {"role": "user", "content": "I went hiking in the Alps last summer with my sister."},
        {"role": "assistant", "content": "That sounds lovely. Which trail did you take?"},
    ],
}


async def test_a_queued_write_answers_queued_then_becomes_done_and_searchable(
    served: tuple[Client, Gate], queued_settings: Settings
) -> None:
    client, gate = served
    key = await make(queued_settings)
    response = await client.post("/v4/conversations", json=HIKING, headers=auth(key))
    assert response.status == 200
    answer = await response.json()
    assert answer["status"] == "queued"
    assert (answer["action"], answer["messagesAdded"], answer["memoriesAdded"]) == (
        "created",
        2,
        0,
    )
    doc = await client.post(
        "/v3/documents", json={"content": "My cat Mochi likes tuna."}, headers=auth(key)
    )
    added = await doc.json()
    assert added["status"] == "queued"

    # Queued: the document says so, and the processing list has both, in supermemory's shape.
    got = await (await client.get(f"/v3/documents/{answer['id']}", headers=auth(key))).json()
    assert got["status"] == "queued"
    assert "memories" not in got
    stored = await (await client.get("/v4/conversations/trip", headers=auth(key))).json()
    assert (stored["status"], len(stored["messages"])) == ("queued", 2)
    listed = await processing(client, key)
    assert listed["totalCount"] == 2
    assert {d["id"] for d in listed["documents"]} == {answer["id"], added["id"]}
    assert {d["status"] for d in listed["documents"]} == {"queued"}
    assert {"id", "createdAt", "customId", "metadata", "title", "type", "updatedAt"} <= set(
        listed["documents"][0]
    )
    everything = await client.get("/v3/documents/processing?view=all", headers=auth(key))
    assert (await everything.json())["pagination"]["totalItems"] == 2

    gate.open.set()
    await until_done(client, key)
    got = await (await client.get(f"/v3/documents/{answer['id']}", headers=auth(key))).json()
    assert got["status"] == "done"
    stored = await (await client.get("/v4/conversations/trip", headers=auth(key))).json()
    assert stored["status"] == "done"
    assert len(got["memories"]) == 2
    listing = await client.post("/v3/documents/list", json={}, headers=auth(key))
    assert {d["status"] for d in (await listing.json())["memories"]} == {"done"}

    # The real model finds them by meaning.
    found = await client.post(
        "/v4/search", json={"q": "mountain walk with a sibling"}, headers=auth(key)
    )
    results = (await found.json())["results"]
    assert results
    assert results[0]["conversationId"] == "trip"
    pet = await client.post("/v3/search", json={"q": "what does my pet eat"}, headers=auth(key))
    assert (await pet.json())["results"][0]["documentId"] == added["id"]


async def test_append_and_replace_while_queued_keep_exactly_the_latest_history(
    served: tuple[Client, Gate], queued_settings: Settings
) -> None:
    client, gate = served
    key = await make(queued_settings)
    first = [
        {"role": "user", "content": "The quarterly report is due on Friday."},
        {"role": "assistant", "content": "I will remind you on Thursday."},
    ]
    more = [{"role": "user", "content": "Also book the dentist for Monday."}]
    body = {"conversationId": "c1", "messages": first}
    assert (await (await client.post("/v4/conversations", json=body, headers=auth(key))).json())[
        "status"
    ] == "queued"
    body = {"conversationId": "c1", "messages": first + more}
    appended = await (await client.post("/v4/conversations", json=body, headers=auth(key))).json()
    assert (appended["action"], appended["messagesAdded"], appended["status"]) == (
        "appended",
        1,
        "queued",
    )
    again = await (await client.post("/v4/conversations", json=body, headers=auth(key))).json()
    assert (again["action"], again["status"]) == ("unchanged", "queued")
    gate.open.set()
    await until_done(client, key)
    conversation = await client.get("/v4/conversations/c1", headers=auth(key))
    assert len((await conversation.json())["messages"]) == 3
    doc = await (await client.get("/v3/documents/c1", headers=auth(key))).json()
    assert sorted(m["memory"].split(": ", 1)[-1] for m in doc["memories"]) == sorted(
        m["content"] for m in first + more
    )

    # Replace while queued: the memories of the old history go, and none come back.
    gate.open.clear()
    new = [{"role": "user", "content": "Actually, I moved to Lisbon in March."}]
    body = {"conversationId": "c1", "messages": new}
    replaced = await (await client.post("/v4/conversations", json=body, headers=auth(key))).json()
    assert (replaced["action"], replaced["memoriesRemoved"], replaced["status"]) == (
        "replaced",
        3,
        "queued",
    )
    gate.open.set()
    await until_done(client, key)
    doc = await (await client.get("/v3/documents/c1", headers=auth(key))).json()
    assert [m["memory"].split(": ", 1)[-1] for m in doc["memories"]] == [new[0]["content"]]
    found = await client.post("/v4/search", json={"q": "quarterly report"}, headers=auth(key))
    assert all("report" not in r["memory"] for r in (await found.json())["results"])


async def test_without_the_setting_writes_are_done_when_answered(
    client: Client, make_key: MakeKey
) -> None:
    key = await make_key()
    answer = await (await client.post("/v4/conversations", json=HIKING, headers=auth(key))).json()
    assert (answer["status"], answer["memoriesAdded"]) == ("done", 2)
    assert (await processing(client, key))["totalCount"] == 0


def test_the_setting_reads_from_the_environment(tmp_path: Path) -> None:
    env = {"MEMORYD_QUEUED_INGEST": "1", "MEMORYD_DATA_DIR": str(tmp_path)}
    assert load_settings(env=env).queued_ingest is True
    assert load_settings(env={"MEMORYD_DATA_DIR": str(tmp_path)}).queued_ingest is False


@define
class NoQueueBackend:
    """A backend whose conversation store cannot queue (as the Elasticsearch one)."""

    conversations: object = field(factory=object)


def test_a_backend_that_cannot_queue_is_refused_naming_the_setting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, queued_ingest=True, storage="elasticsearch")
    with pytest.raises(ConfigurationError) as refused:
        bootstrap.check_queued_ingest(settings, NoQueueBackend())  # type: ignore[arg-type]
    assert "queued_ingest" in refused.value.message
    assert "'elasticsearch'" in refused.value.message
    assert refused.value.details == {"setting": "queued_ingest", "storage": "elasticsearch"}
    bootstrap.check_queued_ingest(  # off: any backend
        make_settings(tmp_path),
        NoQueueBackend(),  # type: ignore[arg-type]
    )
