"""DELETE forgets: messages, memories and vectors are gone from every read path."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]
TEXT = "My grandmother's secret lasagne recipe uses nutmeg in the bechamel."


async def test_forget_removes_everything(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    body = {
        "conversationId": "recipe",
        "messages": [
            {"role": "user", "content": TEXT},
            {"role": "assistant", "content": "Nutmeg in bechamel is a classic touch."},
        ],
    }
    assert (await client.post("/v4/conversations", json=body, headers=auth(key))).status == 200
    before = await client.post("/v4/search", json={"q": TEXT}, headers=auth(key))
    assert (await before.json())["results"][0]["conversationId"] == "recipe"

    deleted = await client.delete("/v4/conversations/recipe", headers=auth(key))
    assert deleted.status == 200
    assert await deleted.json() == {
        "deleted": True,
        "conversationId": "recipe",
        "memoriesRemoved": 2,
    }

    for query in (TEXT, "nutmeg bechamel", "lasagne"):
        after = await client.post("/v4/search", json={"q": query}, headers=auth(key))
        assert (await after.json())["results"] == [], query
    assert (await client.get("/v4/conversations/recipe", headers=auth(key))).status == 404
    assert (await client.delete("/v4/conversations/recipe", headers=auth(key))).status == 404


async def test_forget_survives_a_restart(client: Client, make_key: MakeKey, settings: Any) -> None:
    from memoryd import bootstrap

    key = await make_key()
    body = {"conversationId": "gone", "messages": [{"role": "user", "content": TEXT}]}
    await client.post("/v4/conversations", json=body, headers=auth(key))
    await client.delete("/v4/conversations/gone", headers=auth(key))
    await client.close()
    # A new app on the same data dir rebuilds its index from SQLite.
    from aiohttp.test_utils import TestClient as Fresh
    from aiohttp.test_utils import TestServer

    async with Fresh(TestServer(await bootstrap.create_app(settings))) as again:
        after = await again.post("/v4/search", json={"q": TEXT}, headers=auth(key))
        assert (await after.json())["results"] == []
