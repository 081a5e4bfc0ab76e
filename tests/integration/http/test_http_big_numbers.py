"""Numbers beyond ±2**53 are refused with the field named, never a 500 (hostile bytes)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from memoryd.core.filters import Condition
from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]
HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/v4/search", '{"q": "x", "filters": {"a": {"gt": @}}}'.replace("@", HUGE), "filters"),
        ("/v4/search", '{"q": "x", "filters": {"a": @}}'.replace("@", HUGE), "filters"),
        ("/v4/search", '{"q": "x", "filters": {"a": 1e300}}', "filters"),
        (
            "/v4/search",
            (
                '{"q": "x", "filters": {"AND": [{"key": "a", "value": @,'
                ' "filterType": "numeric"}]}}'
            ).replace("@", HUGE),
            "filters.AND[0].value",
        ),
        (
            "/v4/conversations",
            '{"conversationId": "c", "messages": [{"role": "user", "content": "x"}],'
            ' "metadata": {"b": @}}'.replace("@", HUGE),
            "metadata",
        ),
    ],
)
async def test_a_number_past_2_to_the_53_is_a_400_naming_the_field(
    client: Client, make_key: MakeKey, path: str, body: str, where: str
) -> None:
    key = await make_key()
    headers = {**auth(key), "Content-Type": "application/json"}
    answer = await client.post(path, data=body, headers=headers)
    assert answer.status == 400, await answer.text()
    (detail,) = (await answer.json())["details"]
    assert detail["path"] == where
    assert "9007199254740992" in detail["message"]


async def test_the_largest_exact_integer_is_taken(client: Client, make_key: MakeKey) -> None:
    key = await make_key()
    body = {
        "conversationId": "c",
        "messages": [{"role": "user", "content": "the exact one"}],
        "metadata": {"b": 2**53},
    }
    assert (await client.post("/v4/conversations", json=body, headers=auth(key))).status == 200
    found = await client.post(
        "/v4/search", json={"q": "exact", "filters": {"b": {"gte": 2**53}}}, headers=auth(key)
    )
    assert [r["metadata"]["b"] for r in (await found.json())["results"]] == [2**53]


def test_the_reference_meaning_never_overflows() -> None:
    # Rows written before the limit may hold such numbers: they compare as infinities.
    huge = 10**400
    assert Condition("a", "gt", 1).matches({"a": huge})
    assert not Condition("a", "lt", 1).matches({"a": huge})
    assert not Condition("a", "eq", 1).matches({"a": huge})
    assert Condition("a", "eq", huge).matches({"a": huge})
