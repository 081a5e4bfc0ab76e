"""The auth middleware: every route needs a key except the public ones."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from memoryd.adapters.http._keys import CALLER, SERVICES

#: ``/metrics`` checks its own access (the ``metrics`` setting) in its view.
PUBLIC_PATHS = frozenset({"/health", "/ready", "/openapi.json", "/metrics"})


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS or request.match_info.http_exception is not None:
        # Public routes need no key; unknown routes and methods answer 404/405 as they are.
        return await handler(request)
    request[CALLER] = await request.app[SERVICES].auth.authenticate(bearer_token(request))
    return await handler(request)
