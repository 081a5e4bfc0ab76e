"""``client.profile`` (POST /v4/profile) with the official Python SDK.

The profile of a tag, made without a model: ``static`` holds what later
memories keep referring back to, ``dynamic`` the newest other ones (the rule
in memoryd.core.profile and docs/api.md).
"""

from __future__ import annotations

import pytest
import supermemory

from tests.helpers import MakeKey
from tests.integration.sdk.conftest import Ingest, MakeSdk

#: Oldest first. The first turn is what the later ones keep coming back to.
TURNS = [
    "I love hiking in the Alps mountains every summer.",
    "Bought new hiking boots for the mountains trip.",
    "Planning another hiking weekend in the mountains.",
    "The mountains were foggy, but the hiking was great.",
    "My sister started learning the violin.",
    "Dinner tonight: homemade ramen with extra garlic.",
]


@pytest.fixture
async def sdk(make_key: MakeKey, make_sdk: MakeSdk, ingest: Ingest) -> supermemory.AsyncSupermemory:
    key = await make_key("acme")
    await ingest(key, "life", TURNS, containerTag="user-1", metadata={"source": "chat"})
    await ingest(
        key, "work", ["Quarterly hiking budget for the mountains office."], containerTag="user-2"
    )
    return make_sdk(key)


async def test_profile_static_and_dynamic(sdk: supermemory.AsyncSupermemory) -> None:
    answer = await sdk.profile(container_tag="user-1")
    assert answer.search_results is None
    static, dynamic = answer.profile.static, answer.profile.dynamic
    assert static is not None
    assert dynamic is not None
    # Referred back to by three later turns, then two, then one (not enough).
    assert static == TURNS[:2]
    # The newest first, without the static ones.
    assert dynamic == TURNS[:1:-1]
    # Another tag's memories are never in it.
    assert not any("Quarterly" in t for t in static + dynamic)


async def test_profile_include_filters_and_search(sdk: supermemory.AsyncSupermemory) -> None:
    only = await sdk.profile(container_tag="user-1", include=["dynamic"])
    assert only.profile.static is None
    assert only.profile.dynamic == TURNS[:1:-1]
    none = await sdk.profile(
        container_tag="user-1", filters={"AND": [{"key": "source", "value": "email"}]}
    )
    assert (none.profile.static, none.profile.dynamic) == ([], [])
    found = await sdk.profile(container_tag="user-1", q="what instrument is being learnt")
    assert found.search_results is not None
    assert found.search_results.results[0].memory is not None
    assert "violin" in found.search_results.results[0].memory
    assert found.search_results.total == len(found.search_results.results)
    # The search keeps to the tag too.
    texts = [r.memory or "" for r in found.search_results.results]
    assert not any("Quarterly" in t for t in texts)
    strict = await sdk.profile(container_tag="user-1", q="violin", threshold=0.99)
    assert strict.search_results is not None
    assert strict.search_results.results == []


async def test_profile_of_an_empty_tag_and_errors(
    sdk: supermemory.AsyncSupermemory, make_key: MakeKey, make_sdk: MakeSdk
) -> None:
    empty = await sdk.profile(container_tag="nobody")
    assert (empty.profile.static, empty.profile.dynamic) == ([], [])
    limited = make_sdk(await make_key("acme", tags=("user-2",)))
    with pytest.raises(supermemory.PermissionDeniedError):
        await limited.profile(container_tag="user-1")
    with pytest.raises(supermemory.BadRequestError) as raised:
        await sdk.profile(container_tag="user-1", include=["everything"])  # type: ignore[list-item]
    assert raised.value.body["details"][0]["path"] == "include"  # type: ignore[index]
    with pytest.raises(supermemory.BadRequestError):
        await sdk.profile(container_tag="  ")
