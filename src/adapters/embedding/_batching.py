"""Continuous batching of a blocking embedding model, off the event loop.

:class:`BatchingEmbedder` implements the ``Embedder`` port around any
:class:`EncoderModel`. Inference runs on dedicated worker threads (the model
parallelises inside itself). Requests that arrive while a call runs wait:
queries in one queue, each ``embed_documents`` call as one job in another. A
lone request starts at once: there is no timer.

Queries come first, in one of two ways:

- **Two lanes** (a model whose ``concurrent_queries`` is true, such as
  MiniLM: it may be called from two threads at once). Queries run on a
  thread of their own, beside the document calls, so a query never waits for
  one; the document thread runs at a lower OS priority (``document_nice``,
  Linux), so that while both want a core the query, and the rest of the
  search path, get it. Document calls take full batches: ingest keeps its
  rate while searches come in, and a first search after a quiet spell does
  not wait behind a 64-text call (``bench/analysis.md`` has the numbers).
- **One lane** (any other model, e.g. llama.cpp, which must not be called
  from two threads): before every document call the worker runs one call for
  all the queries waiting (up to ``max_batch``). So a query waits for at
  most the one document call already running, and while searches are coming
  in (one in the last :data:`QUERY_RECENT_S` seconds) a document call embeds
  one text. When no one searches, a document call takes a full batch.

Jobs take turns: a document call takes :data:`PIECES_PER_BATCH`-th of a batch
from each waiting job in turn (round robin), so one caller's huge ingest does
not hold up the others' for its whole duration, and the texts of several
callers fill one call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
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


#: A job gives a document call at most ``max_batch // PIECES_PER_BATCH`` texts per turn.
PIECES_PER_BATCH = 4
#: The document thread's niceness in the two-lane mode (Linux; 0 leaves it as it is).
DOCUMENT_NICE = 10
#: Seconds after a query during which a document call embeds one text, so that the
#: next query waits for at most one short call (search stays fast during a long ingest).
QUERY_RECENT_S = 10.0


@frozen
class _Query:
    text: str
    future: asyncio.Future[FloatMatrix]


@define
class _Job:
    """One ``embed_documents`` call: its texts, how far the worker has taken them, its rows."""

    texts: tuple[str, ...]
    future: asyncio.Future[FloatMatrix]
    out: FloatMatrix
    taken: int = 0
    done: int = 0


@frozen
class _Slice:
    job: _Job
    start: int
    stop: int


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
    #: Niceness added to the document thread when queries have their own (Linux only).
    document_nice: int = field(default=DOCUMENT_NICE, kw_only=True)
    #: Queries on a thread of their own (None: if the model says ``concurrent_queries``).
    query_lane: bool | None = field(default=None, kw_only=True)
    #: The document thread (and, in the one-lane mode, the queries' too).
    _executor: ThreadPoolExecutor = field(init=False, repr=False)
    _query_executor: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _query_worker: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _loaded: bool = field(default=False, init=False)
    _loading: asyncio.Future[None] | None = field(default=None, init=False, repr=False)
    _queries: collections.deque[_Query] = field(factory=collections.deque, init=False)
    _jobs: collections.deque[_Job] = field(factory=collections.deque, init=False)
    _worker: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False)
    #: When the last query was queued (the loop's clock).
    _last_query: float = field(default=float("-inf"), init=False)
    _observers: list[Callable[[bool, int, float], None]] = field(factory=list, init=False)

    def add_observer(self, observer: Callable[[bool, int, float], None]) -> None:
        """Call ``observer(query, texts, seconds)`` after each model call (metrics)."""
        self._observers.append(observer)

    @property
    def waiting(self) -> int:
        """Texts queued for the model: queries, and the documents not yet taken."""
        return len(self._queries) + sum(len(j.texts) - j.taken for j in self._jobs)

    def __attrs_post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {self.max_batch}")
        if self.document_nice < 0:
            raise ValueError(f"document_nice must be at least 0, not {self.document_nice}")
        if self.query_lane is None:
            self.query_lane = getattr(self.model, "concurrent_queries", False) is True
        if not self.query_lane:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memoryd-embed")
            return
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="memoryd-embed-documents",
            initializer=_lower_priority,
            initargs=(self.document_nice,),
        )
        self._query_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="memoryd-embed-queries"
        )

    @property
    def model_name(self) -> str:
        """The model's name, which stored vectors are tagged with."""
        return self.model.model_name

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self.model.dimension

    def load(self) -> None:
        """Load the model now (blocking: call it in a thread, not on the event loop).

        It loads on the document thread, so that the threads the model starts
        for itself (onnxruntime's pool) inherit that thread's priority.
        """
        self._executor.submit(self._load).result()

    def _load(self) -> None:
        if not self._loaded:
            self.model.load()
            self._loaded = True

    async def embed_documents(self, texts: Sequence[str]) -> FloatMatrix:
        """One unit vector per text (float32, shape (len(texts), dimension)), for storing."""
        items = tuple(texts)
        if not items:
            return empty_matrix(self.dimension)
        loop = self._loop_or_refuse()
        out = np.empty((len(items), self.dimension), dtype=np.float32)
        job = _Job(items, loop.create_future(), out)
        self._jobs.append(job)
        self._wake(loop)
        return await job.future

    async def embed_query(self, text: str) -> FloatVector:
        """One unit vector (float32, shape (dimension,)), for searching."""
        loop = self._loop_or_refuse()
        query = _Query(text, loop.create_future())
        self._last_query = loop.time()
        self._queries.append(query)
        self._wake(loop)
        rows = await query.future
        vector: FloatVector = rows[0]
        return vector

    def _loop_or_refuse(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise ModelUnavailable("The embedding model is shutting down")
        return asyncio.get_running_loop()

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._query_executor is not None:  # two lanes: each its own worker
            if self._queries and (self._query_worker is None or self._query_worker.done()):
                self._query_worker = loop.create_task(
                    self._drain_queries(), name="memoryd-embed-queries"
                )
            if self._jobs and (self._worker is None or self._worker.done()):
                self._worker = loop.create_task(
                    self._drain_documents(), name="memoryd-embed-documents"
                )
            return
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain(), name="memoryd-embed-batcher")

    def _take_queries(self) -> list[_Query]:
        """The waiting queries (their callers still waiting), up to ``max_batch``."""
        batch: list[_Query] = []
        while self._queries and len(batch) < self.max_batch:
            query = self._queries.popleft()
            if not query.future.done():  # else its caller was cancelled while it waited
                batch.append(query)
        return batch

    def _take_documents(self, most: int) -> list[_Slice]:
        """Up to ``most`` texts for one document call, a turn of each waiting job in round robin."""
        turn = max(1, self.max_batch // PIECES_PER_BATCH)
        batch: list[_Slice] = []
        size = 0
        while self._jobs and size < most:
            job = self._jobs.popleft()
            if job.future.done():  # its caller was cancelled while it waited
                continue
            stop = min(len(job.texts), job.taken + turn, job.taken + most - size)
            batch.append(_Slice(job, job.taken, stop))
            size += stop - job.taken
            job.taken = stop
            if job.taken < len(job.texts):
                self._jobs.append(job)  # the rest waits for its next turn
        return batch

    async def _drain(self) -> None:
        """One call for the waiting queries, then one document call, until nothing waits.

        A query waits for at most the document call that is running; while searches
        come in, a document call embeds one text, so that wait stays short.
        """
        loop = asyncio.get_running_loop()
        while self._queries or self._jobs:
            queries = self._take_queries()
            if queries:
                await self._run_queries(queries)
            searching = loop.time() - self._last_query < QUERY_RECENT_S
            pieces = self._take_documents(1 if searching else self.max_batch)
            if pieces:
                await self._run_documents(pieces)

    async def _loaded_on_the_document_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        """Two lanes: the model loads once, on the document thread (see :meth:`load`)."""
        if self._loaded:
            return
        if self._loading is None:
            self._loading = asyncio.ensure_future(loop.run_in_executor(self._executor, self._load))
        loading = self._loading
        try:
            await asyncio.shield(loading)
        except Exception:
            if self._loading is loading:
                self._loading = None  # the next call tries again
            raise

    async def _drain_queries(self) -> None:
        """Two lanes: one call for the waiting queries at a time, until none waits."""
        while self._queries:
            queries = self._take_queries()
            if queries:
                await self._run_queries(queries)

    async def _drain_documents(self) -> None:
        """Two lanes: full document calls (a turn of each waiting job), until none waits."""
        while self._jobs:
            pieces = self._take_documents(self.max_batch)
            if pieces:
                await self._run_documents(pieces)

    async def _encode(self, texts: list[str], *, query: bool) -> FloatMatrix:
        loop = asyncio.get_running_loop()
        executor = self._executor
        if query and self._query_executor is not None:
            executor = self._query_executor
        try:
            if self._query_executor is not None:
                await self._loaded_on_the_document_thread(loop)
            started = time.perf_counter()
            matrix = await loop.run_in_executor(executor, _encode, self.model, texts, query)
            for observe in self._observers:
                observe(query, len(texts), time.perf_counter() - started)
            return matrix
        except asyncio.CancelledError:  # the loop is shutting down: nobody will wait any more
            for waiting in self._queries:
                waiting.future.cancel()
            for job in self._jobs:
                job.future.cancel()
            raise

    async def _run_queries(self, batch: list[_Query]) -> None:
        try:
            matrix = await self._encode([q.text for q in batch], query=True)
        except asyncio.CancelledError:
            for query in batch:
                query.future.cancel()
            raise
        except Exception as exc:  # the model failed: every caller in this call hears it
            for query in batch:
                if not query.future.done():
                    query.future.set_exception(exc)
            return
        for i, query in enumerate(batch):
            if not query.future.done():
                query.future.set_result(matrix[i : i + 1].copy())

    async def _run_documents(self, batch: list[_Slice]) -> None:
        texts = [t for s in batch for t in s.job.texts[s.start : s.stop]]
        try:
            matrix = await self._encode(texts, query=False)
        except asyncio.CancelledError:
            for piece in batch:
                piece.job.future.cancel()
            raise
        except Exception as exc:  # the model failed: every job in this call hears it
            for piece in batch:
                if not piece.job.future.done():
                    piece.job.future.set_exception(exc)
            return
        row = 0
        for piece in batch:
            job, count = piece.job, piece.stop - piece.start
            job.out[piece.start : piece.stop] = matrix[row : row + count]
            job.done += count
            row += count
            if job.done == len(job.texts) and not job.future.done():
                job.future.set_result(job.out)

    async def aclose(self) -> None:
        """Finish the requests already queued, then stop the worker threads."""
        self._closed = True
        for worker in (self._worker, self._query_worker):
            if worker is not None and not worker.done():
                await asyncio.shield(worker)
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        if self._query_executor is not None:
            await asyncio.to_thread(self._query_executor.shutdown, wait=True)

    def close(self) -> None:
        """Stop the worker threads without waiting (for use outside an event loop)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._query_executor is not None:
            self._query_executor.shutdown(wait=False, cancel_futures=True)


def _lower_priority(nice: int) -> None:
    """On the document thread as it starts: lower its priority by ``nice`` (Linux only).

    Linux keeps a niceness per thread (``setpriority`` on a thread id); elsewhere
    it would apply to the whole process, so there it is left alone.
    """
    if nice and sys.platform == "linux":
        with contextlib.suppress(OSError):  # e.g. a sandbox without setpriority
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)


def _encode(model: EncoderModel, texts: list[str], query: bool) -> FloatMatrix:
    """On the worker thread: one model call, its shape checked."""
    matrix = np.asarray(model.encode(texts, query=query), dtype=np.float32)
    if matrix.shape != (len(texts), model.dimension):
        raise ModelUnavailable(
            f"The embedding model {model.model_name} returned shape {matrix.shape} "
            f"for {len(texts)} texts of dimension {model.dimension}"
        )
    return matrix
