"""Upsert over HTTP with the real store and the real embedding model.

For each of new, same, append and replace: the stored messages, the memories
(seen through search), and how many texts reached the embedder (counted by
``CountingEmbedder`` around the real model).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from memoryd import bootstrap
from memoryd.settings import Settings
from memoryd.testing import CountingEmbedder
from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]


@pytest.fixture
async def counting(settings: Settings) -> AsyncIterator[CountingEmbedder]:
    async with bootstrap.embedder(settings) as real:
        yield CountingEmbedder(real)


@pytest.fixture
async def app(settings: Settings, counting: CountingEmbedder) -> web.Application:
    return await bootstrap.create_app(settings, overrides={"embedder": counting})


def conversation(*texts: str, cid: str = "trip") -> dict[str, Any]:
    names = ("Caroline", "Melanie")
    return {
        "conversationId": cid,
        "messages": [
            {"role": ("user", "assistant")[i % 2], "name": names[i % 2], "content": t}
            for i, t in enumerate(texts)
        ],
    }


async def post(client: Client, key: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v4/conversations", json=payload, headers=auth(key))
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def stored_texts(client: Client, key: str, cid: str = "trip") -> list[str]:
    answer = await (await client.get(f"/v4/conversations/{cid}", headers=auth(key))).json()
    return [m["content"] for m in answer["messages"]]


async def memory_positions(client: Client, key: str) -> list[list[int]]:
    response = await client.post("/v4/search", json={"q": "trip", "limit": 100}, headers=auth(key))
    return sorted(r["positions"] for r in (await response.json())["results"])


ONE = "We drove to the lake on Saturday."
TWO = "Did you bring the kayak?"
THREE = "Yes, and we paddled for hours."


async def test_new(client: Client, make_key: MakeKey, counting: CountingEmbedder) -> None:
    key = await make_key()
    answer = await post(client, key, conversation(ONE, TWO))
    assert answer["conversationId"] == "trip"
    assert answer["status"] == "done"
    assert answer["id"]
    assert (answer["action"], answer["messagesAdded"], answer["memoriesAdded"]) == ("created", 2, 2)
    assert await stored_texts(client, key) == [ONE, TWO]
    assert await memory_positions(client, key) == [[0], [1]]
    assert counting.texts == 2


async def test_same(client: Client, make_key: MakeKey, counting: CountingEmbedder) -> None:
    key = await make_key()
    first = await post(client, key, conversation(ONE, TWO))
    answer = await post(client, key, conversation(ONE, TWO))
    assert answer["id"] == first["id"]
    assert (answer["action"], answer["messagesAdded"], answer["memoriesAdded"]) == (
        "unchanged",
        0,
        0,
    )
    assert await stored_texts(client, key) == [ONE, TWO]
    assert await memory_positions(client, key) == [[0], [1]]
    assert counting.texts == 2


async def test_append(client: Client, make_key: MakeKey, counting: CountingEmbedder) -> None:
    key = await make_key()
    await post(client, key, conversation(ONE, TWO))
    answer = await post(client, key, conversation(ONE, TWO, THREE))
    assert (answer["action"], answer["messagesAdded"], answer["memoriesAdded"]) == (
        "appended",
        1,
        1,
    )
    assert await stored_texts(client, key) == [ONE, TWO, THREE]
    assert await memory_positions(client, key) == [[0], [1], [2]]
    assert counting.texts == 3
    assert len(counting.batches[-1]) == 1
    assert THREE in counting.batches[-1][0]


async def test_replace(client: Client, make_key: MakeKey, counting: CountingEmbedder) -> None:
    key = await make_key()
    await post(client, key, conversation(ONE, TWO, THREE))
    answer = await post(client, key, conversation(ONE, "Did you bring the canoe?"))
    assert (answer["action"], answer["memoriesRemoved"], answer["memoriesAdded"]) == (
        "replaced",
        3,
        2,
    )
    assert await stored_texts(client, key) == [ONE, "Did you bring the canoe?"]
    assert await memory_positions(client, key) == [[0], [1]]
    assert counting.texts == 5
    search = await client.post("/v4/search", json={"q": THREE}, headers=auth(key))
    assert all(THREE not in r["memory"] for r in (await search.json())["results"])


async def test_tags_and_metadata_follow_the_latest_request(
    client: Client, make_key: MakeKey
) -> None:
    key = await make_key()
    await post(client, key, {**conversation(ONE), "containerTags": ["a"], "metadata": {"v": 1}})
    await post(client, key, {**conversation(ONE), "containerTags": ["b"], "metadata": {"v": 2}})
    found = await client.post(
        "/v4/search", json={"q": "lake", "containerTags": ["b"]}, headers=auth(key)
    )
    results = (await found.json())["results"]
    assert [(r["containerTags"], r["metadata"]) for r in results] == [(["b"], {"v": 2})]
    old = await client.post(
        "/v4/search", json={"q": "lake", "containerTags": ["a"]}, headers=auth(key)
    )
    assert (await old.json())["results"] == []


async def test_timestamps_are_stored_filtered_and_shown(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    payload = conversation(ONE, TWO)
    payload["messages"][0]["timestamp"] = "2023-05-08T13:56:00Z"
    payload["messages"][1]["timestamp"] = "2023-06-01T09:00:00+02:00"
    await post(client, key, payload)
    stored = await (await client.get("/v4/conversations/trip", headers=auth(key))).json()
    assert [m["timestamp"] for m in stored["messages"]] == [
        "2023-05-08T13:56:00Z",
        "2023-06-01T07:00:00Z",
    ]
    response = await client.post(
        "/v4/search", json={"q": "lake kayak", "after": "2023-05-20"}, headers=auth(key)
    )
    results = (await response.json())["results"]
    assert [r["positions"] for r in results] == [[1]]
    assert results[0]["memory"].startswith("[1 June 2023] Melanie:")
    response = await client.post(
        "/v4/search", json={"q": "lake kayak", "before": "2023-05-20"}, headers=auth(key)
    )
    assert [r["positions"] for r in (await response.json())["results"]] == [[0]]


async def test_metadata_filters(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    for i in range(4):
        await post(
            client,
            key,
            {
                **conversation(f"Trip number {i} to the lake.", cid=f"c{i}"),
                "metadata": {"n": i, "kind": "even" if i % 2 == 0 else "odd"},
            },
        )

    async def ids(filters: dict[str, Any]) -> set[str]:
        r = await client.post(
            "/v4/search", json={"q": "lake", "filters": filters}, headers=auth(key)
        )
        return {x["conversationId"] for x in (await r.json())["results"]}

    assert await ids({"kind": "even"}) == {"c0", "c2"}
    assert await ids({"n": {"gte": 2}}) == {"c2", "c3"}
    assert await ids({"n": {"gt": 0, "lt": 3}, "kind": "odd"}) == {"c1"}
    assert await ids({"kind": {"in": ["odd"]}, "n": {"ne": 1}}) == {"c3"}
