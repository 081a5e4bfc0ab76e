"""Continuous batching of a blocking embedding model, off the event loop.

:class:`BatchingEmbedder` implements the ``Embedder`` port around any
:class:`EncoderModel`. Inference runs on one dedicated worker thread (the
model parallelises inside itself). Requests that arrive while a batch runs
wait in a queue (one for queries, one for documents); when the worker is
free it takes everything queued of one kind, up to ``max_batch`` texts, in
one model call, the two kinds taking turns. Documents are queued in pieces of
a quarter batch, so that the pieces of several callers fill a call. A lone
request starts at once: there is no timer.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
from attrs import define, field, frozen

from memoryd.adapters.embedding._vectors import FloatMatrix, FloatVector, empty_matrix
from memoryd.core.errors import ModelUnavailable


class EncoderModel(Protocol):
    """A blocking model: texts in, unit vectors out. Called from one worker thread."""

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def load(self) -> None:
        """Load the model (idempotent, thread-safe); ``encode`` calls it if needed."""
        ...

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        """A float32 (len(texts), dimension) array of unit vectors, in order."""
        ...


#: Documents are queued in pieces of ``max_batch // PIECES_PER_BATCH`` texts.
PIECES_PER_BATCH = 4
#: Seconds after a query during which document calls shrink to ``max_batch //
#: SEARCHING_SHARE`` texts, so that the next query waits for at most one small call
#: (search stays fast during a long ingest).
QUERY_RECENT_S = 2.0
SEARCHING_SHARE = 16


@frozen
class _Request:
    texts: tuple[str, ...]
    query: bool
    future: asyncio.Future[FloatMatrix]


@define
class BatchingEmbedder:
    """The ``Embedder`` port over a blocking :class:`EncoderModel`, with continuous batching.

    Build it cheaply; call :meth:`load` (blocking, e.g. in a thread at startup)
    to load the model early, or let the first request load it on the worker.
    Close it with :meth:`aclose` (or :meth:`close` outside a loop).
    """

    model: EncoderModel
    #: Most texts in one model call; longer ``embed_documents`` calls are split.
    max_batch: int = field(default=64, kw_only=True)
    _executor: ThreadPoolExecutor = field(init=False, repr=False)
    _queries: collections.deque[_Request] = field(factory=collections.deque, init=False)
    _documents: collections.deque[_Request] = field(factory=collections.deque, init=False)
    _worker: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False)
    #: When the last query was queued (the loop's clock).
    _last_query: float = field(default=float("-inf"), init=False)

    def __attrs_post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {self.max_batch}")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memoryd-embed")

    @property
    def model_name(self) -> str:
        """The model's name, which stored vectors are tagged with."""
        return self.model.model_name

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self.model.dimension

    def load(self) -> None:
        """Load the model now (blocking: call it in a thread, not on the event loop)."""
        self.model.load()

    async def embed_documents(self, texts: Sequence[str]) -> FloatMatrix:
        """One unit vector per text (float32, shape (len(texts), dimension)), for storing."""
        items = tuple(texts)
        if not items:
            return empty_matrix(self.dimension)
        # Pieces of a quarter batch: the worker packs the queued pieces of several
        # callers into full model calls, where whole conversations (20-50 texts) would
        # each fill a 64-text call only halfway. Fuller calls sort more texts by
        # length together (less padding): ~8% more texts per second on ingest.
        step = max(1, self.max_batch // PIECES_PER_BATCH)
        parts = [self._submit(items[i : i + step], query=False) for i in range(0, len(items), step)]
        if len(parts) == 1:
            return await parts[0]
        return np.concatenate(await asyncio.gather(*parts))

    async def embed_query(self, text: str) -> FloatVector:
        """One unit vector (float32, shape (dimension,)), for searching."""
        rows = await self._submit((text,), query=True)
        vector: FloatVector = rows[0]
        return vector

    def _submit(self, texts: tuple[str, ...], *, query: bool) -> asyncio.Future[FloatMatrix]:
        if self._closed:
            raise ModelUnavailable("The embedding model is shutting down")
        loop = asyncio.get_running_loop()
        request = _Request(texts, query, loop.create_future())
        if query:
            self._last_query = loop.time()
        (self._queries if query else self._documents).append(request)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain(), name="memoryd-embed-batcher")
        return request.future

    def _take(self, queue: collections.deque[_Request], most: int) -> list[_Request]:
        """Requests from ``queue`` for one model call: up to ``most`` texts in all."""
        batch: list[_Request] = []
        size = 0
        while queue:
            request = queue[0]
            if request.future.done():  # its caller was cancelled while it waited
                queue.popleft()
                continue
            if batch and size + len(request.texts) > most:
                break
            batch.append(queue.popleft())
            size += len(request.texts)
        return batch

    async def _drain(self) -> None:
        """Alternate one call for the queued queries and one for queued documents until idle.

        Queries and documents take turns, so a long ingest never starves searches
        (a query waits for at most one document call) and searches never starve it.
        While searches are coming in (one in the last ``QUERY_RECENT_S``), a document
        call takes a sixteenth of a batch, so that wait stays short; otherwise it takes
        a full batch, which embeds more texts a second.
        """
        loop = asyncio.get_running_loop()
        small = max(1, self.max_batch // SEARCHING_SHARE)
        while self._queries or self._documents:
            batch = self._take(self._queries, self.max_batch)
            if batch:
                await self._run_batch(batch, query=True)
            searching = loop.time() - self._last_query < QUERY_RECENT_S
            batch = self._take(self._documents, small if searching else self.max_batch)
            if batch:
                await self._run_batch(batch, query=False)

    async def _run_batch(self, batch: list[_Request], *, query: bool) -> None:
        loop = asyncio.get_running_loop()
        texts = [t for r in batch for t in r.texts]
        try:
            matrix = await loop.run_in_executor(self._executor, _encode, self.model, texts, query)
        except asyncio.CancelledError:  # the loop is shutting down: nobody will wait any more
            for request in (*batch, *self._queries, *self._documents):
                request.future.cancel()
            raise
        except Exception as exc:  # the model failed: every caller in this batch hears it
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        start = 0
        for request in batch:
            stop = start + len(request.texts)
            if not request.future.done():
                request.future.set_result(matrix[start:stop].copy())
            start = stop

    async def aclose(self) -> None:
        """Finish the requests already queued, then stop the worker thread."""
        self._closed = True
        worker = self._worker
        if worker is not None and not worker.done():
            await asyncio.shield(worker)
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    def close(self) -> None:
        """Stop the worker thread without waiting (for use outside an event loop)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)


def _encode(model: EncoderModel, texts: list[str], query: bool) -> FloatMatrix:
    """On the worker thread: one model call, its shape checked."""
    matrix = np.asarray(model.encode(texts, query=query), dtype=np.float32)
    if matrix.shape != (len(texts), model.dimension):
        raise ModelUnavailable(
            f"The embedding model {model.model_name} returned shape {matrix.shape} "
            f"for {len(texts)} texts of dimension {model.dimension}"
        )
    return matrix
