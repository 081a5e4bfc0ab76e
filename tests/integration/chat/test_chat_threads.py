"""Threads over HTTP: made without threadId, continued with only the newest message, kept apart."""

from __future__ import annotations

from typing import Any

from tests.helpers import MakeKey, auth
from tests.integration.chat.chat_helpers import Client, answer_text, ask, remember, sse_chunks


async def thread(client: Client, key: str, thread_id: str) -> Any:
    response = await client.get(f"/api/chat/{thread_id}", headers=auth(key))
    assert response.status == 200
    return await response.json()


async def test_a_chat_without_thread_id_makes_one_and_saves_the_exchange(
    client: Client, key: str
) -> None:
    await remember(client, key, "trip", "We are going to Lisbon in May")
    response, body = await ask(client, key, "Where are we going in May?")
    thread_id = response.headers["Supermemory-Thread-Uuid"]
    # The whole stream has been read: the exchange is saved.
    saved = await thread(client, key, thread_id)
    assert saved["id"] == thread_id
    assert saved["title"] == "Where are we going in May?"
    assert [(m["role"], m["content"]) for m in saved["messages"]] == [
        ("user", "Where are we going in May?"),
        ("assistant", answer_text(body)),
    ]
    [cited] = saved["messages"][1]["annotations"]
    assert cited["title"] == "trip"
    assert cited["content"] == "[2 March 2024] Alice: We are going to Lisbon in May"
    assert set(cited) == {
        "similarity",
        "id",
        "content",
        "type",
        "url",
        "title",
        "description",
        "ogImage",
        "createdAt",
        "updatedAt",
    }
    assert saved["messages"][0]["annotations"] == []
    assert saved["createdAt"].endswith("Z")


async def test_a_thread_continues_with_only_the_newest_message(client: Client, key: str) -> None:
    await remember(client, key, "trip", "We are going to Lisbon in May")
    await remember(client, key, "pets", "My dog Rex loves the beach")
    first, _ = await ask(client, key, "Where are we going in May?")
    thread_id = first.headers["Supermemory-Thread-Uuid"]
    second, body = await ask(
        client, key, "What does my dog Rex love?", thread_id=thread_id, sse=True
    )
    assert second.headers["Supermemory-Thread-Uuid"] == thread_id
    assert sse_chunks(body)[0]["messageMetadata"] == {"threadId": thread_id}
    saved = await thread(client, key, thread_id)
    assert [m["content"] for m in saved["messages"] if m["role"] == "user"] == [
        "Where are we going in May?",
        "What does my dog Rex love?",
    ]
    assert len(saved["messages"]) == 4
    assert saved["messages"][3]["annotations"][0]["title"] == "pets"
    # A client that sends the whole conversation again adds only its new message.
    whole = [{"role": m["role"], "content": m["content"]} for m in saved["messages"]] + [
        {"role": "user", "content": "Thanks!"}
    ]
    await ask(client, key, body={"messages": whole, "threadId": thread_id})
    saved = await thread(client, key, thread_id)
    assert len(saved["messages"]) == 6
    assert saved["messages"][4]["content"] == "Thanks!"


async def test_another_tenants_thread_is_404(client: Client, key: str, make_key: MakeKey) -> None:
    response, _ = await ask(client, key, "Hello there")
    thread_id = response.headers["Supermemory-Thread-Uuid"]
    other = await make_key("globex")
    found, _ = await ask(client, other, "Hello", thread_id=thread_id)
    assert found.status == 404
    assert (await client.get(f"/api/chat/{thread_id}", headers=auth(other))).status == 404
    assert (await client.delete(f"/api/chat/{thread_id}", headers=auth(other))).status == 404
    listed = await (await client.get("/api/threads", headers=auth(other))).json()
    assert listed["threads"] == []
    assert len((await thread(client, key, thread_id))["messages"]) == 2  # untouched


