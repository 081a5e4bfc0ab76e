"""GET /openapi.json describes exactly the routes the app serves."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]
METHODS = {"get", "post", "put", "patch", "delete"}


def served(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method.lower() not in METHODS:
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        found.add((route.method.lower(), str(path)))
    return found


async def test_openapi_matches_the_real_routes(client: Client, app: web.Application) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in METHODS}
    assert documented == served(app)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            assert op.get("responses"), (method, path)


async def test_every_schema_reference_resolves(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).json()
    text = str(doc)
    import re

    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in doc["components"]["schemas"], name


# --- the schema agrees with the validation ------------------------------------------------------

USER = {"role": "user", "content": "hello"}
USER_PART = {"type": "text", "text": "hi"}
CONV = {"conversationId": "c", "messages": [USER]}
CHAT = {"messages": [USER]}

#: (route, body, whether the server accepts it): /openapi.json must say the same of each.
AGREEMENT = [
    # The five places the published schema and the validation disagreed:
    ("/api/chat", CHAT | {"containerTags": [""]}, False),
    ("/v4/conversations", CONV | {"messages": [USER | {"tool_call_id": ""}]}, True),
    ("/v4/conversations", CONV | {"messages": [USER | {"tool_call_id": None}]}, True),
    ("/v4/search", {"q": "x", "before": None}, True),
    ("/v4/search", {"q": "x", "filters": {"tag": ["a", "b"]}}, False),
    # ... and what schemathesis and a closer reading found beside them:
    ("/v4/search", {"q": "x", "filters": {"tag": {"in": ["a", "b"]}}}, True),
    ("/v4/search", {"q": "x", "filters": {"": None}}, False),
    ("/v4/search", {"q": "x", "filters": {"n": {"gt": "3"}}}, False),
    ("/v4/search", {"q": "x", "filters": {"n": {}}}, False),
    ("/v4/search", {"q": "x", "filters": {"n": {"like": 1}}}, False),
    # supermemory's nested form beside it:
    ("/v4/search", {"q": "x", "filters": {"AND": [{"key": "k", "value": "v"}, {"OR": []}]}}, True),
    ("/v4/search", {"q": "x", "filters": {"AND": [], "k": 1}}, False),
    ("/v4/search", {"q": "x", "filters": {"AND": "v"}}, True),  # a key named AND
    (
        "/v4/search",
        {"q": "x", "filters": {"OR": [{"key": "n", "value": "x", "filterType": "numeric"}]}},
        False,
    ),
    (
        "/v4/search",
        {"q": "x", "filters": {"OR": [{"key": "n", "value": "-2.5e3", "filterType": "numeric"}]}},
        True,
    ),
    (
        "/v4/search",
        {"q": "x", "filters": {"OR": [{"key": "n", "value": "1", "numericOperator": ">"}]}},
        False,
    ),
    (
        "/v4/search",
        {"q": "x", "filters": {"OR": [{"key": "n", "value": "a", "ignoreCase": True}]}},
        False,
    ),
    (
        "/v4/search",
        {"q": "x", "filters": {"OR": [{"key": "n", "value": 1, "filterType": "string_contains"}]}},
        False,
    ),
    (
        "/v4/search",
        {"q": "x", "filters": {"OR": [{"key": "n", "value": "a", "negate": "yes"}]}},
        False,
    ),
    ("/v4/search", {"q": "x", "filters": {"OR": [{"key": "n", "value": "a", "extra": 1}]}}, False),
    ("/v4/search", {"q": "x", "after": None, "limit": 10.0}, True),
    ("/v4/search", {"q": " \t "}, False),
    ("/v4/search", {"q": "\u00a0"}, True),
    ("/v4/search", {"q": "x", "containerTags": ["  "]}, False),
    ("/v4/search", {"q": "x", "containerTag": "a", "containerTags": ["a"]}, False),
    ("/v4/search", {"q": "x", "containerTag": "a"}, True),
    ("/v4/search", {"q": "x", "containerTag": None}, False),
    ("/v4/conversations", CONV | {"messages": [USER | {"name": None, "timestamp": None}]}, True),
    ("/v4/conversations", CONV | {"messages": [USER | {"tool_call_id": "x" * 256}]}, False),
    ("/v4/conversations", CONV | {"metadata": {"": 1}}, False),
    ("/v4/conversations", CONV | {"metadata": {"k": "v" * 4097}}, False),
    ("/v4/conversations", CONV | {"containerTag": "user-42"}, True),
    (
        "/v4/conversations",
        CONV | {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        False,
    ),
    (
        "/v4/conversations",
        CONV
        | {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "imageUrl": None}]},
            ]
        },
        False,
    ),
    (
        "/v4/conversations",
        CONV
        | {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "imageUrl": None, "image_url": {"url": "data:x"}}
                    ],
                }
            ]
        },
        True,
    ),
    (
        "/v4/conversations",
        CONV
        | {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "imageUrl": {"url": "a b"}}]}
            ]
        },
        False,
    ),
    ("/api/chat", CHAT | {"containerTag": "a", "threadId": None, "trigger": None}, True),
    ("/api/chat", {"messages": [{"role": "user", "content": None}]}, False),
    ("/api/chat", {"messages": [{"role": "user", "content": None, "parts": [USER_PART]}]}, True),
    ("/api/chat", {"messages": [{"role": "user", "parts": [{"type": "text"}]}]}, False),
    (
        "/api/chat",
        {"messages": [{"role": "user", "parts": [{"type": 5, "x": 1}, USER_PART]}]},
        True,
    ),
    ("/api/chat", {"messages": [{"role": "user", "parts": [{"type": "file", "url": ""}]}]}, False),
]

_BODY_SCHEMAS = {
    "/v4/conversations": "ConversationIn",
    "/v4/search": "SearchIn",
    "/api/chat": "ChatIn",
}


@pytest.mark.parametrize(("path", "payload", "accepted"), AGREEMENT)
async def test_the_schema_says_what_the_validation_does(
    client: Client, make_key: MakeKey, path: str, payload: dict[str, Any], accepted: bool
) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    doc = await (await client.get("/openapi.json")).json()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/components/schemas/{_BODY_SCHEMAS[path]}",
        "components": doc["components"],
    }
    assert jsonschema_rs.validator_for(schema).is_valid(payload) is accepted
    key = await make_key()
    response = await client.post(path, json=payload, headers=auth(key))
    body = await response.read()
    assert response.status == (200 if accepted else 400), body[:300]
