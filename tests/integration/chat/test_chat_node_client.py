"""A real client: the AI SDK's own parsers (Node) read a live memoryd /api/chat stream.

``tests/node`` pins the npm packages (package.json and package-lock.json);
tox installs them (``npm ci``), and this test does too if they are missing.
Without Node.js and npm the test fails: the wire formats are only proven
against the real parsers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_process
from tests.integration.chat.chat_helpers import Client, remember

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
SCRIPT = NODE_DIR / "read-chat.mjs"
FACT = "We are going to Lisbon in May, café included!"
QUESTION = "Where are we going in May?"
ANSWER = f'Here is what I remember:\n- On 2 March 2024, Alice said: "{FACT}"'


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        pytest.fail("Node.js 20+ and npm are needed for the AI SDK client tests (tests/node)")
    return found


@pytest.fixture
async def node_modules(node: str) -> Path:
    """tests/node/node_modules, installed from the lock file if it is not there."""
    installed = NODE_DIR / "node_modules"
    if not (installed / "ai").is_dir() or not (installed / "@ai-sdk" / "ui-utils").is_dir():
        npm = shutil.which("npm")
        assert npm is not None
        code, out, err = await run_process(
            npm, "ci", "--no-audit", "--no-fund", cwd=NODE_DIR, seconds=300
        )
        assert code == 0, f"npm ci failed:\n{out}\n{err}"
    return installed


async def read_with_ai_sdk(node: str, client: Client, key: str, protocol: str) -> Any:
    base = str(client.make_url("")).rstrip("/")
    code, out, err = await run_process(
        node, str(SCRIPT), base, key, protocol, QUESTION, cwd=NODE_DIR, seconds=60
    )
    assert code == 0, err
    return json.loads(out)


async def expected_annotation(client: Client, key: str) -> dict[str, Any]:
    response = await client.post(
        "/v4/search", json={"q": QUESTION}, headers={"Authorization": f"Bearer {key}"}
    )
    [found] = [r for r in (await response.json())["results"] if r["similarity"] > 0.4]
    return found


@pytest.mark.usefixtures("node_modules")
async def test_processdatastream_reads_the_default_protocol(
    node: str, client: Client, key: str
) -> None:
    await remember(client, key, "trip", FACT)
    found = await expected_annotation(client, key)
    seen = await read_with_ai_sdk(node, client, key, "data")
    assert seen["errors"] == []
    assert seen["text"] == ANSWER
    assert seen["contentType"] == "text/x-unknown"
    assert seen["messageId"].startswith("msg-")
    assert seen["threadId"]
    [annotation] = seen["annotations"]
    assert annotation["id"] == found["id"]
    assert annotation["similarity"] == found["similarity"]
    assert annotation["content"] == f"[2 March 2024] Alice: {FACT}"
    assert annotation["title"] == "trip"
    assert seen["finish"]["finishReason"] == "stop"
    assert seen["finish"]["usage"]["promptTokens"] > 0
    assert seen["finish"]["usage"]["completionTokens"] > 0


@pytest.mark.usefixtures("node_modules")
@pytest.mark.parametrize("protocol", ["ui", "ui-v5"])
async def test_ai_sdk_5_reads_the_ui_message_stream(
    node: str, client: Client, key: str, protocol: str
) -> None:
    await remember(client, key, "trip", FACT)
    found = await expected_annotation(client, key)
    seen = await read_with_ai_sdk(node, client, key, protocol)
    assert seen["errors"] == []
    assert seen["role"] == "assistant"
    assert seen["messageId"].startswith("msg-")
    assert seen["metadata"]["threadId"]
    assert seen["text"] == ANSWER
    assert seen["partTypes"] == ["data-annotations", "text"]
    [annotation] = seen["annotations"]
    assert annotation["id"] == found["id"]
    assert annotation["content"] == f"[2 March 2024] Alice: {FACT}"
    assert annotation["title"] == "trip"
