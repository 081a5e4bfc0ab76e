"""The storage contract (``memoryd.testing.contract``) over SQLite and over the fakes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from attrs import define

from memoryd.adapters.storage.sqlite import open_sqlite
from memoryd.testing import InMemoryIndex, InMemoryStore
from memoryd.testing.contract import *  # noqa: F403 - the contract's tests run here
from memoryd.testing.contract import DIMENSION, OpenBackend


@define
class FakeBackend:
    """The fakes as one backend: the store keeps its data between opens."""

    conversations: InMemoryStore
    index: InMemoryIndex

    @property
    def keys(self) -> InMemoryStore:
        return self.conversations

    @property
    def threads(self) -> InMemoryStore:
        return self.conversations

    async def close(self) -> None:
        return None


def fakes() -> OpenBackend:
    store = InMemoryStore()

    @contextlib.asynccontextmanager
    async def open_fakes() -> AsyncIterator[Any]:
        # A new process: the index holds what the store held at open (as SQLite's
        # rebuild at open does); what the outbox holds is the replay's to apply.
        index = InMemoryIndex()
        for tenant in await store.tenant_ids():
            async for change in store.snapshot(tenant):
                await index.apply(change)
        yield FakeBackend(store, index)

    return open_fakes


def sqlite(path: Path) -> OpenBackend:
    @contextlib.asynccontextmanager
    async def open_file() -> AsyncIterator[Any]:
        backend = await open_sqlite(path, model_name="contract", dimension=DIMENSION)
        try:
            yield backend
        finally:
            await backend.close()

    return open_file


@pytest.fixture(params=["sqlite", "fakes"])
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> OpenBackend:
    if request.param == "sqlite":
        return sqlite(tmp_path / "data" / "memoryd.sqlite3")
    return fakes()
