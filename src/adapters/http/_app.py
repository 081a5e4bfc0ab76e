"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from memoryd.adapters.http import openapi, routes_chat, routes_health, routes_memory
from memoryd.adapters.http._auth import auth_middleware
from memoryd.adapters.http._errors import error_middleware
from memoryd.adapters.http._keys import CONFIG, SERVICES, HttpConfig, Services


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
        middlewares=[error_middleware, auth_middleware],
        client_max_size=config.max_body_bytes,
    )
    app[SERVICES] = services
    app[CONFIG] = config
    app[openapi.OPENAPI_PATHS] = {**openapi.PATHS, **routes_chat.PATHS, **(extra_paths or {})}
    app[openapi.OPENAPI_SCHEMAS] = {
        **openapi.SCHEMAS,
        **routes_chat.SCHEMAS,
        **(extra_schemas or {}),
    }
    app.add_routes(routes_health.routes)
    app.add_routes(openapi.routes)
    app.add_routes(routes_memory.routes)
    app.add_routes(routes_chat.routes)
    for table in extra_routes:
        app.add_routes(table)
    return app
