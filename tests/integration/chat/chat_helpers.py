"""Helpers for the chat tests: ingest, ask, and read both wire formats."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.helpers import auth, serve_on_loopback

Client = TestClient[Any, Any]


async def remember(
    client: Client, key: str, conversation_id: str, *texts: str, **extra: Any
) -> dict[str, Any]:
    """Ingest a conversation of user messages said on 2024-03-02 by Alice."""
    messages = [
        {"role": "user", "name": "Alice", "content": t, "timestamp": "2024-03-02T10:00:00Z"}
        for t in texts
    ]
    response = await client.post(
        "/v4/conversations",
        json={"conversationId": conversation_id, "messages": messages, **extra},
        headers=auth(key),
    )
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def ask(
    client: Client,
    key: str,
    text: str | None = None,
    *,
    body: dict[str, Any] | None = None,
    thread_id: str | None = None,
    sse: bool = False,
) -> tuple[Any, bytes]:
    """POST /api/chat; the response and its whole body."""
    payload: dict[str, Any] = body or {"messages": [{"role": "user", "content": text}]}
    if thread_id is not None:
        payload["threadId"] = thread_id
    headers = auth(key) | ({"Accept": "text/event-stream"} if sse else {})
    response = await client.post("/api/chat", json=payload, headers=headers)
    return response, await response.read()


def data_lines(body: bytes) -> list[tuple[str, Any]]:
    """The data stream protocol's (code, value) lines."""
    text = body.decode()
    assert text.endswith("\n")
    return [(line[0], json.loads(line[2:])) for line in text[:-1].split("\n")]


def sse_chunks(body: bytes) -> list[Any]:
    """The UI message stream's ``data:`` payloads ("[DONE]" stays a string)."""
    text = body.decode()
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") for e in events), events
    return [e[6:] if e[6:] == "[DONE]" else json.loads(e[6:]) for e in events]


def answer_text(body: bytes) -> str:
    return "".join(value for code, value in data_lines(body) if code == "0")


def chat_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of an answer still around: its request handler, its watcher, SSE pings."""
    mine = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        module = frame.f_globals.get("__name__", "") if frame is not None else ""
        name = getattr(coro, "__qualname__", "")
        if task is not asyncio.current_task() and (
            module.startswith(("memoryd", "aiohttp_sse")) or name.endswith("_handle_request")
        ):
            mine.append(task)
    return mine


@contextlib.asynccontextmanager
async def served(app: web.Application, *, like_memoryd: bool) -> AsyncIterator[str]:
    """The app on 127.0.0.1: as ``memoryd serve`` runs it, or as aiohttp's TestServer does.

    They differ in what happens when a client leaves: ``memoryd serve`` keeps
    aiohttp's default (the handler is not cancelled), TestServer cancels it.
    """
    if not like_memoryd:
        server = TestServer(app)
        await server.start_server()
        try:
            yield str(server.make_url("")).rstrip("/")
        finally:
            await server.close()
        return
    runner = web.AppRunner(app, access_log=None)
    try:
        yield await serve_on_loopback(runner)
    finally:
        await runner.cleanup()
