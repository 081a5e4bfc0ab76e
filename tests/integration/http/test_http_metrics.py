"""GET /metrics (Prometheus text, parsed with prometheus-client's parser) and request ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from memoryd import bootstrap
from memoryd.adapters.http._request_id import name_the_request, request_id_middleware
from memoryd.adapters.logs import JsonFormatter, RequestIdFilter
from tests.helpers import MakeKey, auth, make_settings

Client = TestClient[Any, Any]
MakeClient = Callable[[web.Application], Awaitable[Client]]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: Client, **headers: str) -> Samples:
    """Every sample of ``/metrics``: (name, sorted labels) -> value."""
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def conversation(cid: str, text: str) -> dict[str, Any]:
    return {"conversationId": cid, "messages": [{"role": "user", "content": text}]}


async def test_the_counters_move(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    before = await scrape(client)
    route = "/v4/conversations"
    posts = {"route": route, "method": "POST"}
    assert value(before, "memoryd_http_requests_total", **posts, status="200") == 0

    for i in range(2):
        answer = await client.post(
            route, json=conversation(f"c{i}", f"I adopted a dog named Rex {i}"), headers=auth(key)
        )
        assert answer.status == 200
    assert (await client.post("/v4/search", json={"q": "dog"}, headers=auth(key))).status == 200
    chat = await client.post(
        "/api/chat", json={"messages": [{"role": "user", "content": "my dog?"}]}, headers=auth(key)
    )
    assert chat.status == 200
    await chat.read()
    assert (await client.get("/v4/nowhere/at/all", headers=auth(key))).status == 404
    poor = await make_key(quota=1)
    refused = await client.post(
        route, json=conversation("q", "far too many words"), headers=auth(poor)
    )
    assert refused.status == 402

    after = await scrape(client)
    assert value(after, "memoryd_http_requests_total", **posts, status="200") == 2
    assert value(after, "memoryd_http_requests_total", **posts, status="402") == 1
    # Unknown paths count under one label: a client cannot make a series per path.
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "memoryd_http_requests_total", **unmatched) == 1
    assert not any("/v4/nowhere" in str(labels) for _, labels in after)
    assert value(after, "memoryd_http_request_duration_seconds_count", **posts) == 3
    assert value(after, "memoryd_quota_refusals_total") == 1
    assert value(after, "memoryd_embedding_batch_duration_seconds_count", kind="documents") >= 1
    assert value(after, "memoryd_embedding_batch_duration_seconds_count", kind="query") >= 1
    assert ("memoryd_embedding_queue_texts", ()) in after
    assert value(after, "memoryd_index_memories", backend="sqlite") == 2
    assert value(after, "memoryd_llm_time_to_first_token_seconds_count", model="extractive") == 1


async def test_every_answer_names_its_request(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    first = await client.get("/health")
    second = await client.get("/health")
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    # A proxy's plain id is kept; anything else is replaced, never echoed.
    kept = await client.get("/health", headers={"X-Request-Id": "edge-42.a_b"})
    assert kept.headers["X-Request-Id"] == "edge-42.a_b"
    odd = await client.get("/health", headers={"X-Request-Id": "<script>" + "x" * 200})
    assert odd.headers["X-Request-Id"] not in ("", "<script>" + "x" * 200)
    # Errors and streams carry it too.
    assert "X-Request-Id" in (await client.post("/v4/search", json={})).headers
    chat = await client.post(
        "/api/chat", json={"messages": [{"role": "user", "content": "hi"}]}, headers=auth(key)
    )
    assert "X-Request-Id" in chat.headers
    await chat.read()


async def test_json_logs_carry_the_request_id(aiohttp_client: MakeClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("memoryd.test.requests")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def logs(request: web.Request) -> web.Response:
        logger.info("inside the request")
        return web.Response(text="ok")

    app = web.Application(middlewares=[request_id_middleware])
    app.on_response_prepare.append(name_the_request)
    app.router.add_get("/log", logs)
    client = await aiohttp_client(app)
    try:
        answer = await client.get("/log", headers={"X-Request-Id": "req-1"})
        assert (answer.status, answer.headers["X-Request-Id"]) == (200, "req-1")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "req-1"
    assert inside["message"] == "inside the request"
    assert (inside["level"], inside["logger"]) == ("info", "memoryd.test.requests")
    assert outside["request_id"] is None


@pytest.mark.parametrize(
    ("setting", "host", "open_status"),
    [("off", "127.0.0.1", 404), ("key", "127.0.0.1", 401), ("auto", "0.0.0.0", 401)],
)
async def test_who_may_read_the_metrics(
    aiohttp_client: MakeClient, tmp_path: Path, setting: str, host: str, open_status: int
) -> None:
    settings = make_settings(tmp_path / "data", metrics=setting, host=host)
    client = await aiohttp_client(await bootstrap.create_app(settings))
    assert (await client.get("/metrics")).status == open_status
    if setting == "off":
        return
    full, limited = await new_key(settings), await new_key(settings, tags=("a",))
    assert (await client.get("/metrics", headers=auth(limited))).status == 403
    assert (await client.get("/metrics", headers=auth(full))).status == 200


async def new_key(settings: Any, tags: tuple[str, ...] = ()) -> str:
    from memoryd.core.auth import digest
    from memoryd.core.auth import new_key as fresh

    plaintext = fresh()
    async with bootstrap.key_store(settings) as keys:
        await keys.create_key(tenant="acme", digest=digest(plaintext), tags=tags)
    return plaintext
