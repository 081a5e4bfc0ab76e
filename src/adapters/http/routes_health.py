"""GET /health (the process answers) and GET /ready (the store and the index answer too)."""

from __future__ import annotations

from aiohttp import web

from memoryd.adapters.http._keys import CONFIG, services

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": request.app[CONFIG].version})


@routes.get("/ready")
async def ready(request: web.Request) -> web.Response:
    found = services(request)
    await found.store.check()  # StoreUnavailable -> 503 in the middleware
    await found.search.index.check()  # and the index must answer searches
    return web.json_response({"status": "ready"})
