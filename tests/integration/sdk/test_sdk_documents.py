"""/v3/documents and /v3/search driven by the official Python SDK (supermemory, pinned in tox.ini).

A real app on 127.0.0.1 with the real SQLite store and embedding model; the SDK
is used exactly as an app uses it (``client.add``, ``client.documents.*``,
``client.search.documents`` / ``execute``), after changing only the base URL.
"""

from __future__ import annotations

from typing import Any

import pytest
import supermemory
from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey, auth
from tests.integration.sdk.conftest import MakeSdk

Client = TestClient[Any, Any]


@pytest.fixture
async def sdk(make_sdk: MakeSdk, make_key: MakeKey) -> supermemory.AsyncSupermemory:
    return make_sdk(await make_key("acme"))


async def test_add_then_search_finds_it_and_ids_round_trip(
    sdk: supermemory.AsyncSupermemory,
) -> None:
    added = await sdk.add(
        content="Our cat Miso loves sleeping on the warm radiator in winter.",
        container_tag="user_1",
        metadata={"kind": "note"},
    )
    assert added.status == "done"
    other = await sdk.documents.add(content="The quarterly budget meeting moved to Thursday.")

    found = await sdk.search.documents(q="where does the cat sleep?", container_tag="user_1")
    assert [r.document_id for r in found.results] == [added.id]
    [hit] = found.results
    assert hit.chunks
    assert hit.chunks[0].is_relevant
    assert "radiator" in hit.chunks[0].content
    assert hit.metadata == {"kind": "note"}
    assert found.total == 1

    same = await sdk.search.execute(q="where does the cat sleep?", limit=1)
    assert [r.document_id for r in same.results] == [added.id]

    doc = await sdk.documents.get(added.id)
    assert doc.id == added.id
    assert doc.custom_id is None
    assert doc.status == "done"
    assert doc.type == "text"
    assert doc.content == "Our cat Miso loves sleeping on the warm radiator in winter."
    assert doc.container_tags == ["user_1"]
    assert doc.memories
    assert "radiator" in doc.memories[0].memory
    assert (await sdk.documents.get(other.id)).container_tags == []


async def test_custom_id_upserts_and_addresses_the_document(
    sdk: supermemory.AsyncSupermemory,
) -> None:
    first = await sdk.documents.add(content="Alice prefers tea.", custom_id="pref-1")
    again = await sdk.documents.add(content="Alice prefers tea.", custom_id="pref-1")
    assert again.id == first.id  # the same content: nothing changes
    changed = await sdk.documents.add(content="Alice prefers coffee now.", custom_id="pref-1")
    assert changed.id == first.id  # replaced in place

    by_custom = await sdk.documents.get("pref-1")
    assert by_custom.id == first.id
    assert by_custom.custom_id == "pref-1"
    assert by_custom.content == "Alice prefers coffee now."
    found = await sdk.search.documents(q="what does Alice drink?", only_matching_chunks=True)
    texts = [c.content for r in found.results for c in r.chunks]
    assert any("coffee" in t for t in texts)
    assert not any("tea" in t for t in texts)

    listed = await sdk.documents.list()
    assert [m.id for m in listed.memories] == [first.id]


async def test_a_conversation_is_a_document_and_the_other_way_round(
    client: Client, sdk: supermemory.AsyncSupermemory, make_key: MakeKey
) -> None:
    key = sdk.api_key
    body = {
        "conversationId": "chat-7",
        "messages": [
            {"role": "user", "content": "I am moving to Lisbon in May."},
            {"role": "assistant", "content": "Exciting! Lisbon is lovely in spring."},
        ],
        "containerTags": ["user_1"],
    }
    response = await client.post("/v4/conversations", json=body, headers=auth(key))
    assert response.status == 200
    ingested = await response.json()

    by_id = await sdk.documents.get(ingested["id"])
    assert by_id.custom_id == "chat-7"
    assert "Lisbon" in (by_id.content or "")
    assert (await sdk.documents.get("chat-7")).id == ingested["id"]

    added = await sdk.documents.add(content="Bob's birthday is on 3 June.", custom_id="bday")
    response = await client.get("/v4/conversations/bday", headers=auth(key))
    assert response.status == 200
    conversation = await response.json()
    assert conversation["id"] == added.id
    assert conversation["messages"][0]["content"] == "Bob's birthday is on 3 June."

    await sdk.documents.delete(ingested["id"])
    response = await client.get("/v4/conversations/chat-7", headers=auth(key))
    assert response.status == 404


