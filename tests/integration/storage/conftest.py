"""A real SQLite backend in a temporary directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from memoryd.adapters.storage.sqlite import SqliteBackend, open_sqlite
from tests.integration.storage.sqlite_helpers import DIM, MODEL


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "memoryd.sqlite3"


@pytest.fixture
async def backend(db_path: Path) -> AsyncIterator[SqliteBackend]:
    opened = await open_sqlite(db_path, model_name=MODEL, dimension=DIM)
    try:
        yield opened
    finally:
        await opened.close()
