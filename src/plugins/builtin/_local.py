"""The local embedding models (minilm, e5): one factory, run on a batching worker thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

from memoryd.core.ports import Embedder
from memoryd.plugins.context import PluginContext


def local_factory(
    model: Literal["minilm", "e5"],
) -> Callable[[PluginContext[Any]], AbstractAsyncContextManager[Embedder]]:
    """A factory of the local ``model``, loaded in a thread (off the event loop)."""

    @contextlib.asynccontextmanager
    async def open_local(context: PluginContext[Any]) -> AsyncIterator[Embedder]:
        from memoryd.adapters.embedding import local_embedder

        settings = context.settings
        local = local_embedder(
            model,
            threads=settings.embedding_threads,
            max_batch=settings.embedding_batch_size,
            document_nice=settings.embedding_document_nice,
        )
        try:
            await asyncio.to_thread(local.load)
            yield local
        finally:
            await local.aclose()

    return open_local
