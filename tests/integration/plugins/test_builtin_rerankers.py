"""The built-in rerankers over HTTP: each changes the order only when named and asked for."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from tests.helpers import serve_on_loopback
from tests.integration.plugins.plugin_helpers import Serve, Served

FILLERS = [
    "The invoice for the plumber is due on Friday.",
    "We watched a film about penguins in Antarctica.",
    "My sister plays the cello in an orchestra.",
]


async def remember_at(served: Served, conversation_id: str, text: str, when: str) -> None:
    message = {"role": "user", "content": text, "timestamp": when}
    await served.post(
        "/v4/conversations", {"conversationId": conversation_id, "messages": [message]}
    )


async def fill(served: Served, memories: dict[str, str]) -> None:
    for i, filler in enumerate(FILLERS):
        await served.remember(f"filler{i}", filler)
    for conversation_id, text in memories.items():
        await served.remember(conversation_id, text)


def order(results: list[dict[str, Any]]) -> list[str]:
    return [r["conversationId"] for r in results]


DOGS = {
    "dup1": "We adopted a golden retriever puppy named Max last week.",
    "dup2": "We adopted a golden retriever puppy called Max last week.",
    "sofa": "Our golden retriever Max chewed up the sofa cushions.",
}


async def test_mmr_demotes_a_near_duplicate(serve: Serve) -> None:
    plain = await serve(rerankers=("mmr",))
    await fill(plain, DOGS)
    query = "golden retriever Max"
    before = order(await plain.search(query, limit=3))
    assert set(before[:2]) == {"dup1", "dup2"}  # the two near-duplicates lead
    assert order(await plain.search(query, limit=3, rerank=False)) == before
    after = order(await plain.search(query, limit=3, rerank=True))
    assert after[0] == before[0]  # the best stays first...
    assert after[1] == "sofa"  # ...and the other memory overtakes its near-duplicate
    assert set(after) == set(before)


async def test_mmr_with_lambda_one_keeps_the_fused_order(serve: Serve) -> None:
    served = await serve(rerankers=("mmr",), plugin_settings={"mmr": {"lambda_": 1.0}})
    await fill(served, DOGS)
    query = "golden retriever Max"
    assert order(await served.search(query, limit=3, rerank=True)) == order(
        await served.search(query, limit=3)
    )


async def test_recency_puts_the_newer_of_two_like_memories_first(serve: Serve) -> None:
    served = await serve(rerankers=("recency",))
    for i, filler in enumerate(FILLERS):
        await remember_at(served, f"filler{i}", filler, "2020-01-01T10:00:00Z")
    await remember_at(served, "old", "I moved to Lisbon.", "2021-03-01T10:00:00Z")
    await remember_at(served, "new", "I moved to Lisbon, yes.", "2024-03-01T10:00:00Z")
    query = "I moved to Lisbon"
    assert order(await served.search(query, limit=2)) == ["old", "new"]
    assert order(await served.search(query, limit=2, rerank=True)) == ["new", "old"]


# --- http-rerank -----------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[[str, Handler], Awaitable[str]]]:
    """``await fake_server(path, handler)``: a server on 127.0.0.1; its base URL."""
    runners: list[web.AppRunner] = []

    async def start(path: str, handler: Handler) -> str:
        app = web.Application()
        app.router.add_post(path, handler)
        runner = web.AppRunner(app)
        runners.append(runner)
        return await serve_on_loopback(runner)

    yield start
    for runner in runners:
        await runner.cleanup()


FACTS = {
    "roof": "Bees live on the roof of the old barn.",
    "honey": "Bees make honey in summer when flowers bloom.",
    "sting": "Bees sting when they are scared or hurt.",
}


def rerank_settings(url: str, **more: Any) -> dict[str, Any]:
    return {
        "rerankers": ("http-rerank",),
        "plugin_settings": {"http-rerank": {"url": url, "model": "fake-reranker", **more}},
    }


async def test_http_rerank_orders_by_the_servers_scores(
    serve: Serve, fake_server: Callable[[str, Handler], Awaitable[str]]
) -> None:
    seen: list[dict[str, Any]] = []

    async def rerank(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append({**body, "auth": request.headers.get("Authorization")})

        # The server prefers stinging, then the roof: the reverse of nothing in particular.
        def score(text: str) -> float:
            return 0.9 if "sting" in text else 0.5 if "roof" in text else 0.1

        results = [
            {"index": i, "relevance_score": score(t)} for i, t in enumerate(body["documents"])
        ]
        return web.json_response({"results": sorted(results, key=lambda r: -r["relevance_score"])})

    base = await fake_server("/v1/rerank", rerank)
    served = await serve(**rerank_settings(f"{base}/v1/rerank", api_key="sk-test"))
    for conversation_id, fact in FACTS.items():
        await served.remember(conversation_id, fact)
    results = await served.search("bees and honey", limit=3, rerank=True)
    assert order(results) == ["sting", "roof", "honey"]
    assert [r["score"] for r in results] == [0.9, 0.5, 0.1]
    assert seen[0]["model"] == "fake-reranker"
    assert seen[0]["query"] == "bees and honey"
    assert seen[0]["auth"] == "Bearer sk-test"
    assert any("Bees live on the roof" in d for d in seen[0]["documents"])
    assert order(await served.search("bees and honey", limit=3))[0] == "honey"  # not asked


async def test_http_rerank_reads_teis_texts_and_bare_list(
    serve: Serve, fake_server: Callable[[str, Handler], Awaitable[str]]
) -> None:
    async def rerank(request: web.Request) -> web.Response:
        body = await request.json()
        texts = body["texts"]
        return web.json_response(
            [{"index": i, "score": 1.0 if "roof" in t else 0.0} for i, t in enumerate(texts)]
        )

    base = await fake_server("/rerank", rerank)
    served = await serve(**rerank_settings(f"{base}/rerank", documents_field="texts"))
    for conversation_id, fact in FACTS.items():
        await served.remember(conversation_id, fact)
    assert order(await served.search("bees and honey", limit=1, rerank=True)) == ["roof"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def plugin_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "memoryd.plugins" and r.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("fault", ["down", "slow", "nonsense"])
async def test_http_rerank_failure_is_contained_and_logged_once(
    serve: Serve,
    fake_server: Callable[[str, Handler], Awaitable[str]],
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    async def rerank(request: web.Request) -> web.Response:
        if fault == "slow":
            await asyncio.sleep(5)
        return web.json_response({"results": "not a list"})

    url = f"http://127.0.0.1:{closed_port()}/v1/rerank"
    if fault != "down":
        url = f"{await fake_server('/v1/rerank', rerank)}/v1/rerank"
    served = await serve(**rerank_settings(url, timeout=0.3))
    for conversation_id, fact in FACTS.items():
        await served.remember(conversation_id, fact)
    fused = order(await served.search("bees and honey", limit=3))
    assert order(await served.search("bees and honey", limit=3, rerank=True)) == fused
    assert order(await served.search("honey bees", limit=3, rerank=True))  # fails again
    warnings = [r for r in plugin_warnings(caplog) if "http-rerank" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


async def test_http_rerank_named_without_url_fails_at_start(serve: Serve) -> None:
    from memoryd.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"\[plugins.http-rerank\] url"):
        await serve(rerankers=("http-rerank",))


# --- llm-rerank ------------------------------------------------------------------------------


async def test_llm_rerank_orders_by_the_models_scores(
    serve: Serve, fake_server: Callable[[str, Handler], Awaitable[str]]
) -> None:
    prompts: list[str] = []

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        prompts.append(prompt)
        passages = re.findall(r"^\[(\d+)\] (.*)$", prompt, flags=re.MULTILINE)
        scores = [9 if "roof" in text else 2 for _, text in passages]
        content = "Here you go: " + json.dumps({"scores": scores})
        return web.json_response(
            {"choices": [{"message": {"role": "assistant", "content": content}}]}
        )

    base = await fake_server("/v1/chat/completions", completions)
    served = await serve(
        rerankers=("llm-rerank",),
        plugin_settings={"llm-rerank": {"url": f"{base}/v1", "model": "fake-chat"}},
    )
    for conversation_id, fact in FACTS.items():
        await served.remember(conversation_id, fact)
    fused = order(await served.search("bees and honey", limit=3))
    assert fused[0] == "honey"
    reranked = order(await served.search("bees and honey", limit=3, rerank=True))
    assert reranked[0] == "roof"
    assert reranked[1:] == [c for c in fused if c != "roof"]  # ties keep the fused order
    assert "Query: bees and honey" in prompts[0]
