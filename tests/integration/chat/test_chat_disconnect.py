"""A client that leaves while the model is silent: memoryd notices and hangs up on the model.

The model here is a small OpenAI-compatible server on 127.0.0.1 that sends one
token and then nothing, until its own client (memoryd) goes away. No write
to the chat client fails while the model is silent, so only memoryd's watch
on the connection can see the client leave.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from memoryd import bootstrap
from tests.helpers import MakeKey, StallingCompletions, auth, make_settings
from tests.integration.chat.chat_helpers import chat_tasks, served


async def one_chunk(body: bytes, response: web.StreamResponse) -> None:
    """The start of a story, and no more."""
    del body
    chunk = {"choices": [{"index": 0, "delta": {"content": "Once upon a time"}}]}
    await response.write(f"data: {json.dumps(chunk)}\n\n".encode())


@pytest.fixture
async def silent_model() -> AsyncIterator[StallingCompletions]:
    """A model that streams one chunk, then is silent; notes when its client leaves."""
    model = StallingCompletions(one_chunk)
    await model.start()
    try:
        yield model
    finally:
        await model.close()


@pytest.mark.parametrize("sse", [False, True], ids=["data-stream", "ui-message-stream"])
@pytest.mark.parametrize("like_memoryd", [True, False], ids=["memoryd-serve", "test-server"])
async def test_a_client_that_leaves_a_silent_model_is_noticed(
    make_key: MakeKey,
    tmp_path: Path,
    silent_model: StallingCompletions,
    sse: bool,
    like_memoryd: bool,
) -> None:
    settings = make_settings(
        tmp_path / "data", llm="openai", llm_url=silent_model.url, llm_read_timeout=300
    )
    app = await bootstrap.create_app(settings)
    key = await make_key("acme")
    headers = auth(key) | ({"Accept": "text/event-stream"} if sse else {})
    question = {"messages": [{"role": "user", "content": "Tell me a story."}]}
    async with served(app, like_memoryd=like_memoryd) as url, aiohttp.ClientSession() as session:
        response = await session.post(f"{url}/api/chat", json=question, headers=headers)
        thread_id = response.headers["Supermemory-Thread-Uuid"]
        async with asyncio.timeout(30):
            while b"Once upon a time" not in await response.content.readline():
                pass
        assert chat_tasks()
        response.close()  # the client leaves while the model is silent

        async with asyncio.timeout(30):
            await silent_model.client_left.wait()  # memoryd hung up on the model
            while chat_tasks():  # noqa: ASYNC110 (tasks of the server under test)
                await asyncio.sleep(0.05)
        assert silent_model.requests == 1
        async with session.get(f"{url}/api/chat/{thread_id}", headers=auth(key)) as found:
            assert "messages" not in await found.json()  # nothing was saved
