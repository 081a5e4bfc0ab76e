"""The built-in chat model ``extractive``: no model; the answer quotes the memories."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from memoryd.core.ports import ChatModel
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterChatModel


@contextlib.asynccontextmanager
async def open_chat_model(context: PluginContext[Any]) -> AsyncIterator[ChatModel]:
    from memoryd.adapters.llm import ExtractiveChatModel

    yield ExtractiveChatModel(context_window=context.settings.llm_context_window)


def always(context: PluginContext[Any]) -> bool:
    """It needs nothing, so ``llm = "auto"`` falls back on it."""
    return True


@hookimpl
def memoryd_register_chat_models(register: RegisterChatModel) -> None:
    register("extractive", open_chat_model, available=always)
