"""supermemory's nested ``AND``/``OR`` filters, sent by the official Python SDK (pinned in tox.ini).

``client.search.memories(q=..., filters={"AND": [...]})`` against a real app on
127.0.0.1 must select exactly the conversations the filter names, and a malformed
filter must be a 400 whose details give the path into it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import supermemory
from aiohttp.test_utils import TestClient

from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]

#: Each conversation's metadata; ``c4``'s year is a string, ``c5`` has none.
CONVERSATIONS: dict[str, dict[str, Any]] = {
    "c1": {"kind": "note", "year": 2021, "title": "Trip to Paris", "pinned": True},
    "c2": {"kind": "note", "year": 2024, "title": "paris notes"},
    "c3": {"kind": "task", "year": 2019, "title": "Buy milk"},
    "c4": {"kind": "task", "year": "2024", "title": "Call Bob"},
    "c5": {},
}


def cond(key: str, value: str, **more: Any) -> dict[str, Any]:
    return {"key": key, "value": value, **more}


def numeric(key: str, op: str, value: str) -> dict[str, Any]:
    return cond(key, value, filterType="numeric", numericOperator=op)


def contains(key: str, value: str, **more: Any) -> dict[str, Any]:
    return cond(key, value, filterType="string_contains", **more)


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("AND", {"AND": [cond("kind", "note"), numeric("year", ">", "2022")]}, {"c2"}),
    ("OR", {"OR": [cond("kind", "task"), cond("pinned", "true")]}, {"c1", "c3", "c4"}),
    (
        "nested",
        {
            "OR": [
                {"AND": [cond("kind", "note"), contains("title", "PARIS", ignoreCase=True)]},
                {"AND": [cond("kind", "task"), {"OR": [cond("year", "2024")]}]},
            ]
        },
        {"c1", "c2", "c4"},
    ),
    # A memory without the key passes a negated condition.
    ("negate", {"AND": [cond("kind", "task", negate=True)]}, {"c1", "c2", "c5"}),
    ("negate as text", {"AND": [cond("kind", "task", negate="true")]}, {"c1", "c2", "c5"}),
    # Numeric comparisons take numbers only: c4's "2024" is text.
    ("numeric >=", {"AND": [numeric("year", ">=", "2021")]}, {"c1", "c2"}),
    ("numeric =", {"AND": [numeric("year", "=", "2024.0")]}, {"c2"}),
    (
        "numeric negated",
        {"AND": [numeric("year", "<", "2022") | {"negate": True}]},
        {"c2", "c4", "c5"},
    ),
    # The default (metadata) equality: "2024" equals the number 2024 and the text "2024".
    ("metadata text or number", {"AND": [cond("year", "2024")]}, {"c2", "c4"}),
    ("string_contains", {"AND": [contains("title", "aris")]}, {"c1", "c2"}),
    ("string_contains is case-sensitive", {"AND": [contains("title", "Paris")]}, {"c1"}),
    (
        "string_contains ignoreCase",
        {"AND": [contains("title", "pARIS", ignoreCase="true")]},
        {"c1", "c2"},
    ),
    (
        "array_contains on a scalar is equality",
        {"AND": [cond("kind", "note", filterType="array_contains")]},
        {"c1", "c2"},
    ),
    ("empty AND", {"AND": []}, {"c1", "c2", "c3", "c4", "c5"}),
    ("empty OR", {"OR": []}, set()),
]


@pytest.fixture
async def sdk(client: Client, make_key: MakeKey) -> AsyncIterator[supermemory.AsyncSupermemory]:
    """The SDK pointed at the app, after the conversations were added."""
    key = await make_key("acme")
    for cid, metadata in CONVERSATIONS.items():
        body = {
            "conversationId": cid,
            "messages": [{"role": "user", "content": f"Weekend plans, part {cid[1]}."}],
            "metadata": metadata,
        }
        response = await client.post("/v4/conversations", json=body, headers=auth(key))
        assert response.status == 200, await response.text()
    http = supermemory.DefaultAsyncHttpxClient(trust_env=False)  # loopback, never a proxy
    async with supermemory.AsyncSupermemory(
        api_key=key, base_url=str(client.make_url("")), max_retries=0, http_client=http
    ) as sdk:
        yield sdk


async def found(sdk: supermemory.AsyncSupermemory, filters: Any) -> set[str]:
    answer = await sdk.search.memories(q="weekend plans", limit=50, filters=filters)
    return {r.model_dump()["conversationId"] for r in answer.results}


async def test_sdk_filters_select_exactly_the_right_conversations(
    sdk: supermemory.AsyncSupermemory,
) -> None:
    assert await found(sdk, {"AND": []}) == set(CONVERSATIONS)  # every one is found at all
    wrong = {}
    for name, filters, want in CASES:
        got = await found(sdk, filters)
        if got != want:
            wrong[name] = (sorted(got), sorted(want))
    assert not wrong


BAD: list[tuple[dict[str, Any], str, str]] = [
    (
        {"AND": [cond("kind", "note"), numeric("year", ">", "soon")]},
        "filters.AND[1].value",
        "number",
    ),
    ({"OR": [{"AND": [{"key": "kind"}]}]}, "filters.OR[0].AND[0].value", "required"),
    (
        {"AND": [cond("kind", "note", numericOperator=">")]},
        "filters.AND[0].numericOperator",
        "numeric",
    ),
    ({"AND": [cond("kind", "note", filterType="regex")]}, "filters.AND[0].filterType", "one of"),
    ({"AND": [cond("kind", "note", negated=True)]}, "filters.AND[0]", "unknown keys: negated"),
    ({"AND": [cond("kind", "note")], "OR": []}, "filters", "one key"),
    ({"AND": [cond("k", "v")] * 101}, "filters.AND", "at most 100"),
]


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = cond("kind", "note")
    for _ in range(levels):
        node = {"AND": [node]}
    return node


async def test_a_malformed_filter_is_a_400_naming_its_path(
    sdk: supermemory.AsyncSupermemory,
) -> None:
    cases = [*BAD, (deep(9), "filters" + ".AND[0]" * 8 + ".AND", "at most 8 levels")]
    for filters, path, message in cases:
        with pytest.raises(supermemory.BadRequestError) as raised:
            await sdk.search.memories(q="weekend plans", filters=filters)  # type: ignore[arg-type]
        body = raised.value.body
        assert isinstance(body, dict)
        assert body["error"] == "Invalid request"
        assert [d["path"] for d in body["details"]] == [path], body
        assert message in body["details"][0]["message"], body
    # Eight levels are allowed.
    assert await found(sdk, deep(8)) == {"c1", "c2"}
