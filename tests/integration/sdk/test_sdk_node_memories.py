"""/v4/profile, /v4/memories, /v4/search options and /v3/settings with the TypeScript SDK, in Node.

``tests/node-sdk`` pins the SDK; the scripts ``profile.mjs``, ``memories.mjs`` and
``search.mjs`` call it as an app would and print what each call answered. The
conversations are stored first, as in the Python SDK tests beside this file.
"""

from __future__ import annotations

import json
from typing import Any

from tests.helpers import MakeKey, run_process
from tests.integration.sdk.conftest import NODE_DIR, Client, Ingest
from tests.integration.sdk.test_sdk_profile import TURNS

DOG = "I adopted a golden retriever puppy and named him Biscuit."
BUDGET = "The quarterly budget meeting moved to Thursday afternoon."


async def script(node: str, client: Client, key: str, name: str) -> Any:
    base = str(client.make_url("")).rstrip("/")
    code, out, err = await run_process(
        node, str(NODE_DIR / name), base, key, cwd=NODE_DIR, seconds=120
    )
    assert code == 0, err
    return json.loads(out)


async def test_typescript_memories(
    node: str, client: Client, make_key: MakeKey, ingest: Ingest
) -> None:
    key = await make_key("acme")
    await ingest(key, "pets", [DOG, BUDGET], containerTag="alice")
    answer = await script(node, client, key, "memories.mjs")
    dog = answer["dogId"]
    assert answer["updated"]["id"] == dog
    assert answer["updated"]["memory"].startswith("My new kitten")
    assert answer["updated"]["metadata"] == {"kind": "pet"}
    assert answer["afterUpdate"][0]["id"] == dog
    assert all("Biscuit" not in r["memory"] for r in answer["oldWords"])
    assert answer["forgotten"] == {"id": dog, "forgotten": True, "forgottenIds": [dog]}
    assert dog not in [r["id"] for r in answer["afterForget"]]
    assert answer["again"] == 404
    assert answer["byContent"]["forgotten"] is True
    assert answer["forgetAfter"]["details"][0]["path"] == "forgetAfter"


async def test_typescript_profile_and_settings(
    node: str, client: Client, make_key: MakeKey, ingest: Ingest
) -> None:
    key = await make_key("acme")
    await ingest(key, "life", TURNS, containerTag="user-1", metadata={"source": "chat"})
    answer = await script(node, client, key, "profile.mjs")
    assert answer["profile"]["profile"] == {"static": TURNS[:2], "dynamic": TURNS[:1:-1]}
    with_search = answer["withSearch"]
    assert with_search["profile"] == {"dynamic": TURNS[:1:-1]}
    assert "violin" in with_search["searchResults"]["results"][0]["memory"]
    assert answer["filtered"]["profile"] == {"static": [], "dynamic": []}
    assert answer["settings"]["profileBuckets"] == []
    assert answer["settings"]["shouldLLMFilter"] is False


async def test_typescript_search_options(
    node: str, client: Client, make_key: MakeKey, ingest: Ingest
) -> None:
    key = await make_key("acme")
    await ingest(key, "life", TURNS, containerTag="user-1", metadata={"title": "Life"})
    answer = await script(node, client, key, "search.mjs")
    (top, _) = answer["memories"]["results"]
    assert "violin" in top["memory"]
    chunks = answer["documents"]["results"]
    assert "violin" in chunks[0]["chunk"]
    assert "memory" not in chunks[0]
    (hit,) = answer["include"]["results"]
    assert hit["documents"][0]["title"] == "Life"
    assert chunks[0]["documentId"] == hit["documents"][0]["id"]
    assert sorted(r["memory"] for r in hit["context"]["related"]) == sorted(TURNS[3:6:2])
    assert answer["strict"]["results"] == []
    assert answer["rerank"]["reranked"] is False
