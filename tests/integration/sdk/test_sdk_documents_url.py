"""A URL document (``client.add(content=url)``) is fetched through the fetch guard when allowed.

The guard is the real one (``memoryd.adapters._fetch_guard``) with the test's
resolver and a connector that only reaches 127.0.0.1 (tests/integration/http/fetch_helpers.py):
``example.test`` resolves to a public-looking address, which the connector maps
onto a page served on loopback. Nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import supermemory
from aiohttp import web
from aiohttp.test_utils import TestServer

from memoryd import bootstrap
from memoryd.adapters._fetch_guard import FetchGuard, FetchPolicy
from memoryd.adapters.http import routes_documents
from memoryd.settings import Settings
from tests.helpers import MakeKey
from tests.integration.http.fetch_helpers import PUBLIC, FakeResolver, Loopback

PAGE = (
    "<html><head><title>Lisbon guide</title></head><body><nav>Home | About</nav>"
    "<article><h1>Lisbon guide</h1><p>The best pastel de nata in Lisbon is baked in "
    "Belém, next to the monastery, and it is best eaten warm with cinnamon.</p></article>"
    "</body></html>"
)


@pytest.fixture
async def origin(aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]) -> TestServer:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    site = web.Application()
    site.router.add_get("/lisbon", page)
    return await aiohttp_server(site)


@pytest.fixture
def loopback(origin: TestServer) -> Loopback:
    assert origin.port is not None
    return Loopback(routes={PUBLIC: origin.port})


@pytest.fixture
async def app(settings: Settings, loopback: Loopback) -> web.Application:
    """The app with fetching on, through a guard whose connections stay on 127.0.0.1."""
    app = await bootstrap.create_app(settings)
    guard = FetchGuard(
        policy=FetchPolicy(),
        resolver=FakeResolver({"example.test": [[PUBLIC]]}),
        connector=loopback,
    )
    app[routes_documents.FETCH] = guard.fetch
    return app


@pytest.fixture
async def sdk(client: Any, make_key: MakeKey) -> AsyncIterator[supermemory.AsyncSupermemory]:
    http = supermemory.DefaultAsyncHttpxClient(trust_env=False)
    async with supermemory.AsyncSupermemory(
        api_key=await make_key("acme"),
        base_url=str(client.make_url("")),
        max_retries=0,
        http_client=http,
    ) as sdk:
        yield sdk


async def test_a_url_document_is_fetched_read_and_searchable(
    sdk: supermemory.AsyncSupermemory, loopback: Loopback
) -> None:
    added = await sdk.add(content="http://example.test/lisbon", container_tag="travel")
    assert loopback.seen == [[PUBLIC]]
    assert not loopback.violations
    doc = await sdk.documents.get(added.id)
    assert doc.url == "http://example.test/lisbon"
    assert doc.content == "http://example.test/lisbon"
    assert doc.type == "webpage"
    assert doc.memories
    assert any("pastel de nata" in m.memory for m in doc.memories)
    found = await sdk.search.documents(
        q="where is the best pastel de nata?", container_tag="travel"
    )
    assert [r.document_id for r in found.results] == [added.id]


async def test_a_refused_url_is_a_422_saying_why(sdk: supermemory.AsyncSupermemory) -> None:
    with pytest.raises(supermemory.UnprocessableEntityError) as raised:
        await sdk.documents.add(content="http://127.0.0.1:9/secret")
    body = raised.value.body
    assert isinstance(body, dict)
    assert "was not fetched" in body["error"]
    assert body["details"]["field"] == "content"
    assert (await sdk.documents.list()).memories == []
