"""DELETE forgets: messages, memories and vectors are gone from every read path."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from memoryd.adapters.http._keys import SERVICES
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


async def test_forget_removes_the_cited_text_from_threads_and_every_table(
    app: web.Application, client: Client, make_key: MakeKey, settings: Any
) -> None:
    key = await make_key()
    body = {
        "conversationId": "recipe",
        "messages": [{"role": "user", "content": TEXT}],
        "metadata": {"title": "Nonna's lasagne", "url": "https://example.org/lasagne"},
    }
    assert (await client.post("/v4/conversations", json=body, headers=auth(key))).status == 200
    question = {"messages": [{"role": "user", "content": "What goes in the bechamel?"}]}
    asked = await client.post("/api/chat", json=question, headers=auth(key))
    answer = await asked.read()
    assert b"nutmeg" in answer
    thread_id = asked.headers["Supermemory-Thread-Uuid"]
    before = await (await client.get(f"/api/chat/{thread_id}", headers=auth(key))).json()
    (cited,) = before["messages"][1]["annotations"]
    assert "nutmeg" in cited["content"]
    assert "forgotten" not in cited
    cache = app[SERVICES].search.cache
    await client.post("/api/chat", json=question, headers=auth(key))
    hits = cache.hits

    assert (await client.delete("/v4/conversations/recipe", headers=auth(key))).status == 200

    after = await (await client.get(f"/api/chat/{thread_id}", headers=auth(key))).json()
    (gone,) = after["messages"][1]["annotations"]
    assert gone == {
        **cited,
        "content": "",
        "title": "",
        "description": "",
        "url": "",
        "ogImage": "",
        "forgotten": True,
    }
    # The answer the model wrote is left as it was (it may quote the memory).
    assert after["messages"][1]["content"] == before["messages"][1]["content"]
    # The cached search is not served again: the same question finds nothing now.
    again = await client.post("/api/chat", json=question, headers=auth(key))
    assert b"nutmeg" not in await again.read()
    assert cache.hits == hits

    # Every table the text was in: messages, memories (the store's and the index's, with
    # their vectors), keyword rows,
    # and the annotations stored in threads.
    database = sqlite3.connect(next(settings.data_dir.glob("*.sqlite3")))
    try:
        for sql in (
            "SELECT count(*) FROM conversations",
            "SELECT count(*) FROM messages",
            "SELECT count(*) FROM memories",
            "SELECT count(*) FROM index_memories",
            "SELECT count(*) FROM index_fts WHERE index_fts MATCH 'nutmeg OR bechamel'",
            "SELECT count(*) FROM thread_messages WHERE annotations LIKE '%nutmeg%'",
            "SELECT count(*) FROM thread_citations",
        ):
            assert database.execute(sql).fetchone() == (0,), sql
    finally:
        database.close()


async def test_a_full_keys_delete_forgets_the_id_in_every_scope(
    client: Client, make_key: MakeKey
) -> None:
    admin = await make_key()
    work = await make_key(tags=("work",))
    home = await make_key(tags=("home",))
    for who, text in ((work, "work nutmeg"), (home, "home nutmeg"), (admin, "admin nutmeg")):
        body = {"conversationId": "same", "messages": [{"role": "user", "content": text}]}
        assert (await client.post("/v4/conversations", json=body, headers=auth(who))).status == 200
    # A key limited to tags forgets its own; the admin then forgets all that are left.
    first = await client.delete("/v4/conversations/same", headers=auth(work))
    assert (await first.json())["memoriesRemoved"] == 1
    got = await (await client.get("/v4/conversations/same", headers=auth(admin))).json()
    assert [m["content"] for m in got["messages"]] == ["admin nutmeg"]
    everything = await client.delete("/v4/conversations/same", headers=auth(admin))
    assert (await everything.json())["memoriesRemoved"] == 2
    for who in (admin, work, home):
        assert (await client.get("/v4/conversations/same", headers=auth(who))).status == 404
        found = await client.post("/v4/search", json={"q": "nutmeg"}, headers=auth(who))
        assert (await found.json())["results"] == []
