"""The OpenAI-compatible client against a real llama.cpp server on 127.0.0.1.

A small aiohttp proxy in front of llama.cpp shows what the real server will
not do on demand: stall mid-answer, and notice when its client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from memoryd.adapters.llm import EmbeddedLlamaServer, OpenAIChatModel
from memoryd.core.errors import ModelUnavailable
from memoryd.core.ports import ChatTurn, Completed
from tests.helpers import StallingCompletions

from .conftest import SECRET, free_port

PROMPT = (
    ChatTurn("system", "You are a helpful assistant. Answer in one short sentence."),
    ChatTurn("user", "What colour is the sky on a clear day?"),
)
WRONG = "sk-wrong-key-also-secret-9876543210"


def client(base_url: str, session: aiohttp.ClientSession, **options: Any) -> OpenAIChatModel:
    settings: dict[str, Any] = {"api_key": SECRET, "context_window": 512, **options}
    return OpenAIChatModel(base_url=base_url, model="smollm2", session=session, **settings)


async def test_streams_an_answer_from_llama_cpp(
    llama: EmbeddedLlamaServer, session: aiohttp.ClientSession
) -> None:
    model = client(llama.base_url, session)
    async with asyncio.timeout(60):
        *pieces, completed = [piece async for piece in model.stream(PROMPT, max_tokens=16)]
    assert all(isinstance(p, str) for p in pieces)
    assert len(pieces) > 1  # streamed, not sent at once
    assert "".join(map(str, pieces)).strip()
    assert isinstance(completed, Completed)
    assert completed.finish_reason in ("stop", "length")
    # llama.cpp's own counts (asked for with stream_options.include_usage).
    assert completed.usage is not None
    assert not completed.usage.estimated
    assert completed.usage.prompt_tokens > 10
    assert 1 <= completed.usage.completion_tokens <= 16
    assert model.name == "smollm2"
    assert model.context_window == 512


async def test_a_small_max_tokens_finishes_with_length(
    llama: EmbeddedLlamaServer, session: aiohttp.ClientSession
) -> None:
    model = client(llama.base_url, session)
    long = (ChatTurn("user", "Write a long story about a dragon and a knight."),)
    async with asyncio.timeout(60):
        *pieces, completed = [piece async for piece in model.stream(long, max_tokens=3)]
    assert completed == Completed("length", completed.usage)
    assert completed.usage is not None
    assert completed.usage.completion_tokens == 3
    assert pieces


async def test_a_model_without_a_session_opens_and_closes_its_own(
    llama: EmbeddedLlamaServer,
) -> None:
    model = OpenAIChatModel(base_url=llama.base_url + "/", model="smollm2", api_key=SECRET)
    try:
        async with asyncio.timeout(60):
            answer = "".join(
                [p async for p in model.stream(PROMPT, max_tokens=8) if isinstance(p, str)]
            )
        assert answer.strip()
    finally:
        await model.aclose()


async def test_a_wrong_key_names_the_setting_and_never_shows_a_key(
    llama: EmbeddedLlamaServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    model = client(llama.base_url, session, api_key=WRONG)
    with pytest.raises(ModelUnavailable, match="llm_api_key") as caught:
        async for _ in model.stream(PROMPT, max_tokens=16):
            pass
    error = caught.value
    assert "401" in error.message
    shown = f"{error.message} {error.details!r} {model!r} {caplog.text}"
    assert WRONG not in shown
    assert SECRET not in shown


async def test_no_key_at_all_says_none_is_set(
    llama: EmbeddedLlamaServer, session: aiohttp.ClientSession
) -> None:
    model = client(llama.base_url, session, api_key=None)
    with pytest.raises(ModelUnavailable, match=r"llm_api_key setting \(none is set\)"):
        async for _ in model.stream(PROMPT, max_tokens=16):
            pass


async def test_a_server_that_is_down_fails_after_the_retries(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="memoryd.adapters.llm")
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = client(url, session, connect_retries=2, retry_backoff=0.01, connect_timeout=2.0)
    async with asyncio.timeout(30):
        with pytest.raises(ModelUnavailable, match="llm_url") as caught:
            async for _ in model.stream(PROMPT, max_tokens=16):
                pass
    assert "after 3 attempts" in caught.value.message
    assert url.removesuffix("/v1") in caught.value.message
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.getMessage().split("(attempt ")[1][:6] for r in retries] == ["1 of 3", "2 of 3"]


async def test_a_stall_mid_answer_raises_after_the_read_timeout(
    stalling_proxy: StallingCompletions, session: aiohttp.ClientSession
) -> None:
    model = client(stalling_proxy.url, session, read_timeout=0.5)
    pieces: list[str] = []
    async with asyncio.timeout(30):  # a limit, not a measurement: the consumer must not hang
        with pytest.raises(ModelUnavailable, match="llm_read_timeout") as caught:
            await collect(model.stream(PROMPT, max_tokens=16), pieces)
        await stalling_proxy.client_left.wait()  # the response was closed, not left open
    assert pieces  # the first events did arrive
    assert "sent nothing for 0.5 s" in caught.value.message


async def test_cancelling_the_reader_closes_the_upstream_response(
    stalling_proxy: StallingCompletions, session: aiohttp.ClientSession
) -> None:
    model = client(stalling_proxy.url, session, read_timeout=60)
    first = asyncio.Event()

    async def read() -> None:
        async for _ in model.stream(PROMPT, max_tokens=16):
            first.set()

    reader = asyncio.create_task(read())
    async with asyncio.timeout(30):
        await first.wait()
        await asyncio.sleep(0.05)  # let it wait on the silent proxy
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        await stalling_proxy.client_left.wait()
    await stalling_proxy.close()
    assert _pending_tasks() == []


async def test_closing_the_stream_early_closes_the_upstream_response(
    stalling_proxy: StallingCompletions, session: aiohttp.ClientSession
) -> None:
    model = client(stalling_proxy.url, session, read_timeout=60)
    async with asyncio.timeout(30):
        async with contextlib.aclosing(model.stream(PROMPT, max_tokens=16)) as pieces:
            async for piece in pieces:
                assert piece
                break
        await stalling_proxy.client_left.wait()
    await stalling_proxy.close()
    assert _pending_tasks() == []


async def collect(stream: AsyncIterator[str], into: list[str]) -> None:
    async for piece in stream:
        into.append(piece)


def _pending_tasks() -> list[asyncio.Task[object]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]
