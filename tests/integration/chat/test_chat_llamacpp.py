"""Chat through the embedded llama.cpp (SmolLM2): answers, long threads, clients that leave."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from memoryd import bootstrap
from memoryd.adapters.http._keys import SERVICES
from memoryd.adapters.llm import LlamaCppChatModel
from memoryd.bootstrap import EMBEDDED_HEADROOM
from memoryd.core.prompt import Budget
from memoryd.settings import Settings
from tests.helpers import MakeKey, auth, make_settings
from tests.integration.chat.chat_helpers import (
    Client,
    answer_text,
    ask,
    chat_tasks,
    data_lines,
    remember,
    served,
)

MakeClient = Callable[[web.Application], Awaitable[Client]]

pytestmark = pytest.mark.slow


async def llama_app(
    aiohttp_client: MakeClient, tmp_path: Path, **overrides: Any
) -> tuple[web.Application, Client, Settings]:
    settings = make_settings(tmp_path / "data", llm="llamacpp", llm_threads=1, **overrides)
    app = await bootstrap.create_app(settings)
    return app, await aiohttp_client(app), settings


def embedded(app: web.Application) -> LlamaCppChatModel:
    chat = app[SERVICES].chat
    assert chat is not None
    assert isinstance(chat.model, LlamaCppChatModel)
    return chat.model


async def test_an_answer_cut_by_llm_max_tokens_finishes_with_length_on_both_wires(
    aiohttp_client: MakeClient, make_key: MakeKey, tmp_path: Path
) -> None:
    _, client, _ = await llama_app(
        aiohttp_client, tmp_path, llm_context_window=1024, llm_max_tokens=3
    )
    key = await make_key("acme")
    question = "Tell me a long story about a dragon who learns to bake bread."
    _, body = await ask(client, key, question)
    (_, ending), (_, done) = data_lines(body)[-2:]
    assert ending["finishReason"] == done["finishReason"] == "length"
    assert done["usage"]["completionTokens"] == 3  # llama.cpp's own count
    assert ending["usage"] == done["usage"]
    assert done["usage"]["promptTokens"] > 20

    _, body = await ask(client, key, question, sse=True)
    assert body.endswith(b'data: {"type":"finish","finishReason":"length"}\n\ndata: [DONE]\n\n')


async def test_an_answer_from_llamacpp_and_a_thread_longer_than_its_window(
    aiohttp_client: MakeClient, make_key: MakeKey, tmp_path: Path
) -> None:
    _, client, _ = await llama_app(
        aiohttp_client, tmp_path, llm_context_window=1024, llm_max_tokens=24
    )
    key = await make_key("acme")
    await remember(client, key, "trip", "We are going to Lisbon in May")
    response, body = await ask(client, key, "Where are we going in May?")
    codes = [code for code, _ in data_lines(body)]
    assert codes[:2] == ["f", "8"]
    assert codes[-2:] == ["e", "d"]
    assert "3" not in codes
    assert answer_text(body).strip()
    assert data_lines(body)[1][1][0]["title"] == "trip"

    # A client sends a history far longer than the model's window: the prompt is cut
    # to fit, and llama.cpp (which refuses a prompt over its context) answers.
    words = " ".join(["lorem ipsum dolor sit amet"] * 12)
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"Turn {i}: {words}"}
        for i in range(80)
    ]
    history.append({"role": "user", "content": "Where are we going in May?"})
    response, body = await ask(client, key, body={"messages": history})
    lines = data_lines(body)
    assert [code for code, _ in lines][-2:] == ["e", "d"], lines[-1]
    budget = Budget(window=1024, max_answer_tokens=24, headroom=EMBEDDED_HEADROOM)
    assert budget.prompt_tokens > 0
    # llama.cpp's own counts: the prompt and the answer fit its window.
    usage = lines[-1][1]["usage"]
    assert usage["promptTokens"] > 0
    assert usage["promptTokens"] + usage["completionTokens"] <= 1024
    thread_id = response.headers["Supermemory-Thread-Uuid"]
    saved = await (await client.get(f"/api/chat/{thread_id}", headers=auth(key))).json()
    assert len(saved["messages"]) == 82  # the whole history is kept, even what the prompt left out


async def slots_busy(model: LlamaCppChatModel) -> bool:
    server = model.server
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{server.address}/slots", headers={"Authorization": f"Bearer {server.key}"}
        ) as response,
    ):
        slots = await response.json()
    return any(slot["is_processing"] for slot in slots)


@pytest.mark.parametrize("sse", [False, True], ids=["data-stream", "ui-message-stream"])
@pytest.mark.parametrize("like_memoryd", [True, False], ids=["memoryd-serve", "test-server"])
async def test_a_client_that_leaves_stops_the_generation(
    make_key: MakeKey, tmp_path: Path, sse: bool, like_memoryd: bool
) -> None:
    settings = make_settings(
        tmp_path / "data",
        llm="llamacpp",
        llm_threads=1,
        llm_context_window=2048,
        llm_max_tokens=1024,
    )
    app = await bootstrap.create_app(settings)
    model = embedded(app)
    key = await make_key("acme")
    headers = auth(key) | ({"Accept": "text/event-stream"} if sse else {})
    question = {
        "messages": [{"role": "user", "content": "Write a very long story about a dragon."}]
    }

    def is_text(line: bytes) -> bool:
        return b'"type":"text-delta"' in line if sse else line.startswith(b"0:")

    async with served(app, like_memoryd=like_memoryd) as url, aiohttp.ClientSession() as session:
        response = await session.post(f"{url}/api/chat", json=question, headers=headers)
        thread_id = response.headers["Supermemory-Thread-Uuid"]
        async with asyncio.timeout(120):
            while not is_text(await response.content.readline()):
                pass
        assert await slots_busy(model)  # it is writing the story
        assert chat_tasks()  # and the answer's tasks are there
        response.close()  # the client goes away mid-answer

        # 1024 tokens take minutes here; a stopped generation frees the slot at once.
        async with asyncio.timeout(60):
            while await slots_busy(model) or chat_tasks():  # noqa: ASYNC110 (another process)
                await asyncio.sleep(0.2)
        async with session.get(f"{url}/api/chat/{thread_id}", headers=auth(key)) as found:
            saved = await found.json()
        assert "messages" not in saved  # an unfinished answer is not saved
