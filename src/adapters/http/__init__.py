"""The HTTP adapter: aiohttp app, routes, the cattrs converter, middleware, stream writers."""

from __future__ import annotations

from memoryd.adapters.http._app import build_app
from memoryd.adapters.http._keys import HttpConfig, Services

__all__ = ["HttpConfig", "Services", "build_app"]
