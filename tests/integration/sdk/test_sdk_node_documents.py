"""/v3/documents and /v3/search driven by the official supermemory TypeScript SDK, through Node.

``tests/node-sdk`` pins the SDK (package.json, package-lock.json); this test
installs it (``npm ci``) if it is missing. Without Node.js and npm the test
fails: the SDK's own code is the contract.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey

Client = TestClient[Any, Any]
NODE_DIR = Path(__file__).resolve().parents[2] / "node-sdk"
SCRIPT = NODE_DIR / "documents.mjs"


async def run(*command: str, cwd: Path, seconds: float) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def node() -> str:
    found = shutil.which("node")
    npm = shutil.which("npm")
    if found is None or npm is None:
        pytest.fail("Node.js 20+ and npm are needed for the TypeScript SDK tests (tests/node-sdk)")
    if not (NODE_DIR / "node_modules" / "supermemory").is_dir():
        code, out, err = await run(npm, "ci", "--no-audit", "--no-fund", cwd=NODE_DIR, seconds=300)
        assert code == 0, f"npm ci failed:\n{out}\n{err}"
    return found


async def test_the_typescript_sdk_adds_gets_lists_searches_and_deletes(
    node: str, client: Client, make_key: MakeKey
) -> None:
    key = await make_key("acme")
    base = str(client.make_url("")).rstrip("/")
    code, out, err = await run(node, str(SCRIPT), base, key, cwd=NODE_DIR, seconds=120)
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
