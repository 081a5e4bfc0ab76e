"""``client.profile`` with the ``profile_llm`` setting: the chat model condenses the sections.

With the extractive model (which quotes, never cites) the rule's profile stands
and the answer says so; with the embedded llama.cpp (SmolLM2) every fact it
keeps cites memories of the tag (slow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from memoryd import bootstrap
from memoryd.core.auth import digest, new_key
from tests.helpers import auth, make_settings
from tests.integration.sdk.test_sdk_profile import TURNS


async def served(
    aiohttp_client: Any, tmp_path: Path, **settings: Any
) -> tuple[TestClient[Any, Any], str]:
    config = make_settings(tmp_path / "data", profile_llm=True, **settings)
    key = new_key()
    async with bootstrap.key_store(config) as keys:
        await keys.create_key(tenant="acme", digest=digest(key))
    app: web.Application = await bootstrap.create_app(config)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    messages = [{"role": "user", "content": t} for t in TURNS]
    body = {"conversationId": "life", "messages": messages, "containerTag": "user-1"}
    stored = await client.post("/v4/conversations", json=body, headers=auth(key))
    assert stored.status == 200, await stored.text()
    return client, key


async def profile(client: TestClient[Any, Any], key: str) -> dict[str, Any]:
    response = await client.post("/v4/profile", json={"containerTag": "user-1"}, headers=auth(key))
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def test_a_model_that_cites_nothing_leaves_the_rule_standing(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client, key = await served(aiohttp_client, tmp_path, llm="extractive")
    answer = await profile(client, key)
    assert answer["profile"]["static"] == TURNS[:2]
    assert answer["profile"]["dynamic"] == TURNS[:1:-1]
    assert answer["condensed"]["static"]["condensed"] is False
    assert len(answer["condensed"]["dynamic"]["memoryIds"]) == len(TURNS) - 2


@pytest.mark.slow
async def test_llamacpp_condenses_citing_memories_of_the_tag(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client, key = await served(aiohttp_client, tmp_path, llm="llamacpp", llm_threads=1)
    answer = await profile(client, key)
    search = await client.post(
        "/v4/search",
        json={"q": "anything", "containerTag": "user-1", "limit": 50},
        headers=auth(key),
    )
    tagged = {r["id"] for r in (await search.json())["results"]}
    for section in ("static", "dynamic"):
        facts = answer["profile"][section]
        cited = answer["condensed"][section]["memoryIds"]
        assert len(facts) == len(cited) > 0
        assert all(ids and set(ids) <= tagged for ids in cited), (section, answer)
        if not answer["condensed"][section]["condensed"]:
            assert facts == (TURNS[:2] if section == "static" else TURNS[:1:-1])