async def test_list_pages_sorts_and_filters(sdk: supermemory.AsyncSupermemory) -> None:
    ids = []
    for i in range(5):
        added = await sdk.documents.add(
            content=f"Note number {i} about gardening.",
            container_tag="garden" if i % 2 == 0 else "kitchen",
            metadata={"n": i, "kind": "even" if i % 2 == 0 else "odd"},
        )
        ids.append(added.id)

    first = await sdk.documents.list(limit=2, page=1, sort="createdAt", order="asc")
    second = await sdk.documents.list(limit=2, page="2", sort="createdAt", order="asc")
    last = await sdk.documents.list(limit="2", page=3, sort="createdAt", order="asc")
    assert [m.id for m in first.memories + second.memories + last.memories] == ids
    assert first.pagination.total_items == 5
    assert first.pagination.total_pages == 3
    assert first.pagination.current_page == 1
    newest = await sdk.documents.list(limit=1)  # default: createdAt, desc
    assert [m.id for m in newest.memories] == [ids[-1]]
    assert newest.memories[0].content is None
    with_content = await sdk.documents.list(limit=1, include_content=True)
    assert with_content.memories[0].content == "Note number 4 about gardening."

    garden = await sdk.documents.list(container_tags=["garden"])
    assert {m.id for m in garden.memories} == {ids[0], ids[2], ids[4]}
    filtered = await sdk.documents.list(
        filters={"AND": [{"key": "kind", "value": "odd"}, {"key": "n", "value": "3"}]}
    )
    assert [m.id for m in filtered.memories] == [ids[3]]
    numeric = await sdk.documents.list(
        filters={
            "OR": [{"key": "n", "value": "3", "filterType": "numeric", "numericOperator": ">"}]
        }
    )
    assert [m.id for m in numeric.memories] == [ids[4]]

    found = await sdk.search.documents(
        q="gardening note", filters={"AND": [{"key": "kind", "value": "even"}]}, limit=10
    )
    assert {r.document_id for r in found.results} == {ids[0], ids[2], ids[4]}


async def test_delete_and_bulk_delete_remove_documents(sdk: supermemory.AsyncSupermemory) -> None:
    a = await sdk.documents.add(content="The spare key is under the blue flowerpot.")
    b = await sdk.documents.add(content="Wifi password hint: the dog's name.", container_tag="t")
    c = await sdk.documents.add(content="Dentist appointment on Friday.", container_tag="t")
    d = await sdk.documents.add(content="Buy oat milk and bread.")

    await sdk.documents.delete(a.id)
    with pytest.raises(supermemory.NotFoundError):
        await sdk.documents.get(a.id)
    found = await sdk.search.documents(q="where is the spare key?")
    assert a.id not in {r.document_id for r in found.results}
    with pytest.raises(supermemory.NotFoundError):
        await sdk.documents.delete(a.id)

    by_tag = await sdk.documents.delete_bulk(container_tags=["t"])
    assert by_tag.success
    assert by_tag.deleted_count == 2
    assert by_tag.container_tags == ["t"]
    by_ids = await sdk.documents.delete_bulk(ids=[d.id, "no-such-document"])
    assert by_ids.deleted_count == 1
    assert not by_ids.success
    assert by_ids.errors is not None
    assert [e.id for e in by_ids.errors] == ["no-such-document"]
    assert (await sdk.documents.list()).memories == []
    for gone in (b, c, d):
        with pytest.raises(supermemory.NotFoundError):
            await sdk.documents.get(gone.id)


async def test_update_changes_content_tags_and_metadata(sdk: supermemory.AsyncSupermemory) -> None:
    added = await sdk.documents.add(content="The office is on the third floor.", custom_id="office")
    updated = await sdk.documents.update(
        added.id, content="The office moved to the fifth floor.", metadata={"v": 2}
    )
    assert updated.id == added.id
    doc = await sdk.documents.get("office")
    assert doc.content == "The office moved to the fifth floor."
    assert doc.metadata == {"v": 2}
    found = await sdk.search.documents(q="which floor is the office?", only_matching_chunks=True)
    assert [c.content for r in found.results for c in r.chunks] == [
        "The office moved to the fifth floor."
    ]
    await sdk.documents.update("office", container_tag="work")
    doc = await sdk.documents.get(added.id)
    assert doc.container_tags == ["work"]
    assert doc.content == "The office moved to the fifth floor."
    with pytest.raises(supermemory.BadRequestError) as raised:
        await sdk.documents.update("office", custom_id="another")
    assert raised.value.body["details"][0]["path"] == "customId"  # type: ignore[index]
    with pytest.raises(supermemory.NotFoundError):
        await sdk.documents.update("nope", content="x")


