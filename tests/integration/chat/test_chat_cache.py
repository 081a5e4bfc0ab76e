"""The semantic-search cache through chat: repeats are served from it, a write refreshes it."""

from __future__ import annotations

from aiohttp import web

from memoryd.adapters.http._keys import SERVICES
from tests.helpers import MakeKey
from tests.integration.chat.chat_helpers import Client, ask, data_lines, remember


def cited(body: bytes) -> list[str]:
    [annotations] = [value for code, value in data_lines(body) if code == "8"]
    return [a["title"] for a in annotations]


async def test_a_repeated_query_hits_the_cache_and_a_write_refreshes_it(
    app: web.Application, client: Client, key: str, make_key: MakeKey
) -> None:
    cache = app[SERVICES].search.cache
    await remember(client, key, "trip", "We are going to Lisbon in May")
    _, first = await ask(client, key, "Where are we going in May?")
    hits, misses = cache.hits, cache.misses
    _, again = await ask(client, key, "  where ARE we going in   May? ")  # same, normalised
    assert cache.hits == hits + 1
    assert cache.misses == misses
    assert data_lines(again)[1] == data_lines(first)[1]  # the very same annotations
    assert cited(again) == ["trip"]

    # Another tenant's write leaves this tenant's entry alone...
    other = await make_key("globex")
    await remember(client, other, "elsewhere", "We are going to Lisbon in May too")
    await ask(client, key, "Where are we going in May?")
    assert cache.hits == hits + 2

    # ...and a write to this tenant is seen right away.
    await remember(client, key, "plans", "In May we are going to Lisbon by train")
    _, fresh = await ask(client, key, "Where are we going in May?")
    assert cache.hits == hits + 2
    assert cache.misses == misses + 1
    assert sorted(cited(fresh)) == ["plans", "trip"]

    # Forgetting is a write too.
    assert (
        await client.delete("/v4/conversations/plans", headers={"Authorization": f"Bearer {key}"})
    ).status == 200
    _, after = await ask(client, key, "Where are we going in May?")
    assert cited(after) == ["trip"]
