"""A real llama.cpp server (xllamacpp and SmolLM2) per test module, and a proxy that stalls."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from attrs import define, field

from memoryd.adapters.llm import EmbeddedLlamaServer
from tests.helpers import serve_on_loopback

#: The key the module's llama.cpp server requires (it must never show up in errors or logs).
SECRET = "sk-llm-test-do-not-leak-0123456789"


def free_port() -> int:
    """A port nothing listens on at the moment (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama() -> Iterator[EmbeddedLlamaServer]:
    """The real SmolLM2-135M-Instruct behind llama.cpp's server on 127.0.0.1 (1 thread)."""
    server = EmbeddedLlamaServer(threads=1, context_window=512, api_key=SECRET)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as shared:
        yield shared


@define
class StallingProxy:
    """Passes the first ``events`` SSE events from llama.cpp, then goes silent.

    It stays silent until its client leaves (``client_left`` is set then) or
    the proxy closes. Handlers are cancelled when their client disconnects.
    """

    upstream: str
    key: str
    events: int = 3
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
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        try:
            async with (
                aiohttp.ClientSession() as client,
                client.post(f"{self.upstream}/chat/completions", data=body, headers=headers) as up,
            ):
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                passed = 0
                async for line in up.content:
                    await response.write(line)
                    passed += line.startswith(b"data:")
                    if passed >= self.events and not line.strip():
                        break  # the last event passed whole; from here on, silence
                await self._closing.wait()
                return response
        except asyncio.CancelledError:
            self.client_left.set()
            raise


@pytest.fixture
async def stalling_proxy(llama: EmbeddedLlamaServer) -> AsyncIterator[StallingProxy]:
    """A :class:`StallingProxy` in front of the module's llama.cpp server."""
    proxy = StallingProxy(upstream=llama.base_url, key=SECRET)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