async def test_batch_add_reports_each_document(sdk: supermemory.AsyncSupermemory) -> None:
    answer = await sdk.documents.batch_add(
        documents=[
            {"content": "Paris is the capital of France.", "custom_id": "geo-1"},
            "Rome is the capital of Italy.",
            {"content": "https://example.com/page"},  # fetching is off: this one fails
        ],
        container_tag="geo",
    )
    assert answer.success == 2
    assert answer.failed == 1
    ok1, ok2, failed = answer.results
    assert ok1.status == ok2.status == "done"
    assert failed.status == "error"
    assert failed.error is not None
    assert "fetch_urls" in failed.error
    assert failed.url == "https://example.com/page"
    assert (await sdk.documents.get("geo-1")).id == ok1.id
    assert (await sdk.documents.get(ok2.id)).container_tags == ["geo"]


async def test_a_url_is_refused_while_fetching_is_off(sdk: supermemory.AsyncSupermemory) -> None:
    with pytest.raises(supermemory.UnprocessableEntityError) as raised:
        await sdk.add(content="https://example.com/article")
    body = raised.value.body
    assert isinstance(body, dict)
    assert "fetch_urls" in body["error"]
    assert body["details"] == {"field": "content", "setting": "fetch_urls"}
    assert (await sdk.documents.list()).memories == []


async def test_upload_file_goes_through_a_part_handler(sdk: supermemory.AsyncSupermemory) -> None:
    data = b"Meeting notes\nThe launch date is the twelfth of October.\n"
    uploaded = await sdk.documents.upload_file(
        file=("notes.txt", data, "text/plain"),
        container_tags='["team"]',
        metadata='{"source": "upload"}',
        custom_id="notes-1",
    )
    assert uploaded.status == "done"
    doc = await sdk.documents.get("notes-1")
    assert doc.id == uploaded.id
    assert doc.title == "notes.txt"
    assert doc.container_tags == ["team"]
    assert doc.metadata == {"source": "upload"}
    # The text handler read the file: its words are the document's memories.
    assert doc.memories
    assert any("twelfth of October" in m.memory for m in doc.memories)
    found = await sdk.search.documents(q="when is the launch?", container_tags=["team"])
    assert [r.document_id for r in found.results] == [uploaded.id]
    with pytest.raises(supermemory.BadRequestError) as raised:
        await sdk.documents.upload_file(file=("x.txt", b"x"), metadata="not json")
    assert raised.value.body["details"][0]["path"] == "metadata"  # type: ignore[index]


async def test_tags_isolate_documents_between_keys(make_sdk: MakeSdk, make_key: MakeKey) -> None:
    alice = make_sdk(await make_key("acme", tags=("alice",)))
    bob = make_sdk(await make_key("acme", tags=("bob",)))
    other_tenant = make_sdk(await make_key("globex"))
    mine = await alice.documents.add(content="Alice's locker code is 4512.")
    assert (await alice.documents.get(mine.id)).container_tags == ["alice"]
    for stranger in (bob, other_tenant):
        with pytest.raises(supermemory.NotFoundError):
            await stranger.documents.get(mine.id)
        with pytest.raises(supermemory.NotFoundError):
            await stranger.documents.delete(mine.id)
        assert (await stranger.documents.list()).memories == []
        found = await stranger.search.documents(q="locker code")
        assert found.results == []
    with pytest.raises(supermemory.PermissionDeniedError):
        await bob.search.documents(q="locker code", container_tag="alice")
    with pytest.raises(supermemory.PermissionDeniedError):
        await bob.documents.add(content="sneaky", container_tag="alice")
    with pytest.raises(supermemory.PermissionDeniedError):
        await bob.documents.list(container_tags=["alice"])
    assert [m.id for m in (await alice.documents.list()).memories] == [mine.id]


async def test_search_options(sdk: supermemory.AsyncSupermemory) -> None:
    long_text = " ".join(
        f"Paragraph {i}: " + ("the weather was mild and nothing happened. " * 30) for i in range(6)
    )
    long_text += " Finally, the treasure is buried beneath the old oak tree."
    added = await sdk.documents.add(content=long_text, metadata={"title": "Diary"})
    await sdk.documents.add(content="Unrelated: the train leaves at nine.")

    plain = await sdk.search.documents(q="where is the treasure buried?", limit=1)
    [hit] = plain.results
    assert hit.document_id == added.id
    assert hit.title == "Diary"
    assert hit.content is None
    assert hit.summary is None
    relevant = [c for c in hit.chunks if c.is_relevant]
    context = [c for c in hit.chunks if not c.is_relevant]
    assert relevant
    assert context
    assert [c.position for c in hit.chunks] == sorted(c.position for c in hit.chunks)

    only = await sdk.search.documents(
        q="where is the treasure buried?", limit=1, only_matching_chunks=True
    )
    assert all(c.is_relevant for c in only.results[0].chunks)

    full = await sdk.search.documents(
        q="where is the treasure buried?",
        limit=1,
        include_full_docs=True,
        include_summary=True,
        rerank=True,
        rewrite_query=True,
    )
    assert full.results[0].content == long_text
    assert full.results[0].summary
    assert full.results[0].summary.startswith("Paragraph 0")

    strict = await sdk.search.documents(q="where is the treasure buried?", document_threshold=0.99)
    assert strict.results == []
    chunky = await sdk.search.documents(q="where is the treasure buried?", chunk_threshold=0.99)
    assert chunky.results == []
    within = await sdk.search.documents(q="when does the train leave?", doc_id=added.id)
    assert {r.document_id for r in within.results} <= {added.id}


