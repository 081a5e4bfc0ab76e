"""Helpers shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from memoryd.settings import Settings, load_settings

MakeKey = Callable[..., Awaitable[str]]


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings as a user's defaults, in ``data_dir``, unaffected by this shell's MEMORYD_*."""
    flags: dict[str, Any] = {"data_dir": data_dir, "llm": "extractive", **overrides}
    return load_settings(flags=flags, env={})


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
