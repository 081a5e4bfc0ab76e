"""A kept-alive connection that the model server has closed is not an outage.

llama.cpp's server (like many) may close an idle kept-alive connection at the
moment the client reuses it: the request then fails before any answer, with
"Server disconnected" or "Can not write request body". The server below, on
127.0.0.1, answers the first request of each connection and drops the
connection when a second request arrives on it, which is that race made
certain.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from memoryd.adapters.llm import OpenAIChatModel
from memoryd.core.ports import ChatTurn, Completed

PROMPT = (ChatTurn("user", "Say hi."),)


def _sse() -> bytes:
    events = [
        {"choices": [{"index": 0, "delta": {"content": "hi"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return body.encode()


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """Read one HTTP request (headers and a Content-Length body); False at EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return True


@pytest.fixture
async def dropping_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A server whose connections each serve one request, then drop the next one."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_request(reader)
            body = _sse()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            served.append(1)
            await _read_request(reader)  # the reused connection's request: dropped unanswered
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/v1", served


async def test_a_closed_kept_alive_connection_is_retried_on_a_new_one(
    dropping_server: tuple[str, list[int]],
) -> None:
    base_url, served = dropping_server
    async with aiohttp.ClientSession() as session:
        model = OpenAIChatModel(base_url=base_url, model="m", session=session, connect_retries=0)
        for _ in range(3):
            async with asyncio.timeout(10):
                *pieces, completed = [p async for p in model.stream(PROMPT, max_tokens=4)]
            assert "".join(map(str, pieces)) == "hi"
            assert isinstance(completed, Completed)
    assert len(served) == 3
