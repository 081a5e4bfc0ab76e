"""The official Python SDK pointed at a real app on 127.0.0.1, and ways to fill it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import supermemory
from aiohttp.test_utils import TestClient

from tests.helpers import auth, run_process

Client = TestClient[Any, Any]
Ingest = Callable[..., Awaitable[None]]
MakeSdk = Callable[[str], supermemory.AsyncSupermemory]


@pytest.fixture
async def make_sdk(client: Client) -> AsyncIterator[MakeSdk]:
    """An SDK client for a key (closed at the end), never through a proxy."""
    opened: list[supermemory.AsyncSupermemory] = []

    def make(key: str) -> supermemory.AsyncSupermemory:
        http = supermemory.DefaultAsyncHttpxClient(trust_env=False)  # loopback, never a proxy
        sdk = supermemory.AsyncSupermemory(
            api_key=key, base_url=str(client.make_url("")), max_retries=0, http_client=http
        )
        opened.append(sdk)
        return sdk

    yield make
    for sdk in opened:
        await sdk.close()


@pytest.fixture
def ingest(client: Client) -> Ingest:
    """Store a conversation through POST /v4/conversations, as the memoryd client does."""

    async def send(key: str, conversation_id: str, texts: list[str], **body: Any) -> None:
        messages = [
            {"role": "user", "content": text, "timestamp": f"2024-01-{i + 1:02d}T10:00:00Z"}
            for i, text in enumerate(texts)
        ]
        response = await client.post(
            "/v4/conversations",
            json={"conversationId": conversation_id, "messages": messages, **body},
            headers=auth(key),
        )
        assert response.status == 200, await response.text()

    return send


NODE_DIR = Path(__file__).resolve().parents[2] / "node-sdk"


@pytest.fixture
async def node() -> str:
    found = shutil.which("node")
    npm = shutil.which("npm")
    if found is None or npm is None:
        pytest.fail("Node.js 20+ and npm are needed for the TypeScript SDK tests (tests/node-sdk)")
    if not (NODE_DIR / "node_modules" / "supermemory").is_dir():
        code, out, err = await run_process(
            npm, "ci", "--no-audit", "--no-fund", cwd=NODE_DIR, seconds=300
        )
        assert code == 0, f"npm ci failed:\n{out}\n{err}"
    return found
