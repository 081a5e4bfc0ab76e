"""memoryd-testplugin: a storage backend, an embedder, a chat model, a part handler, a reranker.

Installed, it changes nothing until chosen: ``storage = "memory"``,
``embedder = "hashing"``, ``llm = "canned"``; its part handler and reranker
are switched on in its own settings section (``[plugins.testplugin]``
``captions = true``, ``reverse = true``), and ``fault`` makes both misbehave.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from attrs import define, field, frozen

from memoryd import hookimpl
from memoryd.plugins import PluginContext, RegisterChatModel, RegisterEmbedder, RegisterStorage

if TYPE_CHECKING:
    # Imported lazily: installed in memoryd's test environment, this plugin loads in every
    # app there, and must not depend on more of memoryd than the plugin API.
    from memoryd.core.model import ContentPart
    from memoryd.core.ports import ChatTurn, RerankCandidate
    from memoryd.testing import InMemoryIndex, InMemoryStore

__version__ = "1.2.3"

#: Startup and shutdown, as the lifespan hook saw them: ("start" or "stop", embedder name).
EVENTS: list[tuple[str, str]] = []

Fault = Literal["", "raise", "hang", "flood"]


@frozen
class TestPluginSettings:
    """``[plugins.testplugin]``."""

    #: What the ``canned`` chat model answers.
    greeting: str = "Canned answer from memoryd-testplugin."
    #: Register the part handler (an image URL's file name becomes its caption).
    captions: bool = False
    #: Register the reranker (it reverses the results).
    reverse: bool = False
    #: Make the handler and the reranker raise, hang, or answer too much.
    fault: Fault = ""
    #: A secret, which ``memoryd config`` must hide.
    token: str | None = field(default=None, repr=False)


@hookimpl
def memoryd_plugin_settings() -> type[TestPluginSettings]:
    return TestPluginSettings


# --- storage "memory": the in-memory fakes, one set per data_dir for the process ---------------


@define
class MemoryBackend:
    store: InMemoryStore
    index: InMemoryIndex

    @property
    def conversations(self) -> InMemoryStore:
        return self.store

    @property
    def threads(self) -> InMemoryStore:
        return self.store

    @property
    def keys(self) -> InMemoryStore:
        return self.store

    async def close(self) -> None:
        """Nothing to release; the data stays for the process (keys made before serving)."""


BACKENDS: dict[Path, MemoryBackend] = {}


@contextlib.asynccontextmanager
async def open_memory(context: PluginContext[TestPluginSettings]) -> AsyncIterator[MemoryBackend]:
    from memoryd.testing import InMemoryIndex, InMemoryStore

    where = context.settings.data_dir
    backend = BACKENDS.get(where)
    if backend is None:
        backend = BACKENDS[where] = MemoryBackend(InMemoryStore(), InMemoryIndex())
    try:
        yield backend
    finally:
        await backend.close()


@hookimpl
def memoryd_register_storage(register: RegisterStorage) -> None:
    register("memory", open_memory)


# --- embedder "hashing": bag of words, hashed into 256 dimensions ---------------------------------

WORD = re.compile(r"\w+")


def hashing_vector(text: str, dimension: int = 256) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A unit vector with one bucket per word: texts of the same words are identical."""
    vector = np.zeros(dimension, dtype=np.float32)
    for word in WORD.findall(text.lower()):
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
        vector[bucket % dimension] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


@frozen
class HashingEmbedder:
    dimension: int = 256

    @property
    def model_name(self) -> str:
        return "testplugin-hashing"

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([hashing_vector(t, self.dimension) for t in texts])

    async def embed_query(self, text: str) -> np.ndarray[Any, Any]:
        return hashing_vector(text, self.dimension)


@contextlib.asynccontextmanager
async def open_hashing(
    context: PluginContext[TestPluginSettings],
) -> AsyncIterator[HashingEmbedder]:
    yield HashingEmbedder()


@hookimpl
def memoryd_register_embedders(register: RegisterEmbedder) -> None:
    register("hashing", open_hashing)


# --- chat model "canned": always the greeting -----------------------------------------------------

#: The prompt headroom the canned model asks for (checked by the tests).
CANNED_HEADROOM = 0.1


@frozen
class CannedChatModel:
    greeting: str

    @property
    def name(self) -> str:
        return "canned"

    @property
    def context_window(self) -> int:
        return 2048

    async def stream(self, turns: Sequence[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        # No Completed at the end: the chat then reports the finish reason "unknown".
        for word in self.greeting.split(" "):
            yield word + " "


@contextlib.asynccontextmanager
async def open_canned(context: PluginContext[TestPluginSettings]) -> AsyncIterator[CannedChatModel]:
    yield CannedChatModel(context.config.greeting.strip())


@hookimpl
def memoryd_register_chat_models(register: RegisterChatModel) -> None:
    register("canned", open_canned, token_headroom=CANNED_HEADROOM)


# --- part handler and reranker, when switched on ------------------------------------------------


async def misbehave(fault: Fault, what: str) -> None:
    if fault == "raise":
        raise RuntimeError(f"the testplugin {what} failed on purpose")
    if fault == "hang":
        await asyncio.Event().wait()


@frozen
class FileNameCaptions:
    """An image's file name is its caption (``.../red-bicycle.png``: a red bicycle)."""

    fault: Fault = ""

    def accepts(self, part: ContentPart) -> bool:
        return part.type in {"image_url", "image"} and bool(part.url)

    async def to_text(self, part: ContentPart) -> str | None:
        await misbehave(self.fault, "part handler")
        stem = Path((part.url or "").split("?", 1)[0]).stem.replace("-", " ")
        caption = f"A picture of a {stem}."
        return caption * 100_000 if self.fault == "flood" else caption


@frozen
class Reverse:
    fault: Fault = ""

    @property
    def name(self) -> str:
        return "reverse"

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        await misbehave(self.fault, "reranker")
        if self.fault == "flood":
            return [*pool, *pool]
        return list(reversed(pool))


@hookimpl
def memoryd_register_part_handlers(context: PluginContext[TestPluginSettings]) -> list[Any]:
    return [FileNameCaptions(context.config.fault)] if context.config.captions else []


@hookimpl
def memoryd_register_rerankers(context: PluginContext[TestPluginSettings]) -> list[Any]:
    return [Reverse(context.config.fault)] if context.config.reverse else []


# --- lifespan ------------------------------------------------------------------------------------


@hookimpl
def memoryd_lifespan(
    context: PluginContext[TestPluginSettings],
) -> contextlib.AbstractAsyncContextManager[None]:
    embedder = context.embedder.model_name if context.embedder is not None else "none"

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        EVENTS.append(("start", embedder))
        try:
            yield
        finally:
            EVENTS.append(("stop", embedder))

    return lifespan()