async def test_processing_lists_none_and_bad_requests_name_their_field(
    sdk: supermemory.AsyncSupermemory,
) -> None:
    await sdk.documents.add(content="Something to process.")
    processing = await sdk.documents.list_processing()
    assert processing.documents == []
    assert processing.total_count == 0
    everything = await sdk.documents.list_processing(view="all")
    assert everything.pagination is not None

    cases: list[tuple[Any, str]] = [
        (sdk.documents.add(content="   "), "content"),
        (sdk.documents.add(content="x", filepath="/a/b.txt"), "filepath"),
        (sdk.documents.list(limit=1000), "limit"),
        (sdk.search.documents(q="x", chunk_threshold=2), "chunkThreshold"),
        (sdk.documents.add(content="x", container_tag="a", container_tags=["b"]), "containerTag"),
        (sdk.documents.delete_bulk(), "ids"),
    ]
    for call, path in cases:
        with pytest.raises(supermemory.BadRequestError) as raised:
            await call
        details = raised.value.body["details"]  # type: ignore[index]
        assert path in [d["path"] for d in details], details


async def test_quota_document_date_and_batch_paths(
    make_sdk: MakeSdk, make_key: MakeKey, client: Client
) -> None:
    small = make_sdk(await make_key("acme", quota=12))
    first = await small.documents.add(content="Short note.", custom_id="q")
    again = await small.documents.add(content="Short note.", custom_id="q")  # no-op: free
    assert again.id == first.id
    with pytest.raises(supermemory.APIStatusError) as raised:
        await small.documents.add(content="This one is far too long for the tiny quota left.")
    assert raised.value.status_code == 402
    assert [m.id for m in (await small.documents.list()).memories] == [first.id]

    sdk = make_sdk(await make_key("acme2"))
    dated = await sdk.documents.add(
        content="We signed the lease.", document_date="2021-03-04", container_tag="home"
    )
    response = await client.post(
        "/v4/search",
        json={"q": "lease", "before": "2022-01-01T00:00:00Z", "containerTag": "home"},
        headers=auth(sdk.api_key),
    )
    [found] = (await response.json())["results"]
    assert found["timestamp"] == "2021-03-04T00:00:00Z"
    assert found["conversationId"] == dated.id

    with pytest.raises(supermemory.BadRequestError) as bad:
        await sdk.documents.batch_add(documents=["fine", {"content": ""}, {"customId": "x"}])  # type: ignore[list-item]
    paths = [d["path"] for d in bad.value.body["details"]]  # type: ignore[index]
    assert paths == ["documents[1].content", "documents[2].content"]
    assert (await sdk.documents.list()).memories[0].id == dated.id  # nothing else stored

    relabelled = await sdk.documents.add(content="The garage door code is 2468.")
    await sdk.documents.update(relabelled.id, container_tag="garage")
    hits = await sdk.search.documents(q="garage door code", container_tag="garage")
    assert [r.document_id for r in hits.results] == [relabelled.id]


async def test_the_readme_examples(sdk: supermemory.AsyncSupermemory, tmp_path: Any) -> None:
    """The SDK README's calls of these routes: upload a Path, raw and streaming responses."""
    path = tmp_path / "recipe.md"
    path.write_text("# Pancakes\nMix flour, milk and two eggs; fry in butter.\n")
    uploaded = await sdk.documents.upload_file(file=path)
    doc = await sdk.documents.get(uploaded.id)
    assert doc.title == "recipe.md"
    assert doc.memories
    assert any("two eggs" in m.memory for m in doc.memories)

    raw = await sdk.with_raw_response.add(content="Raw response example.")
    assert raw.headers.get("X-Request-Id")
    parsed = await raw.parse()
    assert parsed.status == "done"
    async with sdk.with_streaming_response.add(content="Streaming response example.") as streamed:
        assert streamed.status_code == 200
        body = await streamed.json()
    assert body["status"] == "done"

    found = await sdk.search.documents(q="how do I make pancakes?")
    assert found.results[0].document_id == uploaded.id
