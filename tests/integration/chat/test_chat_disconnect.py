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
from attrs import define, field

from memoryd import bootstrap
from tests.helpers import MakeKey, auth, make_settings, serve_on_loopback
from tests.integration.chat.chat_helpers import chat_tasks, served


@define
class SilentModel:
    """Streams one chat completion chunk, then is silent; notes when its client leaves."""

    requests: int = 0
    client_left: asyncio.Event = field(factory=asyncio.Event)
    _closing: asyncio.Event = field(factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        self.url = await serve_on_loopback(self._runner) + "/v1"

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"choices": [{"index": 0, "delta": {"content": "Once upon a time"}}]}
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        try:
            await self._closing.wait()
        except asyncio.CancelledError:
            self.client_left.set()
            raise
        return response


@pytest.fixture
async def silent_model() -> AsyncIterator[SilentModel]:
    model = SilentModel()
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
    silent_model: SilentModel,
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
