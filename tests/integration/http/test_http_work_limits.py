"""Work per request is bounded (max_embed_tokens), and search keeps answering during an ingest."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from memoryd.adapters.tokens import tiktoken_counter
from memoryd.bootstrap import Container
from memoryd.core.ingest import CHARS_PER_TOKEN
from memoryd.core.memories import build_memories
from memoryd.core.model import Message, StoredMessage
from memoryd.settings import Settings
from tests.helpers import HealthProbe, MakeKey, auth, make_settings, memoryd_on_loopback

Client = TestClient[Any, Any]
WORDS = (
    "river",
    "garden",
    "violin",
    "harbour",
    "lantern",
    "meadow",
    "copper",
    "saddle",
    "orchard",
    "puzzle",
    "thunder",
    "biscuit",
    "canyon",
    "falcon",
    "marble",
    "pepper",
    "quilt",
    "rocket",
    "sapphire",
    "tunnel",
    "velvet",
    "walnut",
    "yogurt",
    "zebra",
    "anchor",
    "blossom",
    "cactus",
    "dolphin",
    "ember",
    "fossil",
    "glacier",
    "hammock",
    "igloo",
)


def messages(count: int, *, words: int = 40, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": " ".join(rng.choice(WORDS) for _ in range(words)) + f" number {i}.",
        }
        for i in range(count)
    ]


def embed_tokens(settings: Settings, body: list[dict[str, str]]) -> int:
    """The tokens these messages spend of max_embed_tokens (memoryd's own policy and rule)."""
    counter = tiktoken_counter(settings.token_encoding)
    counter.load()
    policy = Container(settings=settings).policy()
    now = datetime.now(UTC)
    stored = [
        StoredMessage(Message.from_text(m["role"], m["content"]), position=i, received_at=now)
        for i, m in enumerate(body)
    ]
    drafts = build_memories(stored, start=0, policy=policy)
    return sum(
        max(counter.count(t), len(t) // CHARS_PER_TOKEN) for d in drafts for t in d.embed_texts
    )


async def test_a_request_over_max_embed_tokens_is_413_naming_it_and_stores_nothing(
    aiohttp_client: Any, make_key: MakeKey, tmp_path: Path
) -> None:
    from memoryd import bootstrap

    settings = make_settings(tmp_path / "data", max_embed_tokens=300)
    client: Client = await aiohttp_client(await bootstrap.create_app(settings))
    key = await make_key("acme")
    big = messages(12)
    assert embed_tokens(settings, big) > 300
    refused = await client.post(
        "/v4/conversations", json={"conversationId": "big", "messages": big}, headers=auth(key)
    )
    assert refused.status == 413
    body = await refused.json()
    assert "max_embed_tokens" in body["error"]
    details = body["details"]
    assert details["setting"] == "max_embed_tokens"
    assert details["limitTokens"] == 300
    assert 300 < details["requestTokensAtLeast"] <= embed_tokens(settings, big)
    assert (await client.get("/v4/conversations/big", headers=auth(key))).status == 404

    small = messages(2)
    assert embed_tokens(settings, small) <= 300
    ok = await client.post(
        "/v4/conversations", json={"conversationId": "small", "messages": small}, headers=auth(key)
    )
    assert ok.status == 200, await ok.text()


async def test_search_and_health_keep_answering_during_a_maximal_ingest(
    make_key: MakeKey, tmp_path: Path
) -> None:
    cap = 4_000
    settings = make_settings(tmp_path / "data", max_embed_tokens=cap)
    # The largest conversation under the cap: a maximal ingest.
    count = 2
    while embed_tokens(settings, messages(count + 2)) <= cap and count < 400:
        count += 2
    body = messages(count)
    assert cap * 0.8 < embed_tokens(settings, body) <= cap
    key = await make_key("acme")
    headers = auth(key)
    asked = iter(range(10_000))
    async with (
        memoryd_on_loopback(settings) as (url, _),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
    ):
        seed = {"conversationId": "seed", "messages": messages(4, seed=1)}
        async with http.post(f"{url}/v4/conversations", json=seed, headers=headers) as r:
            assert r.status == 200

        async def search_times(rounds: int) -> list[float]:
            times = []
            for _ in range(rounds):
                # A new query each time, so that no answer comes from the search cache.
                n = next(asked)
                query = {"q": f"{WORDS[n % len(WORDS)]} {WORDS[n * 7 % len(WORDS)]} {n}"}
                started = time.perf_counter()
                async with http.post(f"{url}/v4/search", json=query, headers=headers) as r:
                    assert r.status == 200
                    await r.read()
                times.append(time.perf_counter() - started)
            return times

        idle = await search_times(20)
        async with HealthProbe(url) as probe:
            ingest = asyncio.ensure_future(
                http.post(
                    f"{url}/v4/conversations",
                    json={"conversationId": "max", "messages": body},
                    headers=headers,
                )
            )
            busy: list[float] = []
            deadline = time.monotonic() + 60
            while not ingest.done() and time.monotonic() < deadline and len(busy) < 500:
                busy += await search_times(1)
            response = await ingest
            assert response.status == 200, await response.text()
            response.release()
    assert busy, "the ingest finished before any search ran"
    print(
        f"search idle median {statistics.median(idle) * 1000:.1f} ms, during the ingest "
        f"median {statistics.median(busy) * 1000:.1f} ms, slowest {max(busy) * 1000:.1f} ms "
        f"({len(busy)} searches); /health {probe.summary()}"
    )
    assert max(busy) < 2.0
    assert probe.slowest < 1.0


async def test_punctuation_cannot_slip_past_max_embed_tokens(
    aiohttp_client: Any, make_key: MakeKey, tmp_path: Path
) -> None:
    """Runs of dots are a few tiktoken tokens but a full model input each: they count by length."""
    from memoryd import bootstrap

    settings = make_settings(tmp_path / "data", max_embed_tokens=2_000)
    dots = [{"role": "user", "content": "." * 20_000}]
    counter = tiktoken_counter(settings.token_encoding)
    counter.load()
    assert counter.count(dots[0]["content"]) < 2_000  # tiktoken alone would let it through
    assert embed_tokens(settings, dots) > 2_000
    client: Client = await aiohttp_client(await bootstrap.create_app(settings))
    key = await make_key("acme")
    refused = await client.post(
        "/v4/conversations", json={"conversationId": "dots", "messages": dots}, headers=auth(key)
    )
    assert refused.status == 413
    assert (await refused.json())["details"]["setting"] == "max_embed_tokens"
