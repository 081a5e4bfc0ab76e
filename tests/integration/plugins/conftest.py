"""Fixtures for the plugin tests: real apps on 127.0.0.1 with the installed memoryd-testplugin.

The test plugin (tests/plugins/memoryd_testplugin) must be installed in the
environment, as tox's tests environment does.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from memoryd import bootstrap
from tests.helpers import make_settings
from tests.integration.plugins.plugin_helpers import Client, Serve, Served, make_key

if importlib.util.find_spec("memoryd_testplugin") is None:  # pragma: no cover - tox installs it
    pytest.fail(
        "memoryd-testplugin is not installed: "
        "python -m pip install ./tests/plugins/memoryd_testplugin",
        pytrace=False,
    )


@pytest.fixture
def serve(aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path) -> Serve:
    """Start a real app with settings ``overrides`` in ``tmp_path/data`` (or ``data``)."""

    async def start(
        data: str = "data", *, plugins: Sequence[object] = (), **overrides: Any
    ) -> Served:
        settings = make_settings(tmp_path / data, **overrides)
        app = await bootstrap.create_app(settings, plugins=plugins)
        client = await aiohttp_client(app)
        return Served(app, client, await make_key(settings, plugins), settings)

    return start
