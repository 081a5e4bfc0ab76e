"""Tenants and tag-limited keys, over HTTP, on every route."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]
SECRET = "The vault code is 4-8-15-16-23-42."


def conv(cid: str, text: str, tags: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"conversationId": cid, "messages": [{"role": "user", "content": text}]}
    if tags is not None:
        body["containerTags"] = tags
    return body


async def test_other_tenant_cannot_read_search_get_or_delete(
    client: Client, make_key: MakeKey
) -> None:
    a = await make_key("tenant-a")
    b = await make_key("tenant-b")
    assert (
        await client.post("/v4/conversations", json=conv("vault", SECRET), headers=auth(a))
    ).status == 200

    search = await client.post("/v4/search", json={"q": SECRET}, headers=auth(b))
    assert search.status == 200
    assert (await search.json())["results"] == []

    # Another tenant's conversation looks exactly like one that does not exist.
    got = await client.get("/v4/conversations/vault", headers=auth(b))
    missing = await client.get("/v4/conversations/never-existed", headers=auth(b))
    assert (got.status, missing.status) == (404, 404)
    assert await got.json() == {
        "error": "Conversation not found",
        "details": {"conversationId": "vault"},
    }
    assert (await missing.json())["error"] == "Conversation not found"

    deleted = await client.delete("/v4/conversations/vault", headers=auth(b))
    assert deleted.status == 404

    # B writing the same conversation id makes B's own conversation; A's is untouched.
    assert (
        await client.post("/v4/conversations", json=conv("vault", "mine"), headers=auth(b))
    ).status == 200
    mine = await (await client.get("/v4/conversations/vault", headers=auth(b))).json()
    assert [m["content"] for m in mine["messages"]] == ["mine"]
    theirs = await (await client.get("/v4/conversations/vault", headers=auth(a))).json()
    assert [m["content"] for m in theirs["messages"]] == [SECRET]
    found = await client.post("/v4/search", json={"q": SECRET}, headers=auth(a))
    assert [r["conversationId"] for r in (await found.json())["results"]][:1] == ["vault"]


async def test_tag_limited_key_sees_and_writes_only_its_tags(
    client: Client, make_key: MakeKey
) -> None:
    admin = await make_key("acme")
    work = await make_key("acme", tags=("work",))
    assert (
        await client.post(
            "/v4/conversations",
            json=conv("w", "Quarterly roadmap review", ["work"]),
            headers=auth(admin),
        )
    ).status == 200
    assert (
        await client.post(
            "/v4/conversations",
            json=conv("p", "Quarterly dentist visit", ["personal"]),
            headers=auth(admin),
        )
    ).status == 200

    found = await client.post("/v4/search", json={"q": "quarterly"}, headers=auth(work))
    assert {r["conversationId"] for r in (await found.json())["results"]} == {"w"}

    named = await client.post(
        "/v4/search", json={"q": "quarterly", "containerTags": ["personal"]}, headers=auth(work)
    )
    assert named.status == 403
    assert (await named.json())["details"]["containerTags"] == ["personal"]

    # Ids are namespaced by the key's scope: a key limited to tags addresses by id only
    # the conversations it (or a key of the same tags) wrote, whatever their tags.
    assert (await client.get("/v4/conversations/p", headers=auth(work))).status == 404
    assert (await client.get("/v4/conversations/w", headers=auth(work))).status == 404
    assert (await client.delete("/v4/conversations/p", headers=auth(work))).status == 404

    refused = await client.post(
        "/v4/conversations", json=conv("x", "hi", ["personal"]), headers=auth(work)
    )
    assert refused.status == 403
    assert (await client.get("/v4/conversations/x", headers=auth(admin))).status == 404

    # Writing an id that exists in another scope makes the key's own conversation, as
    # writing an id that exists nowhere does: the admin's is untouched.
    overwrite = await client.post(
        "/v4/conversations", json=conv("p", "hijack", ["work"]), headers=auth(work)
    )
    fresh = await client.post(
        "/v4/conversations", json=conv("never-used", "hijack", ["work"]), headers=auth(work)
    )
    assert (overwrite.status, fresh.status) == (200, 200)
    written, unknown = await overwrite.json(), await fresh.json()
    assert {**written, "id": "", "conversationId": ""} == {
        **unknown,
        "id": "",
        "conversationId": "",
    }
    assert written["action"] == "created"
    kept = await (await client.get("/v4/conversations/p", headers=auth(admin))).json()
    assert [m["content"] for m in kept["messages"]] == ["Quarterly dentist visit"]
    assert kept["containerTags"] == ["personal"]
    own = await (await client.get("/v4/conversations/p", headers=auth(work))).json()
    assert [m["content"] for m in own["messages"]] == ["hijack"]
    # The admin's memories kept their tags: the work key still cannot find them.
    found = await client.post("/v4/search", json={"q": "dentist visit"}, headers=auth(work))
    assert "dentist" not in await found.text()
    assert (await client.delete("/v4/conversations/p", headers=auth(work))).status == 200
    kept = await (await client.get("/v4/conversations/p", headers=auth(admin))).json()
    assert [m["content"] for m in kept["messages"]] == ["Quarterly dentist visit"]

    untagged = await client.post(
        "/v4/conversations", json=conv("n", "note to self"), headers=auth(work)
    )
    assert untagged.status == 200
    note = await (await client.get("/v4/conversations/n", headers=auth(work))).json()
    assert note["containerTags"] == ["work"]


async def test_every_route_but_the_public_ones_needs_a_key(client: Client) -> None:
    for method, path in [
        ("POST", "/v4/conversations"),
        ("GET", "/v4/conversations/x"),
        ("DELETE", "/v4/conversations/x"),
        ("POST", "/v4/search"),
    ]:
        for headers in ({}, auth("md_not-a-key"), {"Authorization": "Basic abc"}):
            response = await client.request(method, path, json={}, headers=headers)
            assert response.status == 401, (method, path, headers)
            assert await response.json() == {"error": "Unauthorized"}
    for path in ("/health", "/ready", "/openapi.json"):
        assert (await client.get(path)).status == 200, path


async def test_revoked_key_stops_working(client: Client, make_key: MakeKey, settings: Any) -> None:
    from memoryd import bootstrap

    key = await make_key()
    assert (await client.post("/v4/search", json={"q": "x"}, headers=auth(key))).status == 200
    async with bootstrap.key_store(settings) as keys:
        (made,) = list(await keys.list_keys())
        assert await keys.revoke_key(made.id)
    assert (await client.post("/v4/search", json={"q": "x"}, headers=auth(key))).status == 401
