"""The built-in storage backend ``sqlite``: one SQLite file in ``data_dir``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from memoryd.core.ports import StorageBackend
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterStorage


@contextlib.asynccontextmanager
async def open_backend(context: PluginContext[Any]) -> AsyncIterator[StorageBackend]:
    """The stores and the index over ``database_path``; the key store alone without an embedder.

    Without an embedder (``memoryd keys``, the first key) the vectors are
    neither checked nor loaded, which is safe while a server has the file open.
    """
    from memoryd.adapters.storage.sqlite import open_sqlite

    embedder = context.embedder
    backend = await open_sqlite(
        context.settings.database_path,
        model_name=embedder.model_name if embedder is not None else None,
        dimension=embedder.dimension if embedder is not None else None,
        load_index=embedder is not None,
    )
    try:
        yield backend
    finally:
        await backend.close()


@hookimpl
def memoryd_register_storage(register: RegisterStorage) -> None:
    register("sqlite", open_backend)
