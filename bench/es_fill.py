"""Copy a SQLite data dir into the Elasticsearch backend through the store's port.

The scale part of ``--storage elasticsearch`` measures the same memories as
the SQLite rows: every conversation of the bench's tenant is read from a
data dir built by ``bench.build`` (through HTTP, real embeddings; the larger
sizes filled by ``bench.fill``) through the SQLite store's own port
(``conversations_of`` and ``snapshot``: the messages, and the memories with
their ids, piece vectors and keyword context), and written to the cluster by
``EsConversationStore.commit``, then applied to the search index by
memoryd's ``Indexer`` (the outbox drain a server's ingest runs before its 200).
That is the backend's real write path, after the embedding: the documents are
the ones an ingest through HTTP would write, with the same memory ids, so the
exact top 10 computed from the SQLite file is the truth for both backends.

``bulk_copy_to_elasticsearch`` writes the same documents (built by the same
functions: ``_state.commit``, ``_state.pending``, ``_index.index_actions``,
``_state.mark_applied``) in large ``_bulk`` requests and refreshes once: the
port path runs at ~7 memories/s on noida-db at 10k and falls as the index
grows (each request scans the index), so 100k would take hours that way.
``tests/integration/elasticsearch/test_es_bench_fill.py`` checks that both
leave identical documents.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from attrs import define

from bench.build import DB
from memoryd.adapters.storage.elasticsearch import (
    ElasticsearchConfig,
    RefreshPolicy,
    open_elasticsearch,
)
from memoryd.adapters.storage.elasticsearch import _state as states
from memoryd.adapters.storage.elasticsearch._codec import to_text
from memoryd.adapters.storage.elasticsearch._conversations import conversation_doc_id
from memoryd.adapters.storage.elasticsearch._index import index_actions
from memoryd.adapters.storage.sqlite import open_sqlite
from memoryd.core.auth import digest, new_key
from memoryd.core.indexer import Indexer
from memoryd.core.ports import ConversationChange

Doc = dict[str, Any]

#: Conversations written at once (each its own commit and drain).
CONCURRENCY = 4
#: Memory documents per ``_bulk`` request of :func:`bulk_copy_to_elasticsearch`.
BATCH = 1000


@define
class EsFillResult:
    #: An API key of ``tenant`` created in the cluster (the SQLite file's keys stay there).
    key: str
    conversations: int
    memories: int
    seconds: float
    concurrency: int
    refresh: str

    @property
    def memories_per_second(self) -> float:
        return self.memories / self.seconds if self.seconds else 0.0


def model_of(database: Path) -> tuple[str, int]:
    """The embedding model name and dimension a data dir was built with."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        return str(meta["embedding_model"]), int(meta["embedding_dimension"])
    finally:
        conn.close()


async def changes(source: Any, tenant: str) -> AsyncIterator[ConversationChange]:
    """Each conversation of ``tenant`` in the SQLite backend ``source`` as a "created" change."""
    memories = source.conversations.snapshot(tenant).__aiter__()
    async for conversation in source.conversations.conversations_of(tenant):
        if not conversation.messages:
            continue
        index = await memories.__anext__()
        while (index.conversation_id, index.scope) != (
            conversation.conversation_id,
            conversation.scope,
        ):
            # The snapshot lists the same conversations in the same (rowid) order;
            # one without messages has no entry on the other side.
            index = await memories.__anext__()
        yield ConversationChange(
            kind="created",
            conversation=conversation,
            new_messages=conversation.messages,
            added=index.added,
            removed_memory_ids=(),
        )


async def _open_both(source_dir: Path, config: ElasticsearchConfig) -> tuple[Any, Any, int]:
    """The SQLite data dir (its index not loaded), the cluster, and their vectors' dimension."""
    model, dim = model_of(source_dir / DB)
    source = await open_sqlite(source_dir / DB, model_name=model, dimension=dim, load_index=False)
    try:
        target = await open_elasticsearch(config, dimension=dim, model_name=model)
    except BaseException:
        await source.close()
        raise
    return source, target, dim


async def _bench_key(target: Any, tenant: str) -> str:
    """A new API key for ``tenant``, stored in the cluster."""
    key = new_key()
    await target.keys.create_key(tenant=tenant, digest=digest(key), label="bench")
    return key


