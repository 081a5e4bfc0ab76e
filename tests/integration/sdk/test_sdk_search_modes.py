"""The options of ``search.memories``: ``searchMode``, ``include``, ``threshold``, ``rerank``.

Each changes the answer (memoryd.adapters.http._search_options and docs/api.md
say how); none is silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import supermemory
from aiohttp import web
from aiohttp.test_utils import TestClient

from memoryd import bootstrap
from memoryd.core.auth import digest, new_key
from tests.helpers import MakeKey, auth, make_settings
from tests.integration.sdk.conftest import Client, Ingest, MakeSdk

TURNS = [
    "We booked a flight to Lisbon for the spring holiday.",
    "The hotel in Lisbon has a rooftop pool.",
    "Remember to renew the passport before the trip.",
]


@pytest.fixture
async def sdk(
    client: Client, make_key: MakeKey, make_sdk: MakeSdk, ingest: Ingest
) -> tuple[supermemory.AsyncSupermemory, str]:
    """The SDK, and the stored conversation's id (the document id)."""
    key = await make_key("acme")
    await ingest(key, "trip", TURNS, containerTag="t1", metadata={"title": "Lisbon trip"})
    await ingest(key, "other", ["A flight to Lisbon for work."], containerTag="t2")
    response = await client.get("/v4/conversations/trip", headers=auth(key))
    return make_sdk(key), (await response.json())["id"]


def dumped(answer: Any) -> list[dict[str, Any]]:
    return [r.model_dump(by_alias=True, exclude_none=True) for r in answer.results]


async def test_search_modes(sdk: tuple[supermemory.AsyncSupermemory, str]) -> None:
    client, document_id = sdk
    for mode in ("memories", "hybrid"):
        answer = await client.search.memories(
            q="Lisbon hotel", container_tag="t1", search_mode=mode
        )
        results = dumped(answer)
        assert results, mode
        assert all("memory" in r and "chunk" not in r for r in results), mode
        assert "rooftop pool" in results[0]["memory"]
    answer = await client.search.memories(
        q="Lisbon hotel", container_tag="t1", search_mode="documents"
    )
    results = dumped(answer)
    assert all("chunk" in r and "memory" not in r for r in results)
    assert "rooftop pool" in results[0]["chunk"]
    assert {r["documentId"] for r in results} == {document_id}
    with pytest.raises(supermemory.BadRequestError) as raised:
        await client.search.memories(q="x", search_mode="everything")  # type: ignore[arg-type]
    assert raised.value.body["details"][0]["path"] == "searchMode"  # type: ignore[index]


async def test_include(sdk: tuple[supermemory.AsyncSupermemory, str]) -> None:
    client, document_id = sdk
    plain = dumped(await client.search.memories(q="hotel pool", container_tag="t1", limit=1))
    assert not {"documents", "context", "chunks"} & set(plain[0])
    answer = await client.search.memories(
        q="hotel pool",
        container_tag="t1",
        limit=1,
        include={"documents": True, "summaries": True, "related_memories": True, "chunks": True},
    )
    (top,) = answer.results
    assert top.documents is not None
    (document,) = top.documents
    assert (document.id, document.title, document.type) == (
        document_id,
        "Lisbon trip",
        "conversation",
    )
    assert document.metadata == {"title": "Lisbon trip"}
    assert document.summary is None
    assert top.context is not None
    assert top.context.related is not None
    # The turns just before and after it in its conversation.
    assert sorted(r.memory for r in top.context.related) == sorted([TURNS[0], TURNS[2]])
    assert top.chunks is not None
    assert [(c.content, c.document_id) for c in top.chunks] == [(TURNS[1], document_id)]
    # Forgotten memories are deleted: asking for them adds nothing.
    forgotten = await client.search.memories(
        q="hotel pool", container_tag="t1", include={"forgotten_memories": True}
    )
    assert [r.id for r in forgotten.results] == [
        r.id for r in (await client.search.memories(q="hotel pool", container_tag="t1")).results
    ]


async def test_threshold_and_container_tag(sdk: tuple[supermemory.AsyncSupermemory, str]) -> None:
    client, _ = sdk
    every = await client.search.memories(q="Lisbon flight", container_tag="t1", threshold=0)
    assert len(every.results) == len(TURNS)
    strict = await client.search.memories(q="Lisbon flight", container_tag="t1", threshold=0.6)
    assert 0 < len(strict.results) < len(TURNS)
    assert all(r.similarity >= 0.6 for r in strict.results)
    both = await client.search.memories(q="Lisbon flight", container_tags=["t1", "t2"])
    assert len(both.results) == len(TURNS) + 1
    with pytest.raises(supermemory.BadRequestError):
        await client.search.memories(q="Lisbon", container_tag="t1", container_tags=["t2"])


async def test_rerank_says_whether_rerankers_ran(
    sdk: tuple[supermemory.AsyncSupermemory, str],
) -> None:
    client, _ = sdk
    answer = await client.search.memories(q="Lisbon", container_tag="t1", rerank=True)
    assert answer.model_dump()["reranked"] is False  # no `rerankers` setting


@pytest.fixture
async def reranking(tmp_path: Path, aiohttp_client: Any) -> TestClient[Any, Any]:
    settings = make_settings(tmp_path / "reranking", rerankers=("recency",))
    app: web.Application = await bootstrap.create_app(settings)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def test_rerank_runs_the_configured_rerankers(
    reranking: TestClient[Any, Any], tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "reranking", rerankers=("recency",))
    key = new_key()
    async with bootstrap.key_store(settings) as keys:
        await keys.create_key(tenant="acme", digest=digest(key))
    body = {
        "q": "Lisbon",
        "rerank": True,
    }
    messages = [{"role": "user", "content": t} for t in TURNS]
    ingested = await reranking.post(
        "/v4/conversations", json={"conversationId": "c", "messages": messages}, headers=auth(key)
    )
    assert ingested.status == 200
    answer = await (await reranking.post("/v4/search", json=body, headers=auth(key))).json()
    assert answer["reranked"] is True
    plain = await (
        await reranking.post("/v4/search", json={**body, "rerank": False}, headers=auth(key))
    ).json()
    assert plain["reranked"] is False
