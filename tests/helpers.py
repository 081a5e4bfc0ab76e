"""Helpers shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

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