async def copy_to_elasticsearch(
    source_dir: Path,
    url: str,
    *,
    tenant: str,
    prefix: str = "bench",
    concurrency: int = CONCURRENCY,
    refresh: RefreshPolicy = "wait_for",
    log: Any = print,
) -> EsFillResult:
    """Write every conversation of ``tenant`` in ``source_dir`` to the cluster at ``url``.

    ``refresh`` is the writer's ``elasticsearch_refresh`` (the same documents either
    way; on noida-db under load ``true`` was no faster: 56 against 58 memories/s).
    """
    config = ElasticsearchConfig(
        url=url, index_prefix=prefix, replicas=0, request_timeout=60.0, refresh=refresh
    )
    source, target, _ = await _open_both(source_dir, config)
    queue: asyncio.Queue[ConversationChange | None] = asyncio.Queue(maxsize=2 * concurrency)
    done = {"conversations": 0, "memories": 0}
    started = time.perf_counter()

    async def worker() -> None:
        # One indexer per worker: drains of different conversations need no common order.
        indexer = Indexer(target.conversations, target.index)
        while (change := await queue.get()) is not None:
            await target.conversations.commit(change)
            conv = change.conversation
            await indexer.drain(conv.tenant_id, conv.conversation_id)
            done["conversations"] += 1
            done["memories"] += len(change.added)
            if done["conversations"] % 500 == 0:
                rate = done["memories"] / (time.perf_counter() - started)
                log(f"  es fill: {done['memories']:,} memories ({rate:.0f}/s) ...")

    try:
        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        try:
            async for change in changes(source, tenant):
                await queue.put(change)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        except BaseException:
            for w in workers:
                w.cancel()
            raise
        # Nothing may be left pending (a server would replay it at its start).
        left = await Indexer(target.conversations, target.index).drain()
        if left:
            log(f"  es fill: {left} pending entries applied at the end")
        key = await _bench_key(target, tenant)
    finally:
        await target.close()
        await source.close()
    return EsFillResult(
        key=key,
        conversations=done["conversations"],
        memories=done["memories"],
        seconds=time.perf_counter() - started,
        concurrency=concurrency,
        refresh=refresh,
    )


def bulk_documents(change: ConversationChange, dimension: int) -> list[tuple[Doc, Doc]]:
    """The documents the port path leaves for ``change`` (a "created" change), as actions.

    ``EsConversationStore.commit`` writes the conversation document with one outbox
    entry (``_state.commit``), the ``Indexer`` applies that entry's ``IndexChange``
    (``_state.pending``: the memories' index documents, ``_index.index_actions``) and
    marks it applied (``_state.mark_applied``): the same functions, called here in
    that order, give the same documents, written without the round trips.
    """
    conv = change.conversation
    tenant, cid = conv.tenant_id, conv.conversation_id
    seq = 1
    state = states.commit(None, change, seq, dimension)
    applied = states.pending(tenant, cid, state)
    state = states.mark_applied(state, [p.seq for p in applied])
    head = {"index": {"_id": conversation_doc_id(tenant, cid), "routing": tenant}}
    actions: list[tuple[Doc, Doc]] = [
        (head, states.document(tenant, cid, state, to_text(conv.updated_at)))
    ]
    for p in applied:
        actions += index_actions(p.change, dimension)
    return actions


async def bulk_copy_to_elasticsearch(
    source_dir: Path,
    url: str,
    *,
    tenant: str,
    prefix: str = "bench",
    batch: int = BATCH,
    log: Any = print,
) -> EsFillResult:
    """Load every conversation of ``tenant`` in ``source_dir`` with large ``_bulk`` requests.

    The documents are :func:`bulk_documents`' (the backend's own builders, as the port
    path writes them); ``refresh=false`` per request, one refresh of each index at
    the end, two requests in flight. For sizes the port path cannot fill in time on
    noida-db (~7 memories/s at 10k, falling), not a measure of ingest.
    """
    config = ElasticsearchConfig(url=url, index_prefix=prefix, replicas=0, request_timeout=600.0)
    source, target, dim = await _open_both(source_dir, config)
    client = target.cluster.client
    done = {"conversations": 0, "memories": 0}
    started = time.perf_counter()
    in_flight: set[asyncio.Task[None]] = set()

    async def send(kind_actions: list[tuple[str, Doc, Doc]]) -> None:
        body: list[Doc] = []
        for kind, action, doc in kind_actions:
            ((op, meta),) = action.items()
            body += [{op: {"_index": config.alias(kind), **meta}}, doc]
        answer = await client.bulk(operations=body, refresh=False)
        if answer["errors"]:
            failed = [i for i in answer["items"] if next(iter(i.values())).get("error")]
            raise RuntimeError(f"{len(failed)} bulk item(s) failed; first: {failed[0]!r}")

    async def flush(pending: list[tuple[str, Doc, Doc]]) -> None:
        while len(in_flight) >= 2:
            finished, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                in_flight.discard(task)
                task.result()
        in_flight.add(asyncio.create_task(send(pending)))

    try:
        pending: list[tuple[str, Doc, Doc]] = []
        memories_pending = 0
        async for change in changes(source, tenant):
            actions = bulk_documents(change, dim)
            pending.append(("conversations", *actions[0]))
            pending += [("memories", a, d) for a, d in actions[1:]]
            memories_pending += len(actions) - 1
            done["conversations"] += 1
            done["memories"] += len(actions) - 1
            if memories_pending >= batch:
                await flush(pending)
                pending, memories_pending = [], 0
                if done["memories"] // batch % 10 == 0:
                    rate = done["memories"] / (time.perf_counter() - started)
                    log(f"  es bulk load: {done['memories']:,} memories ({rate:.0f}/s) ...")
        if pending:
            await flush(pending)
        for task in list(in_flight):
            await task
        for kind in ("conversations", "memories"):
            await target.cluster.refresh_now(kind)
        key = await _bench_key(target, tenant)
    finally:
        for task in in_flight:
            task.cancel()
        await target.close()
        await source.close()
    return EsFillResult(
        key=key,
        conversations=done["conversations"],
        memories=done["memories"],
        seconds=time.perf_counter() - started,
        concurrency=2,
        refresh="bulk",
    )
