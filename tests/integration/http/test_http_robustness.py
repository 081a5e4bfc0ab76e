"""Bad input never gives a 500: malformed JSON, wrong types, huge bodies, unknown routes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from memoryd.core.auth import digest, new_key
from tests.helpers import MakeKey, auth, make_settings

Client = TestClient[Any, Any]

ROUTES = [("POST", "/v4/conversations"), ("POST", "/v4/search"), ("POST", "/api/chat")]
JUNK = [
    b"",
    b"{",
    b"not json",
    b"[]",
    b"null",
    b"42",
    b'"string"',
    b"\xff\xfe\x00garbage",
    b'{"conversationId": "x", "messages": [}',
    b"{" * 5000,
    b"[" * 5000 + b"]" * 5000,
    json.dumps(
        {"conversationId": "x", "messages": [{"role": "user", "content": "\ud800"}]}
    ).encode(),
    b'{"q": NaN}',
    b'{"q": "x", "limit": 1e400}',
    b'{"q": "x", "threshold": Infinity}',
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_malformed_bodies_are_400(
    client: Client, make_key: MakeKey, method: str, path: str
) -> None:
    key = await make_key()
    for raw in JUNK:
        response = await client.request(method, path, data=raw, headers=auth(key))
        assert response.status == 400, (raw[:40], await response.text())
        answer = await response.json()
        assert answer["error"] in {"Invalid request", "Invalid JSON"}


def random_value(rng: random.Random, depth: int = 0) -> Any:  # noqa: PLR0911
    kinds = ["str", "int", "float", "bool", "null", "list", "dict", "huge"]
    kind = rng.choice(kinds if depth < 3 else kinds[:5])
    if kind == "str":
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 20)))
    if kind == "int":
        return rng.choice([0, -1, 1, 2**63, -(2**70), rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e-300, 3.14])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == "huge":
        return "x" * rng.choice([300, 20_000])
    keys = [
        "conversationId",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "imageUrl",
        "url",
        "q",
        "limit",
        "filters",
        "containerTags",
        "metadata",
        "timestamp",
        "gt",
    ]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_random_shapes_never_500(
    client: Client, make_key: MakeKey, method: str, path: str
) -> None:
    key = await make_key()
    rng = random.Random(1234)
    for _ in range(150):
        payload = random_value(rng)
        if isinstance(payload, dict) and rng.random() < 0.5:
            payload.setdefault("conversationId", "fuzz")
            payload.setdefault("q", "fuzz")
            payload.setdefault("messages", [{"role": "user", "content": random_value(rng)}])
        response = await client.request(method, path, json=payload, headers=auth(key))
        body = await response.read()  # a chat answer streams; read it whole
        assert response.status in {200, 400, 403, 404}, (payload, body[:300])
        if response.status != 200:
            assert "error" in json.loads(body)


async def test_huge_strings_are_refused_with_the_limit(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    body = {"conversationId": "big", "messages": [{"role": "user", "content": "y" * 200_001}]}
    response = await client.post("/v4/conversations", json=body, headers=auth(key))
    assert response.status == 400
    (detail,) = (await response.json())["details"]
    assert detail["path"] == "messages[0].content"
    assert "200000" in detail["message"]


async def test_body_over_the_limit_is_413(aiohttp_client: Any, tmp_path: Any) -> None:
    from memoryd import bootstrap

    settings = make_settings(tmp_path, max_body_bytes=4096)
    key = new_key()
    async with bootstrap.key_store(settings) as keys:
        await keys.create_key(tenant="t", digest=digest(key))
    client = await aiohttp_client(await bootstrap.create_app(settings))
    body = {"conversationId": "big", "messages": [{"role": "user", "content": "z" * 5000}]}
    response = await client.post("/v4/conversations", json=body, headers=auth(key))
    assert response.status == 413
    answer = await response.json()
    assert answer["details"] == {"limitBytes": 4096}
    assert "max_body_bytes" in answer["error"]


async def test_unknown_routes_and_methods(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    for method, path, status in [
        ("GET", "/nope", 404),
        ("POST", "/v4/nope", 404),
        ("GET", "/v4/search", 405),
        ("PUT", "/v4/conversations", 405),
        ("GET", "/v4/conversations/" + "x" * 300, 404),
        ("GET", "/%ff%fe", 404),
    ]:
        response = await client.request(method, path, headers=auth(key))
        assert response.status == status, (method, path)
        assert "error" in await response.json()