async def test_threads_are_listed_newest_first_and_deleted(client: Client, key: str) -> None:
    ids = []
    for text in ["first chat", "second chat", "third chat"]:
        response, _ = await ask(client, key, text)
        ids.append(response.headers["Supermemory-Thread-Uuid"])
    listed = await (await client.get("/api/threads", headers=auth(key))).json()
    assert [t["id"] for t in listed["threads"]] == ids[::-1]
    assert [t["title"] for t in listed["threads"]] == ["third chat", "second chat", "first chat"]
    assert "messages" not in listed["threads"][0]
    page = await (await client.get("/api/threads?limit=1&offset=1", headers=auth(key))).json()
    assert [t["id"] for t in page["threads"]] == [ids[1]]
    assert (page["limit"], page["offset"]) == (1, 1)
    bad = await client.get("/api/threads?limit=0", headers=auth(key))
    assert bad.status == 400
    assert (await bad.json())["details"][0]["path"] == "limit"

    deleted = await client.delete(f"/api/chat/{ids[0]}", headers=auth(key))
    assert await deleted.json() == {"deleted": True, "threadId": ids[0]}
    assert (await client.get(f"/api/chat/{ids[0]}", headers=auth(key))).status == 404
    assert (await client.delete(f"/api/chat/{ids[0]}", headers=auth(key))).status == 404


async def test_a_tag_limited_key_sees_only_its_own_scopes_threads(
    client: Client, key: str, make_key: MakeKey
) -> None:
    alice = await make_key("acme", tags=("alice",))
    bob = await make_key("acme", tags=("bob",))
    await remember(client, key, "a", "Alice is going to Lisbon", containerTags=["alice"])
    await remember(client, key, "b", "Bob is going to Lisbon", containerTags=["bob"])
    hers, body = await ask(client, alice, "Who is going to Lisbon?")
    assert "Alice is going" in answer_text(body)
    assert "Bob" not in answer_text(body)  # search stays within the key's tags
    thread_id = hers.headers["Supermemory-Thread-Uuid"]
    assert (await client.get(f"/api/chat/{thread_id}", headers=auth(bob))).status == 404
    assert (await client.get(f"/api/chat/{thread_id}", headers=auth(key))).status == 200
    denied, _ = await ask(
        client,
        alice,
        "Hi",
        body={"messages": [{"role": "user", "content": "Hi"}], "containerTags": ["bob"]},
    )
    assert denied.status == 403


async def test_a_thread_keeps_the_scope_it_was_started_in(
    client: Client, key: str, make_key: MakeKey
) -> None:
    alice = await make_key("acme", tags=("alice",))
    await remember(client, key, "a", "Alice is going to Lisbon", containerTags=["alice"])
    await remember(client, key, "b", "Bob is going to Lisbon", containerTags=["bob"])
    await remember(client, key, "n", "Nobody is going to Lisbon")
    hers, _ = await ask(client, alice, "Who is going to Lisbon?")
    thread_id = hers.headers["Supermemory-Thread-Uuid"]
    # The full key continues Alice's thread: it searches only within the thread's tags.
    continued, body = await ask(client, key, "Who is going to Lisbon?", thread_id=thread_id)
    assert continued.status == 200
    assert "Alice is going" in answer_text(body)
    assert "Bob" not in body.decode()
    assert "Nobody" not in body.decode()
    saved = await thread(client, alice, thread_id)
    assert "Bob" not in str(saved)
    assert "Nobody" not in str(saved)
    # Tags outside the thread's are a 400 that names the field.
    outside, _ = await ask(
        client,
        key,
        body={
            "messages": [{"role": "user", "content": "Who?"}],
            "threadId": thread_id,
            "containerTags": ["bob"],
        },
    )
    assert outside.status == 400
    assert (await outside.json())["details"][0]["path"] == "containerTags"
    # A new thread keeps the request's tags as its scope: Alice may read it.
    mine, _ = await ask(
        client,
        key,
        body={"messages": [{"role": "user", "content": "Who?"}], "containerTags": ["alice"]},
    )
    scoped = mine.headers["Supermemory-Thread-Uuid"]
    assert (await thread(client, alice, scoped))["id"] == scoped
