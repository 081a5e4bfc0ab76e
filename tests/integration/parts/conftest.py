"""Fixtures for the part-handler tests: a real app on 127.0.0.1 with the built-in handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from memoryd import bootstrap
from tests.helpers import make_settings
from tests.integration.plugins.plugin_helpers import Client, Serve, Served, make_key


@pytest.fixture
def serve(aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path) -> Serve:
    """Start a real app with settings ``overrides`` in ``tmp_path/data``."""

    async def start(**overrides: Any) -> Served:
        settings = make_settings(tmp_path / "data", **overrides)
        app = await bootstrap.create_app(settings)
        client = await aiohttp_client(app)
        return Served(app, client, await make_key(settings), settings)

    return start
