"""Errors before the stream are the spec's JSON; after it starts they are in-band."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from memoryd import bootstrap
from memoryd.settings import Settings
from tests.helpers import MakeKey, auth, make_settings
from tests.integration.chat.chat_helpers import Client, ask, data_lines, remember, sse_chunks

MakeClient = Callable[[web.Application], Awaitable[Client]]
INVALID_PROMPT = {"error": "Invalid prompt - please rephrase your message"}


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "user", "content": ""}],
        [{"role": "user", "content": "   "}, {"role": "assistant", "content": "Hi!"}],
        [{"role": "system", "content": "Be brief."}],
        [{"role": "user", "content": [{"type": "text", "text": ""}]}],
        [{"role": "user", "parts": [{"type": "step-start"}]}],
    ],
)
async def test_no_user_message_with_text_is_400_invalid_prompt(
    client: Client, key: str, messages: list[Any]
) -> None:
    response, _ = await ask(client, key, body={"messages": messages})
    assert response.status == 400
    assert response.content_type == "application/json"
    assert await response.json() == INVALID_PROMPT
    threads = await (await client.get("/api/threads", headers=auth(key))).json()
    assert threads["threads"] == []  # nothing was made


async def test_a_malformed_request_is_400_with_each_field_path(client: Client, key: str) -> None:
    bad = {
        "messages": [
            {"role": "robot", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": 5}]},
            {"role": "user"},
        ],
        "threadId": "",
    }
    response, _ = await ask(client, key, body=bad)
    assert response.status == 400
    found = await response.json()
    assert found["error"] == "Invalid request"
    assert {d["path"] for d in found["details"]} == {
        "messages[0].role",
        "messages[1].content[0].text",
        "messages[2].content",
        "threadId",
    }


async def test_no_key_is_401(client: Client) -> None:
    response = await client.post("/api/chat", json={"messages": []})
    assert response.status == 401
    assert await response.json() == {"error": "Unauthorized"}
    for method, path in [
        ("GET", "/api/chat/x"),
        ("DELETE", "/api/chat/x"),
        ("GET", "/api/threads"),
    ]:
        assert (await client.request(method, path)).status == 401


async def test_an_unknown_thread_is_404(client: Client, key: str) -> None:
    response, _ = await ask(client, key, "Hello", thread_id="no-such-thread")
    assert response.status == 404
    assert await response.json() == {
        "error": "Thread not found",
        "details": {"threadId": "no-such-thread"},
    }


async def test_an_unreachable_store_is_503_database_connection_failed(
    client: Client, key: str, settings: Settings
) -> None:
    await remember(client, key, "trip", "We are going to Lisbon in May")
    first, _ = await ask(client, key, "Where are we going?")
    thread_id = first.headers["Supermemory-Thread-Uuid"]
    # The SQLite file disappears under the running server (a deleted or unmounted data dir).
    await asyncio.to_thread(settings.database_path.unlink)
    response, _ = await ask(client, key, "Where are we going?")
    assert response.status == 503
    assert await response.json() == {"error": "Database connection failed"}
    # Continuing a thread reads it (the open file still answers reads), but the answer
    # cannot be saved: the stream has started, so the error is in-band.
    response, body = await ask(client, key, "And when?", thread_id=thread_id)
    assert response.status == 200
    assert data_lines(body)[-1] == ("3", "Database connection failed")
    assert "e" not in {code for code, _ in data_lines(body)}


async def test_a_closed_store_is_503(app: web.Application, client: Client, key: str) -> None:
    from memoryd.adapters.http._keys import SERVICES

    chat = app[SERVICES].chat
    assert chat is not None
    await chat.threads.db.close()  # type: ignore[attr-defined]
    response, _ = await ask(client, key, "Hello")
    assert response.status == 503
    assert await response.json() == {"error": "Database connection failed"}


class BrokenEmbedder:
    """An embedder with a bug (the ``Embedder`` port): every call raises."""

    model_name = "broken-embedder"
    dimension = 8

    async def embed_documents(self, texts: Sequence[str]) -> Any:
        raise RuntimeError("the embedder is on fire")

    async def embed_query(self, text: str) -> Any:
        raise RuntimeError("the embedder is on fire")


@pytest.mark.parametrize("development", [False, True])
async def test_an_unexpected_error_is_500_with_details_only_in_development(
    aiohttp_client: MakeClient, make_key: MakeKey, tmp_path: Path, development: bool
) -> None:
    settings = make_settings(tmp_path / "data", development=development)
    app = await bootstrap.create_app(settings, overrides={"embedder": BrokenEmbedder()})
    client = await aiohttp_client(app)
    key = await make_key("acme")
    response, _ = await ask(client, key, body={"messages": [{"role": "user", "content": "Hi?"}]})
    assert response.status == 500
    if development:
        assert await response.json() == {
            "error": "An unexpected error occurred",
            "details": "RuntimeError: the embedder is on fire",
        }
    else:
        assert await response.json() == {"error": "An unexpected error occurred"}
    threads = await (await client.get("/api/threads", headers=auth(key))).json()
    assert threads["threads"] == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("development", [False, True])
async def test_a_model_that_is_down_is_an_in_band_error_and_the_stream_closes(
    aiohttp_client: MakeClient, make_key: MakeKey, tmp_path: Path, development: bool
) -> None:
    settings = make_settings(
        tmp_path / "data",
        llm="openai",
        llm_url=f"http://127.0.0.1:{closed_port()}/v1",
        llm_connect_retries=0,
        development=development,
    )
    client = await aiohttp_client(await bootstrap.create_app(settings))
    key = await make_key("acme")
    await remember(client, key, "trip", "We are going to Lisbon in May")

    response, body = await ask(client, key, "Where are we going in May?")
    assert response.status == 200
    lines = data_lines(body)
    assert [code for code, _ in lines] == ["f", "8", "3"]
    assert lines[1][1][0]["title"] == "trip"  # the annotations went out before the model was asked
    error = lines[2][1]
    if development:
        assert error.startswith("Model backend unavailable: Cannot reach the chat model server")
        assert "llm_url" in error
    else:
        assert error == "Model backend unavailable"

    response, body = await ask(client, key, "Where are we going in May?", sse=True)
    chunks = sse_chunks(body)
    assert [c if isinstance(c, str) else c["type"] for c in chunks] == [
        "start",
        "data-annotations",
        "error",
        "[DONE]",
    ]
    assert chunks[2]["errorText"].startswith("Model backend unavailable")

    thread_id = response.headers["Supermemory-Thread-Uuid"]
    thread = await (await client.get(f"/api/chat/{thread_id}", headers=auth(key))).json()
    assert "messages" not in thread  # nothing was saved: the client may send it again
