"""GET /health (the process answers) and GET /ready (the store answers too)."""

from __future__ import annotations

from aiohttp import web

from memoryd.adapters.http._keys import CONFIG, services

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": request.app[CONFIG].version})


@routes.get("/ready")
async def ready(request: web.Request) -> web.Response:
    await services(request).store.check()  # StoreUnavailable -> 503 in the middleware
    return web.json_response({"status": "ready"})
