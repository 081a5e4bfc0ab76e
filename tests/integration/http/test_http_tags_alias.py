"""``containerTag`` (one tag, as the supermemory SDKs send it) scopes like ``containerTags``.

The SDKs and ``@supermemory/tools`` send ``{"q": ..., "containerTag": "user-42"}``; a
server that drops the field hands a tenant's full key every user's memories.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]

ROUTES = [
    ("/v4/conversations", {"conversationId": "c", "messages": [{"role": "user", "content": "x"}]}),
    ("/v4/search", {"q": "x"}),
    ("/api/chat", {"messages": [{"role": "user", "content": "x"}]}),
]


async def remember(client: Client, key: str, cid: str, text: str, tag: str) -> None:
    body = {"conversationId": cid, "messages": [{"role": "user", "content": text}]}
    response = await client.post(
        "/v4/conversations", json=body | {"containerTag": tag}, headers=auth(key)
    )
    assert response.status == 200, await response.text()


async def test_search_with_container_tag_sees_only_that_users_memories(
    client: Client, make_key: MakeKey
) -> None:
    key = await make_key("acme")  # a full key of the tenant, as an app backend holds
    await remember(client, key, "a", "My locker code is 1234.", "user-42")
    await remember(client, key, "b", "My locker code is 9876.", "user-7")

    found = await client.post(
        "/v4/search", json={"q": "locker code", "containerTag": "user-42"}, headers=auth(key)
    )
    assert found.status == 200, await found.text()
    results = (await found.json())["results"]
    assert [r["conversationId"] for r in results] == ["a"]
    assert results[0]["containerTags"] == ["user-42"]


async def test_ingest_stores_container_tag_as_its_tags(client: Client, make_key: MakeKey) -> None:
    key = await make_key("acme")
    await remember(client, key, "a", "I like tea.", "  user-42 ")
    stored = await (await client.get("/v4/conversations/a", headers=auth(key))).json()
    assert stored["containerTags"] == ["user-42"]


async def test_chat_with_container_tag_cites_only_that_users_memories(
    client: Client, make_key: MakeKey
) -> None:
    key = await make_key("acme")
    await remember(client, key, "a", "My locker code is 1234.", "user-42")
    await remember(client, key, "b", "My locker code is 9876.", "user-7")
    body = {
        "messages": [{"role": "user", "content": "What is my locker code?"}],
        "containerTag": "user-42",
    }
    response = await client.post("/api/chat", json=body, headers=auth(key))
    assert response.status == 200, await response.text()
    wire = (await response.read()).decode()
    (annotations,) = [json.loads(line[2:]) for line in wire.splitlines() if line[:2] == "8:"]
    assert len(annotations) == 1
    assert "1234" in annotations[0]["content"]
    assert "9876" not in wire


@pytest.mark.parametrize(("path", "payload"), ROUTES, ids=[r[0] for r in ROUTES])
async def test_both_spellings_are_400_naming_both(
    client: Client, make_key: MakeKey, path: str, payload: dict[str, Any]
) -> None:
    key = await make_key("acme")
    body = payload | {"containerTag": "a", "containerTags": ["b"]}
    response = await client.post(path, json=body, headers=auth(key))
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "Invalid request"
    assert {d["path"] for d in answer["details"]} == {"containerTag", "containerTags"}
    assert all("not both" in d["message"] for d in answer["details"])


@pytest.mark.parametrize(("path", "payload"), ROUTES, ids=[r[0] for r in ROUTES])
@pytest.mark.parametrize("bad", [None, "", "   ", 42, ["a"], "x" * 256])
async def test_a_bad_container_tag_is_400_naming_it(
    client: Client, make_key: MakeKey, path: str, payload: dict[str, Any], bad: Any
) -> None:
    key = await make_key("acme")
    response = await client.post(path, json=payload | {"containerTag": bad}, headers=auth(key))
    assert response.status == 400
    assert [d["path"] for d in (await response.json())["details"]] == ["containerTag"]


@pytest.mark.parametrize(("path", "payload"), ROUTES, ids=[r[0] for r in ROUTES])
async def test_a_tag_outside_the_key_is_403_as_for_container_tags(
    client: Client, make_key: MakeKey, path: str, payload: dict[str, Any]
) -> None:
    limited = await make_key("acme", tags=("user-42",))
    one = await client.post(path, json=payload | {"containerTag": "user-7"}, headers=auth(limited))
    many = await client.post(
        path, json=payload | {"containerTags": ["user-7"]}, headers=auth(limited)
    )
    assert (one.status, many.status) == (403, 403)
    assert await one.json() == await many.json()
    allowed = await client.post(
        path, json=payload | {"containerTag": "user-42"}, headers=auth(limited)
    )
    await allowed.read()
    assert allowed.status == 200
