"""The built-in embedder ``gguf``: any GGUF embedding model, by path, in llama.cpp (``xllamacpp``).

Its settings are its own section, ``[plugins.gguf]`` (or
``MEMORYD_PLUGIN_GGUF__KEY``); ``embedding_threads`` and
``embedding_batch_size`` apply as to the other local models. It loads in a
thread (off the event loop) and runs on the batching worker thread, as
``minilm`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from attrs import frozen

from memoryd.core.ports import Embedder
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterEmbedder


@frozen
class GGUFSettings:
    """``[plugins.gguf]``: the model file and how to embed with it."""

    #: The GGUF embedding model (EmbeddingGemma, nomic-embed-text, bge, ...); required.
    model_path: str | None = None
    #: "auto": the file's pooling type; "mean", "cls" or "last" override it (and let a
    #: model made for generation embed).
    pooling: Literal["auto", "mean", "cls", "last"] = "auto"
    #: Put before every query / document; None: the model family's (README), "" none.
    query_prompt: str | None = None
    document_prompt: str | None = None
    #: The longest text in tokens (capped at the model's context); longer ones are cut.
    max_tokens: int = 512


@hookimpl
def memoryd_plugin_settings() -> type[GGUFSettings]:
    return GGUFSettings


def model_path(config: GGUFSettings) -> Path | None:
    """The model file of the settings (``~`` expanded), or None if unset."""
    return Path(config.model_path).expanduser() if config.model_path else None


@contextlib.asynccontextmanager
async def open_gguf(context: PluginContext[GGUFSettings]) -> AsyncIterator[Embedder]:
    from memoryd.adapters.embedding import BatchingEmbedder, GGUFEncoder

    config, settings = context.config, context.settings
    encoder = GGUFEncoder(
        model_path=model_path(config),
        pooling=config.pooling,
        query_prompt=config.query_prompt,
        document_prompt=config.document_prompt,
        max_tokens=config.max_tokens,
        threads=settings.embedding_threads,
    )
    batching = BatchingEmbedder(encoder, max_batch=settings.embedding_batch_size)
    try:
        await asyncio.to_thread(batching.load)
        yield batching
    finally:
        await batching.aclose()
        await asyncio.to_thread(encoder.close)


@hookimpl
def memoryd_register_embedders(register: RegisterEmbedder) -> None:
    register("gguf", open_gguf)
