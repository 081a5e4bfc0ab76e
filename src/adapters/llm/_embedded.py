"""The ``ChatModel`` of the embedded llama.cpp server: the OpenAI client pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING

import aiohttp
from attrs import Factory, define, field

from memoryd.adapters._outbound import SessionSlot
from memoryd.adapters.llm._openai import OpenAIChatModel
from memoryd.core.errors import ModelUnavailable
from memoryd.core.ports import ChatTurn, Completed

if TYPE_CHECKING:
    from memoryd.adapters.llm._llamacpp import EmbeddedLlamaServer

_LABEL = "the embedded llama.cpp server"


@define(kw_only=True)
class LlamaCppChatModel:
    """The ``ChatModel`` of an :class:`EmbeddedLlamaServer`: the OpenAI client pointed at it.

    It follows the server across restarts (a new port, a new key). While the
    server is not running, streams raise ``ModelUnavailable``.
    """

    server: EmbeddedLlamaServer
    session: aiohttp.ClientSession | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    temperature: float | None = 0.2
    _client: OpenAIChatModel | None = field(default=None, init=False, repr=False)
    _sessions: SessionSlot = field(
        default=Factory(lambda self: SessionSlot(self.session), takes_self=True),
        init=False,
        repr=False,
    )

    @property
    def name(self) -> str:
        return self.server.model_name

    @property
    def context_window(self) -> int:
        return self.server.context_window

    async def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int
    ) -> AsyncGenerator[str | Completed, None]:
        """Yield the answer as llama.cpp writes it, then its ``Completed`` (llama.cpp's own
        finish reason and token counts). Raises ``ModelUnavailable``."""
        client = self._current()
        async with contextlib.aclosing(client.stream(turns, max_tokens=max_tokens)) as pieces:
            async for piece in pieces:
                yield piece

    def _current(self) -> OpenAIChatModel:
        if not self.server.running:
            raise ModelUnavailable(f"{_LABEL[:1].upper()}{_LABEL[1:]} is not running")
        client = self._client
        if client is None or (client.base_url, client.api_key) != (
            self.server.base_url,
            self.server.key,
        ):
            client = OpenAIChatModel(
                base_url=self.server.base_url,
                model=self.server.model_name,
                api_key=self.server.key,
                context_window=self.server.context_window,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                connect_retries=0,
                temperature=self.temperature,
                session=self._sessions.get(),
                label=_LABEL,
                url_setting=None,
            )
            self._client = client
        return client

    async def aclose(self) -> None:
        """Close the HTTP session this model opened itself (a shared one is left open)."""
        self._client = None
        await self._sessions.close()
