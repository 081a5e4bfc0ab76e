"""Lone surrogates, raw or escaped, and out-of-range query integers are 400s naming the field.

``json.loads`` decodes bytes with ``surrogatepass``, so ``\\xed\\xa0\\x80`` in a string
used to reach SQLite and come back as a 500; so did ``offset=99999999999999999999``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from memoryd.adapters.http.routes_chat import MAX_OFFSET
from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]

RAW = b"\xed\xa0\x80"  # U+D800 as (invalid) UTF-8, which surrogatepass lets through
ESCAPED = b"\\udc00"  # a lone low surrogate, escaped
MARK = b"@@"  # where the bad string goes in each body below

BODIES = [
    # (route, body with MARK inside one string, the path that must be named)
    (
        "/v4/conversations",
        b'{"conversationId": "c", "messages": [{"role": "user", "content": "hi @@"}]}',
        "messages[0].content",
    ),
    (
        "/v4/conversations",
        b'{"conversationId": "c@@", "messages": [{"role": "user", "content": "hi"}]}',
        "conversationId",
    ),
    (
        "/v4/conversations",
        b'{"conversationId": "c", "messages": [{"role": "user", "content": "ok"},'
        b' {"role": "user", "content": [{"type": "text", "text": "@@"}]}]}',
        "messages[1].content[0].text",
    ),
    (
        "/v4/conversations",
        b'{"conversationId": "c", "messages": [{"role": "user", "content": "hi"}],'
        b' "metadata": {"source": "x@@"}}',
        "metadata.source",
    ),
    (
        "/v4/conversations",
        b'{"conversationId": "c", "messages": [{"role": "user", "content": "hi"}],'
        b' "containerTags": ["a", "@@"]}',
        "containerTags[1]",
    ),
    ("/v4/search", b'{"q": "where @@"}', "q"),
    ("/v4/search", b'{"q": "x", "filters": {"kind": {"in": ["a", "@@"]}}}', "filters.kind.in[1]"),
    (
        "/api/chat",
        b'{"messages": [{"role": "user", "content": "hello @@"}]}',
        "messages[0].content",
    ),
    (
        "/api/chat",
        b'{"messages": [{"role": "user", "parts": [{"type": "text", "text": "@@"}]}]}',
        "messages[0].parts[0].text",
    ),
    ("/api/chat", b'{"messages": [], "threadId": "@@"}', "threadId"),
]


@pytest.mark.parametrize("bad", [RAW, ESCAPED], ids=["raw bytes", "escaped"])
@pytest.mark.parametrize(("path", "template", "field"), BODIES, ids=[b[2] for b in BODIES])
async def test_a_lone_surrogate_is_400_naming_the_field(
    client: Client, make_key: MakeKey, path: str, template: bytes, field: str, bad: bytes
) -> None:
    key = await make_key()
    response = await client.post(path, data=template.replace(MARK, bad), headers=auth(key))
    assert response.status == 400, await response.text()
    answer = await response.json()
    assert answer["error"] == "Invalid request"
    assert [d["path"] for d in answer["details"]] == [field]
    assert "surrogate" in answer["details"][0]["message"]


async def test_a_surrogate_in_a_key_names_its_object(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    body = b'{"conversationId": "c", "messages": [{"role": "user", "content": "hi"}],'
    body += b' "metadata": {"k\xed\xb0\x80": 1}}'
    response = await client.post("/v4/conversations", data=body, headers=auth(key))
    assert response.status == 400
    assert [d["path"] for d in (await response.json())["details"]] == ["metadata"]


async def test_surrogate_pairs_and_other_text_are_fine(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    # An escaped pair is one character (U+1F600); Hangul's UTF-8 also starts with 0xED.
    text = "\U0001f600 한국어 \ud7ff"
    raw = b'{"conversationId": "ok", "messages": [{"role": "user", "content": "\\ud83d\\ude00 '
    raw += "한국어 \ud7ff".encode() + b'"}]}'
    response = await client.post("/v4/conversations", data=raw, headers=auth(key))
    assert response.status == 200, await response.text()
    stored = await (await client.get("/v4/conversations/ok", headers=auth(key))).json()
    assert stored["messages"][0]["content"] == text


async def test_a_utf16_body_with_a_lone_surrogate_is_400(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    raw = json.dumps({"q": "x\ud800"}, ensure_ascii=False).encode("utf-16-le", "surrogatepass")
    response = await client.post("/v4/search", data=raw, headers=auth(key))
    assert response.status == 400
    assert [d["path"] for d in (await response.json())["details"]] == ["q"]


@pytest.mark.parametrize(
    "offset",
    ["99999999999999999999", str(2**63), str(MAX_OFFSET + 1), "-1", "5_0", " 5", "٥", "1e3", ""],
)
async def test_a_bad_offset_is_400_naming_it(
    client: Client, make_key: MakeKey, offset: str
) -> None:
    key = await make_key()
    response = await client.get("/api/threads", params={"offset": offset}, headers=auth(key))
    assert response.status == 400, await response.text()
    (detail,) = (await response.json())["details"]
    assert detail["path"] == "offset"
    assert str(MAX_OFFSET) in detail["message"]


async def test_the_largest_offset_is_served(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    response = await client.get(
        "/api/threads", params={"offset": str(MAX_OFFSET)}, headers=auth(key)
    )
    assert response.status == 200
    assert await response.json() == {"threads": [], "limit": 20, "offset": MAX_OFFSET}


async def test_a_nul_in_a_searched_tag_is_matched_exactly(
    client: Client, make_key: MakeKey
) -> None:
    """FTS5 ended a string at a NUL and failed ("unterminated string"): a 500 (schemathesis)."""
    key = await make_key()
    body = {"conversationId": "c", "messages": [{"role": "user", "content": "I keep bees."}]}
    stored = await client.post(
        "/v4/conversations", json=body | {"containerTags": ["a b"]}, headers=auth(key)
    )
    assert stored.status == 200
    for tags, expected in [(["a\u0000b"], []), (["a b"], ["c"])]:
        response = await client.post(
            "/v4/search", json={"q": "bees", "containerTags": tags}, headers=auth(key)
        )
        assert response.status == 200, await response.text()
        assert [r["conversationId"] for r in (await response.json())["results"]] == expected
