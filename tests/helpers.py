"""Helpers shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from attrs import define, field

from memoryd.settings import Settings, load_settings

MakeKey = Callable[..., Awaitable[str]]


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings as a user's defaults, in ``data_dir``, unaffected by this shell's MEMORYD_*."""
    flags: dict[str, Any] = {"data_dir": data_dir, "llm": "extractive", **overrides}
    return load_settings(flags=flags, env={})


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def serve_on_loopback(runner: web.AppRunner) -> str:
    """Set ``runner`` up on 127.0.0.1 at a free port; its base URL (``cleanup()`` stops it)."""
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


#: Writes the start of an SSE answer, given the request body.
Opening = Callable[[bytes, web.StreamResponse], Awaitable[None]]


@define
class StallingCompletions:
    """A ``/v1/chat/completions`` server on loopback that starts an answer, then goes silent.

    ``opening`` writes the first events; the handler then waits until the
    server closes. Handlers are cancelled when their client disconnects, and
    ``client_left`` is set then.
    """

    opening: Opening
    #: How many answers were asked for.
    requests: int = 0
    client_left: asyncio.Event = field(factory=asyncio.Event)
    _closing: asyncio.Event = field(factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    #: The OpenAI base URL, ending in ``/v1``.
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        self.url = await serve_on_loopback(self._runner) + "/v1"

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            body = await request.read()
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await self.opening(body, response)
            await self._closing.wait()
            return response
        except asyncio.CancelledError:
            self.client_left.set()
            raise
