"""Helpers for the plugin tests: a served app, its key, the test plugin's settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from attrs import frozen

from memoryd import bootstrap
from memoryd.core.auth import digest, new_key
from memoryd.settings import Settings
from tests.helpers import auth

Client = TestClient[Any, Any]


@frozen
class Served:
    """A real app on loopback, a client for it and an API key it knows."""

    app: web.Application
    client: Client
    key: str
    settings: Settings

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.client.post(path, json=body, headers=auth(self.key))
        assert response.status == 200, await response.text()
        return await response.json()

    async def remember(self, conversation_id: str, *content: Any) -> Any:
        """Ingest a conversation of user messages (each a string or a list of parts)."""
        messages = [{"role": "user", "content": c} for c in content]
        return await self.post(
            "/v4/conversations", {"conversationId": conversation_id, "messages": messages}
        )

    async def search(self, q: str, **extra: Any) -> list[dict[str, Any]]:
        answer = await self.post("/v4/search", {"q": q, **extra})
        results: list[dict[str, Any]] = answer["results"]
        return results

    async def close(self) -> None:
        """Stop the server and close the app (its resources and plugins)."""
        await self.client.close()


#: ``await serve(data="data", plugins=(), **settings)``
Serve = Callable[..., Awaitable[Served]]


async def make_key(settings: Settings, plugins: Sequence[object] = ()) -> str:
    """A key for tenant ``acme``, made as ``memoryd keys create`` makes one."""
    plaintext = new_key()
    async with bootstrap.key_store(settings, plugins) as keys:
        await keys.create_key(tenant="acme", digest=digest(plaintext))
    return plaintext


def configured(**section: Any) -> dict[str, Any]:
    """Settings with ``[plugins.testplugin]`` = ``section``."""
    return {"plugin_settings": {"testplugin": section}}


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "imageUrl": {"url": url}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}
