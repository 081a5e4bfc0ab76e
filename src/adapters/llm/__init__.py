"""Chat models behind the ``ChatModel`` port.

- :class:`OpenAIChatModel`: any OpenAI-compatible ``/v1/chat/completions``
  server (OpenAI, Ollama, vLLM, llama.cpp), streamed over aiohttp.
- :class:`EmbeddedLlamaServer` and its :class:`LlamaCppChatModel`: llama.cpp
  run in this process on 127.0.0.1 with a GGUF model (``xllamacpp``).
- :class:`ExtractiveChatModel`: no model; the answer quotes the memories.

:func:`llamacpp_available` tells whether the embedded backend can run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memoryd.adapters.llm._embedded import LlamaCppChatModel
from memoryd.adapters.llm._extractive import ExtractiveChatModel
from memoryd.adapters.llm._llamacpp import (
    DEFAULT_MODEL_PACKAGE,
    EmbeddedLlamaServer,
    default_model_path,
    llamacpp_available,
    resolve_model_path,
)
from memoryd.adapters.llm._openai import OpenAIChatModel

__all__ = [
    "DEFAULT_MODEL_PACKAGE",
    "EmbeddedLlamaServer",
    "ExtractiveChatModel",
    "LlamaCppChatModel",
    "OpenAIChatModel",
    "default_model_path",
    "llamacpp_available",
    "resolve_model_path",
]

if TYPE_CHECKING:
    from memoryd.core.ports import ChatModel

    def _each_is_a_chat_model(
        a: OpenAIChatModel, b: LlamaCppChatModel, c: ExtractiveChatModel
    ) -> list[ChatModel]:
        return [a, b, c]  # mypy checks that all three implement the port
