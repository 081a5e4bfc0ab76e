"""A closed app lets go of everything it held: services, stores and the embedding model.

aiohttp keeps every handler it wrapped in middlewares in a process-wide cache keyed
by the apps; without ``build_app``'s cleanup, an app that served a request stayed
alive after closing, ~100 MB of embedding model with it, per app.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from memoryd import bootstrap
from memoryd.adapters.http._keys import SERVICES
from memoryd.settings import Settings
from tests.helpers import MakeKey, auth

TEXT = "My grandmother's secret lasagne recipe uses nutmeg in the bechamel."


async def _serve_then_close(settings: Settings, key: str) -> dict[str, weakref.ref[Any]]:
    """Weak references to an app and what it held, after it ingested, searched and closed."""
    app = await bootstrap.create_app(settings)
    services = app[SERVICES]
    held: dict[str, object] = {
        "app": app,
        "services": services,
        "ingest": services.ingest,
        "search": services.search,
        "embedder": services.search.embedder,
        "store": services.store,
    }
    async with TestClient(TestServer(app)) as client:
        body = {"conversationId": "recipe", "messages": [{"role": "user", "content": TEXT}]}
        ingested = await client.post("/v4/conversations", json=body, headers=auth(key))
        assert ingested.status == 200, await ingested.text()
        found = await client.post("/v4/search", json={"q": "nutmeg"}, headers=auth(key))
        assert found.status == 200, await found.text()
        assert (await found.json())["results"]
    return {name: weakref.ref(value) for name, value in held.items()}


async def test_a_closed_app_that_served_requests_is_freed(
    settings: Settings, make_key: MakeKey
) -> None:
    refs = await _serve_then_close(settings, await make_key())
    gc.collect()
    alive = sorted(name for name, ref in refs.items() if ref() is not None)
    assert alive == [], f"still reachable after the app closed: {alive}"
