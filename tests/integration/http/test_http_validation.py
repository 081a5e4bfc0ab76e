"""The spec's validation rules: each bad request is a 400 naming the field's path."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey, auth

OK_MESSAGE = {"role": "user", "content": "hello"}


def body(**overrides: Any) -> dict[str, Any]:
    return {"conversationId": "c1", "messages": [OK_MESSAGE], **overrides}


def msg(**fields: Any) -> dict[str, Any]:
    return {"conversationId": "c1", "messages": [{**OK_MESSAGE, **fields}]}


def parts(*items: Any) -> dict[str, Any]:
    return msg(content=list(items))


CONVERSATION_CASES = [
    # (id, body, path that must be named)
    ("conversationId missing", {"messages": [OK_MESSAGE]}, "conversationId"),
    ("conversationId not a string", body(conversationId=12), "conversationId"),
    ("conversationId empty", body(conversationId=""), "conversationId"),
    ("conversationId over 255", body(conversationId="x" * 256), "conversationId"),
    ("messages missing", {"conversationId": "c1"}, "messages"),
    ("messages not an array", body(messages={"role": "user"}), "messages"),
    ("messages empty", body(messages=[]), "messages"),
    ("message not an object", body(messages=["hi"]), "messages[0]"),
    ("role missing", body(messages=[{"content": "x"}]), "messages[0].role"),
    ("role not in enum", msg(role="bot"), "messages[0].role"),
    ("content missing", body(messages=[{"role": "user"}]), "messages[0].content"),
    ("content wrong type", msg(content=42), "messages[0].content"),
    ("part type missing", parts({"text": "x"}), "messages[0].content[0].type"),
    ("part type unknown", parts({"type": "video", "url": "x"}), "messages[0].content[0]"),
    ("text part without text", parts({"type": "text"}), "messages[0].content[0].text"),
    ("text not a string", parts({"type": "text", "text": 1}), "messages[0].content[0].text"),
    ("image part without url", parts({"type": "image_url"}), "messages[0].content[0].imageUrl"),
    (
        "image url missing",
        parts({"type": "image_url", "imageUrl": {}}),
        "messages[0].content[0].imageUrl.url",
    ),
    (
        "image url not a uri",
        parts({"type": "text", "text": "ok"}, {"type": "image_url", "imageUrl": {"url": "no uri"}}),
        "messages[0].content[1].imageUrl.url",
    ),
    (
        "image_url spelling, bad url",
        parts({"type": "image_url", "image_url": {"url": 5}}),
        "messages[0].content[0].image_url.url",
    ),
    ("name not a string", msg(name=["x"]), "messages[0].name"),
    ("tool_calls not an array", msg(tool_calls={"id": 1}), "messages[0].tool_calls"),
    ("tool_call_id not a string", msg(tool_call_id=7), "messages[0].tool_call_id"),
    ("timestamp not ISO 8601", msg(timestamp="last tuesday"), "messages[0].timestamp"),
    ("containerTags not an array", body(containerTags="work"), "containerTags"),
    ("containerTags item not a string", body(containerTags=["a", 1]), "containerTags"),
    ("metadata not an object", body(metadata=["a"]), "metadata"),
    ("metadata value not a scalar", body(metadata={"a": {"b": 1}}), "metadata"),
    ("metadata value null", body(metadata={"a": None}), "metadata"),
    (
        "second message bad role",
        body(messages=[OK_MESSAGE, {"role": "narrator", "content": "x"}]),
        "messages[1].role",
    ),
]


@pytest.mark.parametrize(
    ("case", "payload", "path"), CONVERSATION_CASES, ids=[c[0] for c in CONVERSATION_CASES]
)
async def test_conversation_validation_names_the_path(
    client: TestClient[Any, Any], make_key: MakeKey, case: str, payload: Any, path: str
) -> None:
    key = await make_key()
    response = await client.post("/v4/conversations", json=payload, headers=auth(key))
    assert response.status == 400, case
    answer = await response.json()
    assert answer["error"] == "Invalid request"
    assert path in [d["path"] for d in answer["details"]], answer
    assert all(d["message"] for d in answer["details"])


async def test_all_bad_fields_are_listed_at_once(
    client: TestClient[Any, Any], make_key: MakeKey
) -> None:
    key = await make_key()
    payload = {"conversationId": 1, "messages": [{"role": "x", "content": 1}], "metadata": 2}
    response = await client.post("/v4/conversations", json=payload, headers=auth(key))
    paths = {d["path"] for d in (await response.json())["details"]}
    assert paths == {"conversationId", "messages[0].role", "messages[0].content", "metadata"}


async def test_both_image_spellings_and_unknown_keys_are_accepted(
    client: TestClient[Any, Any], make_key: MakeKey
) -> None:
    key = await make_key()
    payload = {
        "conversationId": "img",
        "entityContext": {"ignored": True},
        "somethingNew": 1,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look at these"},
                    {"type": "image_url", "imageUrl": {"url": "https://example.com/a.png"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
                ],
            }
        ],
    }
    response = await client.post("/v4/conversations", json=payload, headers=auth(key))
    assert response.status == 200, await response.text()
    stored = await (await client.get("/v4/conversations/img", headers=auth(key))).json()
    urls = [p["imageUrl"]["url"] for p in stored["messages"][0]["content"] if "imageUrl" in p]
    assert urls == ["https://example.com/a.png", "https://example.com/b.png"]


SEARCH_CASES = [
    ("q missing", {}, "q"),
    ("q not a string", {"q": 3}, "q"),
    ("q blank", {"q": "   "}, "q"),
    ("q too long", {"q": "x" * 10_001}, "q"),
    ("limit zero", {"q": "x", "limit": 0}, "limit"),
    ("limit too big", {"q": "x", "limit": 1000}, "limit"),
    ("limit not an integer", {"q": "x", "limit": "5"}, "limit"),
    ("threshold above 1", {"q": "x", "threshold": 1.5}, "threshold"),
    ("containerTags not an array", {"q": "x", "containerTags": "a"}, "containerTags"),
    ("filters not an object", {"q": "x", "filters": [1]}, "filters"),
    ("filters unknown operator", {"q": "x", "filters": {"a": {"like": "b"}}}, "filters"),
    ("filters gt needs a number", {"q": "x", "filters": {"a": {"gt": "b"}}}, "filters"),
    ("after not a date", {"q": "x", "after": "soon"}, "after"),
]


@pytest.mark.parametrize(
    ("case", "payload", "path"), SEARCH_CASES, ids=[c[0] for c in SEARCH_CASES]
)
async def test_search_validation_names_the_path(
    client: TestClient[Any, Any], make_key: MakeKey, case: str, payload: Any, path: str
) -> None:
    key = await make_key()
    response = await client.post("/v4/search", json=payload, headers=auth(key))
    assert response.status == 400, case
    assert path in [d["path"] for d in (await response.json())["details"]]
