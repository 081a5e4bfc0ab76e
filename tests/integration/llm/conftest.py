"""A real llama.cpp server (xllamacpp and SmolLM2) per test module, and a proxy that stalls."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from memoryd.adapters.llm import EmbeddedLlamaServer
from tests.helpers import Opening, StallingCompletions

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


def passing(upstream: str, key: str, events: int = 3) -> Opening:
    """An opening that passes llama.cpp's first ``events`` SSE events, whole."""

    async def opening(body: bytes, response: web.StreamResponse) -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        async with (
            aiohttp.ClientSession() as client,
            client.post(f"{upstream}/chat/completions", data=body, headers=headers) as up,
        ):
            passed = 0
            async for line in up.content:
                await response.write(line)
                passed += line.startswith(b"data:")
                if passed >= events and not line.strip():
                    return  # the last event passed whole; from here on, silence

    return opening


@pytest.fixture
async def stalling_proxy(llama: EmbeddedLlamaServer) -> AsyncIterator[StallingCompletions]:
    """The module's llama.cpp server's first three events, then silence until the client leaves."""
    proxy = StallingCompletions(passing(llama.base_url, SECRET))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
