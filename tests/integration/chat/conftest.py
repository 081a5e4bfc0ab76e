"""Fixtures for the chat tests: a real app (SQLite, MiniLM; extractive answers unless told)."""

from __future__ import annotations

import pytest

from tests.helpers import MakeKey


@pytest.fixture
async def key(make_key: MakeKey) -> str:
    return await make_key("acme")
