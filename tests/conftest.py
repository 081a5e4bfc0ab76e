"""Shared fixtures: real settings in a temporary data dir, a real app, real keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from memoryd import bootstrap
from memoryd.core.auth import digest, new_key
from memoryd.settings import Settings
from tests.helpers import MakeKey, make_settings

#: No test reaches beyond loopback: see the plugin.
pytest_plugins = ["tests.loopback_only"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    return await bootstrap.create_app(settings)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
    app: web.Application,
) -> TestClient[Any, Any]:
    """A real aiohttp server on 127.0.0.1 (a free port) and a client for it."""
    return await aiohttp_client(app)


@pytest.fixture
async def make_key(settings: Settings) -> AsyncIterator[MakeKey]:
    """Create API keys the way ``memoryd keys create`` does, in the same SQLite file."""

    async def make(
        tenant: str = "acme", *, tags: tuple[str, ...] = (), quota: int | None = None
    ) -> str:
        plaintext = new_key()
        async with bootstrap.key_store(settings) as keys:
            await keys.create_key(
                tenant=tenant, digest=digest(plaintext), tags=tags, quota_tokens=quota
            )
        return plaintext

    return make
