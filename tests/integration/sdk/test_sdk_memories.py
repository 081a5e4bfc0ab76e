"""``memories.update_memory`` and ``memories.forget`` (PATCH/DELETE /v4/memories) with the SDK.

An update re-embeds: search finds the new words and no longer the old ones. A
forget removes the memory from search. A key limited to one tag cannot touch
another tag's memories, and a memory is addressed only within its own tag.
"""

from __future__ import annotations

from typing import Any

import pytest
import supermemory

from tests.helpers import MakeKey
from tests.integration.sdk.conftest import Ingest, MakeSdk

DOG = "I adopted a golden retriever puppy and named him Biscuit."
CAT = "My new kitten is called Pixel and she only eats salmon pate."
OTHER = "The quarterly budget meeting moved to Thursday afternoon."


async def texts(sdk: supermemory.AsyncSupermemory, q: str, tag: str) -> dict[str, str]:
    """Search results as id -> memory text."""
    answer = await sdk.search.memories(q=q, container_tag=tag, limit=20)
    return {r.id: r.memory or "" for r in answer.results}


async def memory_id(sdk: supermemory.AsyncSupermemory, text: str, tag: str) -> str:
    found = [i for i, t in (await texts(sdk, text, tag)).items() if text in t]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
async def alice(
    make_key: MakeKey, make_sdk: MakeSdk, ingest: Ingest
) -> supermemory.AsyncSupermemory:
    key = await make_key("acme")
    await ingest(key, "pets", [DOG, OTHER], containerTag="alice")
    return make_sdk(key)


async def test_update_re_embeds_the_new_text(alice: supermemory.AsyncSupermemory) -> None:
    mid = await memory_id(alice, DOG, "alice")
    updated = await alice.memories.update_memory(container_tag="alice", id=mid, new_content=CAT)
    assert (updated.id, updated.memory, updated.version) == (mid, CAT, 1)
    # The new words find it, by meaning (no shared keyword: "cat food") and by keyword.
    assert CAT in (await texts(alice, "what does the cat eat", "alice")).get(mid, "")
    assert CAT in (await texts(alice, "Pixel", "alice")).get(mid, "")
    # The old words are gone from every result.
    for text in (await texts(alice, "golden retriever Biscuit", "alice")).values():
        assert "Biscuit" not in text


async def test_update_by_content_sets_metadata(alice: supermemory.AsyncSupermemory) -> None:
    updated = await alice.memories.update_memory(
        container_tag="alice", content=DOG, new_content=CAT, metadata={"kind": "pet", "age": 1}
    )
    assert updated.metadata == {"kind": "pet", "age": 1}
    answer = await alice.search.memories(
        q="kitten", container_tag="alice", filters={"AND": [{"key": "kind", "value": "pet"}]}
    )
    assert [r.id for r in answer.results] == [updated.id]


async def test_forget_by_id_and_by_content(alice: supermemory.AsyncSupermemory) -> None:
    mid = await memory_id(alice, DOG, "alice")
    gone = await alice.memories.forget(container_tag="alice", id=mid, reason="outdated")
    assert (gone.id, gone.forgotten) == (mid, True)
    assert mid not in await texts(alice, "golden retriever Biscuit", "alice")
    with pytest.raises(supermemory.NotFoundError):
        await alice.memories.forget(container_tag="alice", id=mid)
    other = await memory_id(alice, OTHER, "alice")
    gone = await alice.memories.forget(container_tag="alice", content=OTHER)
    assert gone.id == other
    assert await texts(alice, "budget meeting Thursday", "alice") == {}


async def test_tags_isolate(
    alice: supermemory.AsyncSupermemory, make_key: MakeKey, make_sdk: MakeSdk, ingest: Ingest
) -> None:
    mid = await memory_id(alice, DOG, "alice")
    bob_key = await make_key("acme", tags=("bob",))
    await ingest(bob_key, "bob-notes", [OTHER], containerTag="bob")
    bob = make_sdk(bob_key)
    # A key limited to "bob" may not name "alice"...
    with pytest.raises(supermemory.PermissionDeniedError):
        await bob.memories.forget(container_tag="alice", id=mid)
    with pytest.raises(supermemory.PermissionDeniedError):
        await bob.memories.update_memory(container_tag="alice", id=mid, new_content=CAT)
    # ...and alice's memory is not found under "bob", whichever key asks.
    for sdk in (bob, alice):
        with pytest.raises(supermemory.NotFoundError):
            await sdk.memories.forget(container_tag="bob", id=mid)
        with pytest.raises(supermemory.NotFoundError):
            await sdk.memories.update_memory(container_tag="bob", content=DOG, new_content=CAT)
    # Another tenant's key finds nothing either.
    other = make_sdk(await make_key("globex"))
    with pytest.raises(supermemory.NotFoundError):
        await other.memories.forget(container_tag="alice", id=mid)
    assert DOG in (await texts(alice, "golden retriever", "alice"))[mid]


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"container_tag": "alice", "new_content": CAT}, "id", "id, or its exact content"),
    ({"container_tag": "alice", "new_content": CAT, "id": "x", "content": DOG}, "id", "not both"),
    ({"container_tag": "alice", "new_content": " ", "id": "x"}, "newContent", "blank"),
    (
        {"container_tag": "alice", "new_content": CAT, "id": "x", "forget_after": "2030-01-01"},
        "forgetAfter",
        "DELETE /v4/memories",
    ),
    (
        {
            "container_tag": "alice",
            "new_content": CAT,
            "id": "x",
            "temporal_context": {"document_date": "2024-01-01"},
        },
        "temporalContext",
        "metadata",
    ),
    (
        {"container_tag": "alice", "new_content": CAT, "id": "x", "metadata": {"tags": ["a"]}},
        "metadata",
        "",
    ),
]


async def test_unsupported_and_malformed_bodies_are_400s_naming_the_field(
    alice: supermemory.AsyncSupermemory,
) -> None:
    for params, path, message in BAD:
        with pytest.raises(supermemory.BadRequestError) as raised:
            await alice.memories.update_memory(**params)
        body = raised.value.body
        assert isinstance(body, dict)
        paths = [d["path"] for d in body["details"]]
        assert path in paths, body
        assert any(message in d["message"] for d in body["details"]), body
    with pytest.raises(supermemory.BadRequestError):
        await alice.memories.forget(container_tag="alice")
