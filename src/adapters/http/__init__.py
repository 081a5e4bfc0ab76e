"""The HTTP adapter: aiohttp app, routes, the cattrs converter, middleware, stream writers."""

from __future__ import annotations

from memoryd.adapters.http._app import build_app
from memoryd.adapters.http._keys import HttpConfig, Services
from memoryd.adapters.http._server import ServerLimits, make_runner

__all__ = ["HttpConfig", "ServerLimits", "Services", "build_app", "make_runner"]
