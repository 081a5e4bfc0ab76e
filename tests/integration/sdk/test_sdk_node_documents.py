"""/v3/documents and /v3/search driven by the official supermemory TypeScript SDK, through Node.

``tests/node-sdk`` pins the SDK (package.json, package-lock.json); this test
installs it (``npm ci``) if it is missing. Without Node.js and npm the test
fails: the SDK's own code is the contract.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey, run_process
from tests.integration.sdk.conftest import NODE_DIR

Client = TestClient[Any, Any]
SCRIPT = NODE_DIR / "documents.mjs"


async def test_the_typescript_sdk_adds_gets_lists_searches_and_deletes(
    node: str, client: Client, make_key: MakeKey
) -> None:
    key = await make_key("acme")
    base = str(client.make_url("")).rstrip("/")
    code, out, err = await run_process(node, str(SCRIPT), base, key, cwd=NODE_DIR, seconds=120)
    assert code == 0, err
    answer = json.loads(out)

    added, second = answer["added"]["id"], answer["second"]["id"]
    assert answer["added"]["status"] == "done"
    got = answer["get"]
    assert got["id"] == added
    assert got["customId"] is None
    assert got["status"] == "done"
    assert got["content"] == "Our cat Miso loves sleeping on the warm radiator in winter."
    assert got["containerTags"] == ["user_1"]
    assert any("radiator" in m for m in got["memories"])
    assert answer["getByCustomId"] == second

    assert answer["list"]["ids"] == [added, second]
    assert answer["list"]["pagination"]["totalItems"] == 2
    assert answer["list"]["pagination"]["totalPages"] == 2
    assert answer["filtered"] == [added]

    [hit] = answer["searchDocuments"]
    assert hit["documentId"] == added
    assert hit["chunks"][0]["isRelevant"] is True
    assert "radiator" in hit["chunks"][0]["content"]
    assert answer["searchExecute"] == [second]

    from_file, from_bytes = answer["uploads"]
    assert from_file["status"] == from_bytes["status"] == "done"
    assert answer["uploadSearch"] == [from_file["id"]]
    assert answer["withResponse"]["status"] == 200
    assert answer["withResponse"]["requestId"]
    assert answer["url"]["status"] == 422
    assert "fetch_urls" in answer["url"]["error"]["error"]
    assert answer["afterDelete"] == 404
    assert answer["remaining"] == [second]
