"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web, web_app

from memoryd.adapters.http import (
    openapi,
    routes_chat,
    routes_documents,
    routes_health,
    routes_memories,
    routes_memory,
)
from memoryd.adapters.http._auth import auth_middleware
from memoryd.adapters.http._errors import error_middleware
from memoryd.adapters.http._keys import CONFIG, SERVICES, HttpConfig, Services
from memoryd.adapters.http._metrics import Metrics, install, metrics_middleware, metrics_view
from memoryd.adapters.http._request_id import name_the_request, request_id_middleware


def build_app(
    services: Services,
    config: HttpConfig,
    *,
    extra_routes: Iterable[web.RouteTableDef] = (),
    extra_paths: Mapping[str, Any] | None = None,
    extra_schemas: Mapping[str, Any] | None = None,
) -> web.Application:
    """An app serving the memory and chat API over ``services``.

    ``extra_routes`` (with their OpenAPI ``extra_paths`` and ``extra_schemas``)
    add more route tables.
    """
    app = web.Application(
        middlewares=[request_id_middleware, metrics_middleware, error_middleware, auth_middleware],
        client_max_size=config.max_body_bytes,
    )
    app.on_response_prepare.append(name_the_request)
    metrics = Metrics(storage=config.storage)
    metrics.watch_embedder(services.search.embedder)
    metrics.count_memories = _memory_counter(services.search.index)
    install(app, metrics, config.metrics)
    app[SERVICES] = services
    app[CONFIG] = config
    app[openapi.OPENAPI_PATHS] = {
        **openapi.PATHS,
        **routes_chat.PATHS,
        **routes_memories.PATHS,
        **routes_documents.PATHS,
        **(extra_paths or {}),
    }
    app[openapi.OPENAPI_SCHEMAS] = {
        **openapi.SCHEMAS,
        **routes_chat.SCHEMAS,
        **routes_memories.SCHEMAS,
        **routes_documents.SCHEMAS,
        **(extra_schemas or {}),
    }
    app.router.add_get("/metrics", metrics_view)
    app.add_routes(routes_health.routes)
    app.add_routes(openapi.routes)
    app.add_routes(routes_memory.routes)
    app.add_routes(routes_chat.routes)
    app.add_routes(routes_memories.routes)
    app.add_routes(routes_documents.routes)
    for table in extra_routes:
        app.add_routes(table)
    app.on_cleanup.append(_forget_middleware_chains)
    return app


async def _forget_middleware_chains(_: web.Application) -> None:
    """Drop aiohttp's cached middleware chains, which keep the closed app (and its services).

    aiohttp caches each handler wrapped in its apps' middlewares in one process-wide
    ``lru_cache(maxsize=1024)`` keyed by ``(handler, apps)`` (``web_app._cached_build_middleware``,
    aio-libs/aiohttp#9158). The key holds the app: an app that served a request stayed
    alive after its cleanup, its embedding model (~100 MB) and stores with it, until 1024
    newer chains pushed it out (tests, or a program that builds app after app).
    The cache cannot drop one key, so all of it goes; other apps rebuild theirs on
    their next request. tests/integration/http/test_http_app_released.py checks it.
    """
    cache = getattr(web_app, "_cached_build_middleware", None)
    if cache is not None:
        cache.cache_clear()


def _memory_counter(index: object) -> Callable[[], int | None]:
    """How many memories the index holds, for an index that tells (``total()``), else None."""
    total = getattr(index, "total", None)

    def count() -> int | None:
        found = total() if callable(total) else None
        return found if isinstance(found, int) else None

    return count
