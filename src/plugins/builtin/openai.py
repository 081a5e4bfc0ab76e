"""The built-in ``openai`` embedder and chat model: any OpenAI-compatible server.

The embedder talks to ``embedding_url`` (``/v1/embeddings``), the chat model to
``llm_url`` (``/v1/chat/completions``), both over the app's shared session.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from memoryd.core.errors import ConfigurationError
from memoryd.core.ports import ChatModel, Embedder
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterChatModel, RegisterEmbedder


@contextlib.asynccontextmanager
async def open_embedder(context: PluginContext[Any]) -> AsyncIterator[Embedder]:
    """The remote embedder, probed (which checks the server and learns the dimension)."""
    from memoryd.adapters.embedding import OpenAIEmbedder

    settings = context.settings
    if not settings.embedding_url:
        raise ConfigurationError(
            "embedder = 'openai' needs embedding_url (…/v1)",
            details={"setting": "embedding_url"},
        )
    remote = OpenAIEmbedder(
        base_url=settings.embedding_url,
        model=settings.embedding_model,
        api_key=settings.embedding_api_key,
        dimension=settings.embedding_dimension,
        timeout=settings.embedding_timeout,
        batch_size=settings.embedding_batch_size,
        session=context.session,
    )
    try:
        await remote.probe()
        yield remote
    finally:
        await remote.aclose()


@contextlib.asynccontextmanager
async def open_chat_model(context: PluginContext[Any]) -> AsyncIterator[ChatModel]:
    from memoryd.adapters.llm import OpenAIChatModel

    settings = context.settings
    if not settings.llm_url:
        raise ConfigurationError(
            'llm = "openai" needs llm_url, the server\'s OpenAI base URL ending in /v1 '
            "(for Ollama: http://127.0.0.1:11434/v1)",
            details={"setting": "llm_url"},
        )
    remote = OpenAIChatModel(
        base_url=settings.llm_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        context_window=settings.llm_context_window,
        connect_timeout=settings.llm_connect_timeout,
        read_timeout=settings.llm_read_timeout,
        connect_retries=settings.llm_connect_retries,
        temperature=settings.llm_temperature,
        session=context.session,
    )
    try:
        yield remote
    finally:
        await remote.aclose()


@hookimpl
def memoryd_register_embedders(register: RegisterEmbedder) -> None:
    register("openai", open_embedder)


@hookimpl
def memoryd_register_chat_models(register: RegisterChatModel) -> None:
    # Servers run all kinds of models: the default headroom (0.25).
    register("openai", open_chat_model)
