"""Token quotas: counted with tiktoken; a refused write (402) stores nothing."""

from __future__ import annotations

from typing import Any

import tiktoken
from aiohttp.test_utils import TestClient

from memoryd import bootstrap
from memoryd.settings import Settings
from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]


def conv(cid: str, text: str) -> dict[str, Any]:
    return {"conversationId": cid, "messages": [{"role": "user", "content": text}]}


async def test_quota(client: Client, make_key: MakeKey, settings: Settings) -> None:
    enc = tiktoken.get_encoding("cl100k_base")
    first, second, third = "hello world", "hello world " * 3, "fine"
    cost = [len(enc.encode(t)) for t in (first, second, third)]
    quota = cost[0] + cost[2] + 1  # room for the first and third, not the second
    key = await make_key(quota=quota)

    assert (
        await client.post("/v4/conversations", json=conv("a", first), headers=auth(key))
    ).status == 200

    refused = await client.post("/v4/conversations", json=conv("b", second), headers=auth(key))
    assert refused.status == 402
    answer = await refused.json()
    assert answer["details"] == {
        "quotaTokens": quota,
        "usedTokens": cost[0],
        "requestTokens": cost[1],
    }
    assert (await client.get("/v4/conversations/b", headers=auth(key))).status == 404
    search = await client.post("/v4/search", json={"q": second}, headers=auth(key))
    assert {r["conversationId"] for r in (await search.json())["results"]} == {"a"}

    assert (
        await client.post("/v4/conversations", json=conv("c", third), headers=auth(key))
    ).status == 200
    async with bootstrap.key_store(settings) as keys:
        (record,) = await keys.list_keys()
    assert record.used_tokens == cost[0] + cost[2]


async def test_unchanged_rewrite_costs_nothing(
    client: Client, make_key: MakeKey, settings: Settings
) -> None:
    key = await make_key(quota=1000)
    for _ in range(3):
        assert (
            await client.post("/v4/conversations", json=conv("a", "hello world"), headers=auth(key))
        ).status == 200
    async with bootstrap.key_store(settings) as keys:
        (record,) = await keys.list_keys()
    assert record.used_tokens == 2
