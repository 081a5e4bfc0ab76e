"""MemoryIndex: in-memory vectors and filters per tenant, FTS5 for keywords.

The index keeps its own tables in the SQLite file (``index_memories`` and its
FTS5 index ``index_fts``), written only from the ``IndexChange`` values it is
applied: it never reads the store's tables. The in-memory view is loaded from
``index_memories`` at open. Dense search is an exact cosine scan over the rows
that pass the filter (the filter is applied inside the scan: the scan only
reads the passing rows), with a sign-bits prefilter for large tenants; a
very large tenant keeps int8 codes in memory instead of its float32 vectors,
which its searches read from ``index_memories`` for their shortlists. The
keyword side is FTS5's bm25, restricted to the tenant in the MATCH and to the
filter by the same in-memory attributes. Numeric work runs in the index's own
threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from memoryd.adapters.storage._vectors import unit_rows
from memoryd.adapters.storage.sqlite import _codec as codec
from memoryd.adapters.storage.sqlite._codec import chunks, document_key, marks, scope_text
from memoryd.adapters.storage.sqlite._db import Database, connect, redoable_transaction
from memoryd.adapters.storage.sqlite._fts import KEYWORD_BUDGET, TermPlanner, keyword_hits
from memoryd.adapters.storage.sqlite._scan import F32, Idx, as_query, pin_blas_threads
from memoryd.adapters.storage.sqlite._tenant import DEFAULT_TUNING, ScanTuning, TenantIndex
from memoryd.core.errors import ConfigurationError, StoreUnavailable
from memoryd.core.filters import MemoryFilter
from memoryd.core.memories import memory_text
from memoryd.core.model import Memory
from memoryd.core.ports import Candidate, IndexChange, IndexedMemory, IndexQuery, KeywordHit

T = TypeVar("T")


class SqliteMemoryIndex:
    """The searchable view of the memories in one SQLite file."""

    def __init__(
        self,
        db: Database,
        *,
        dimension: int,
        tuning: ScanTuning = DEFAULT_TUNING,
        scan_threads: int = 2,
        keyword_budget: int = KEYWORD_BUDGET,
    ) -> None:
        self.db = db
        self.planner = TermPlanner(keyword_budget)
        self.dimension = dimension
        self.tuning = tuning
        self.loaded = False
        self._closed = False
        self._tenants: dict[str, TenantIndex] = {}
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()
        self._compute = ThreadPoolExecutor(2, thread_name_prefix="memoryd-index")
        #: The compute threads' own read connections (compact tenants' vectors).
        self._local = threading.local()
        self._side_connections: list[sqlite3.Connection] = []
        self._helper = (
            ThreadPoolExecutor(scan_threads - 1, thread_name_prefix="memoryd-scan")
            if scan_threads > 1
            else None
        )

    # --- lifecycle -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Rebuild every tenant's view from the file (at open)."""
        pin_blas_threads(1)
        tenants = await self.db.read(self._rebuild)
        with self._lock:
            self._tenants = tenants
            self.loaded = True

    def _rebuild(self, conn: sqlite3.Connection) -> dict[str, TenantIndex]:
        tenants: dict[str, TenantIndex] = {}
        conn.execute("BEGIN")
        try:
            # One row per embedded piece: a memory's blob holds its pieces' vectors.
            for tenant_id, size in conn.execute(
                "SELECT tenant_id, sum(length(vector)) FROM index_memories GROUP BY tenant_id"
            ):
                pieces = int(size) // (4 * self.dimension)
                tenants[tenant_id] = self._new_tenant(
                    capacity=_next_power_of_two(pieces), compact=pieces >= self.tuning.float_below
                )
            loader = _Loader(tenants, self.dimension, str(self.db.path))
            cursor = conn.execute(
                "SELECT tenant_id, id, conversation_id, said_at_us, tags, metadata, vector,"
                " rowid, scope FROM index_memories"
            )
            while rows := cursor.fetchmany(_REBUILD_BATCH):
                loader.load(rows)
        finally:
            conn.execute("COMMIT")
        for tenant in tenants.values():
            tenant.quantise_if_large()
        return tenants

    def _new_tenant(self, capacity: int = 0, *, compact: bool = False) -> TenantIndex:
        return TenantIndex(
            self.dimension,
            capacity=capacity,
            tuning=self.tuning,
            read_vectors=self._read_vectors,
            compact=compact,
        )

    def _read_vectors(self, rowids: Sequence[int]) -> dict[int, bytes]:
        """The vectors blobs of these index rows, read on this thread's own connection.

        Compact tenants call it from a search that holds the tenant's lock, so it
        must not wait for the reader pool (whose keyword side may wait for that lock).
        """
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreUnavailable()
            conn = connect(self.db.path)
            conn.execute("PRAGMA query_only = ON")
            # A few dozen rows by rowid per search: SQLite's default cache will do.
            conn.execute("PRAGMA cache_size = -2000")
            self._local.conn = conn
            with self._lock:
                self._side_connections.append(conn)
        found: dict[int, bytes] = {}
        conn.execute("BEGIN")
        try:
            for part in chunks(list(rowids)):
                found.update(
                    conn.execute(
                        # Only "?" placeholders are formatted in; the rowids are parameters.
                        f"SELECT rowid, vector FROM index_memories"  # noqa: S608
                        f" WHERE rowid IN ({marks(len(part))})",
                        part,
                    ).fetchall()
                )
        finally:
            conn.execute("COMMIT")
        return found

    def _tenant(self, tenant_id: str, *, create: bool) -> TenantIndex | None:
        with self._lock:
            tenant = self._tenants.get(tenant_id)
            if tenant is None and create:
                tenant = self._tenants[tenant_id] = self._new_tenant()
            return tenant

    async def close(self) -> None:
        """Stop the index's threads."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.close_sync)

    def close_sync(self) -> None:
        self._closed = True
        self._compute.shutdown(wait=True)
        if self._helper is not None:
            self._helper.shutdown(wait=True)
        with self._lock:
            side, self._side_connections = self._side_connections, []
        for conn in side:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreUnavailable()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._compute, fn, *args)
        except RuntimeError as e:
            if self._closed:  # the index (and the store with it) was closed
                raise StoreUnavailable() from e
            raise

    # --- MemoryIndex -----------------------------------------------------------------------------

    async def apply(self, change: IndexChange) -> None:
        """Make a committed change searchable: the index's rows first, then its memory."""
        rowids = await self.db.write(partial(_write, change, self.dimension))
        if self.loaded:
            await self._run(self._apply, change, rowids)
        with self._lock:
            self._generations[change.tenant_id] = self._generations.get(change.tenant_id, 0) + 1

    def _apply(self, change: IndexChange, rowids: Mapping[str, int]) -> None:
        tenant = self._tenant(change.tenant_id, create=bool(change.added))
        if tenant is None:
            return
        # Two scopes may hold the same conversationId: the key names the one. (The added
        # memories are the change's conversation's, stored under its scope.)
        scope = scope_text(change.scope)
        with tenant.lock:
            for memory_id in change.removed_memory_ids:
                tenant.remove(memory_id)
            for item in change.added:
                memory = item.memory
                tenant.add(
                    memory_id=memory.id,
                    rowid=rowids[memory.id],
                    conversation_id=document_key(scope, memory.conversation_id),
                    vectors=unit_rows(item.vectors, self.dimension),
                    said_at_us=codec.to_micros(memory.said_at),
                    tags=memory.container_tags,
                    metadata=memory.metadata,
                )
            if change.container_tags is not None and change.metadata is not None:
                tenant.retag(
                    document_key(scope, change.conversation_id),
                    change.container_tags,
                    change.metadata,
                )
            tenant.quantise_if_large()

    async def clear(self, tenant_id: str | None = None) -> None:
        """Forget the tenant's memories (None: every tenant's), rows and keywords.

        A cleared index is a loaded one: the changes applied next are searchable.
        """
        if self._closed:
            raise StoreUnavailable()

        def forget(conn: sqlite3.Connection) -> None:
            with redoable_transaction(conn):
                if tenant_id is None:
                    conn.execute("DELETE FROM index_memories")
                    conn.execute("INSERT INTO index_fts (index_fts) VALUES ('rebuild')")
                else:
                    conn.execute("DELETE FROM index_memories WHERE tenant_id = ?", (tenant_id,))

        await self.db.write(forget)
        with self._lock:
            cleared = list(self._tenants) if tenant_id is None else [tenant_id]
            for tenant in cleared:
                self._tenants.pop(tenant, None)
                self._generations[tenant] = self._generations.get(tenant, 0) + 1
            self.loaded = True

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the index is loaded and FTS5 answers."""
        if self._closed or not self.loaded:
            raise StoreUnavailable()

        def probe(conn: sqlite3.Connection) -> None:
            conn.execute("SELECT count(*) FROM (SELECT 1 FROM index_fts LIMIT 1)").fetchone()

        await self.db.read(probe)

    async def search(self, query: IndexQuery) -> list[Candidate]:
        """Dense and keyword candidates (up to ``query.k`` each) that pass the filter."""
        if self._closed:
            raise StoreUnavailable()
        if not self.loaded:
            raise RuntimeError("the index was opened with load_index=False")
        tenant = self._tenant(query.filter.tenant_id, create=False)
        if tenant is None or query.k <= 0:
            return []
        q = as_query(query.vector, self.dimension)
        rows, version = await self._run(self._candidates, tenant, query.filter)
        keywords: Future[list[tuple[str, float]]] | None = None
        if query.keyword_hits is not None:
            keywords = Future()
            keywords.set_result([(h.memory_id, h.score) for h in query.keyword_hits])
        elif query.text.strip():
            keywords = self._keyword_future(tenant, query.filter, query.text, query.k, rows)
        try:
            return await self._run(self._search, tenant, q, query, (rows, version), keywords)
        finally:
            if keywords is not None and not keywords.done():
                keywords.cancel()

    async def keyword_search(
        self, memory_filter: MemoryFilter, text: str, k: int
    ) -> tuple[KeywordHit, ...]:
        """The keyword side alone (it needs no vector): hits that pass the filter."""
        if self._closed:
            raise StoreUnavailable()
        tenant = self._tenant(memory_filter.tenant_id, create=False)
        if tenant is None or k <= 0 or not text.strip():
            return ()
        rows, _ = await self._run(self._candidates, tenant, memory_filter)
        found = await asyncio.wrap_future(
            self._keyword_future(tenant, memory_filter, text, k, rows)
        )
        return tuple(
            KeywordHit(mid, score)
            for mid, score in self._passing_hits(tenant, memory_filter, found, k)
        )

    @staticmethod
    def _candidates(tenant: TenantIndex, memory_filter: MemoryFilter) -> tuple[Idx | None, int]:
        """The rows passing the filter, and the tenant's version they hold for."""
        with tenant.lock:
            return tenant.candidates(memory_filter), tenant.version

    @staticmethod
    def _passing_hits(
        tenant: TenantIndex, memory_filter: MemoryFilter, found: list[tuple[str, float]], k: int
    ) -> list[tuple[str, float]]:
        """The first ``k`` keyword hits still in the index that pass the filter exactly."""
        with tenant.lock:
            hits = [(mid, score) for mid, score in found if mid in tenant.rows]
            ok = tenant.passing([tenant.rows[mid][0] for mid, _ in hits], memory_filter)
        return [hit for hit, passed in zip(hits, ok, strict=True) if passed][:k]

    def _keyword_future(
        self,
        tenant: TenantIndex,
        memory_filter: MemoryFilter,
        text: str,
        k: int,
        rows: Idx | None,
    ) -> Future[list[tuple[str, float]]]:
        """Start the keyword side on a reader thread, restricted inside FTS5 where it pays.

        The MATCH is restricted to the filter's tags when they hold under half
        of the tenant, else to the tenant when it holds under half of the
        file; rows outside the filter are dropped afterwards, so more are
        asked for when the restriction is looser than the filter.
        """
        memories = max(tenant.memories, 1)
        share = 1.0 if rows is None else len(rows) / max(tenant.n, 1)
        in_scope = max(1, round(memories * share))
        total = max(self.total(), 1)
        tags = memory_filter.container_tags if share < 0.5 else ()
        tenant_id = memory_filter.tenant_id if memories / total < 0.5 else ""
        covered = in_scope if tags else (memories if tenant_id else total)
        loose = covered / in_scope
        limit = int(k * min(loose, 8.0)) + 16
        return self.db.submit_read(
            lambda conn: tenant.hits_by_id(
                keyword_hits(
                    conn,
                    text,
                    tenant_id=tenant_id,
                    tags=tags,
                    limit=limit,
                    planner=self.planner,
                    covered=covered,
                )
            )
        )

    def _search(
        self,
        tenant: TenantIndex,
        q: F32,
        query: IndexQuery,
        passing: tuple[Idx | None, int],
        keywords: Future[list[tuple[str, float]]] | None,
    ) -> list[Candidate]:
        rows, version = passing
        with tenant.lock:
            if tenant.version != version:  # changed since the filter ran: run it again
                rows = tenant.candidates(query.filter)
            dense_ids, similarity = self._dense(tenant, q, query.k, rows)
        found = keywords.result() if keywords is not None else []
        dense_rank = {mid: i for i, mid in enumerate(dense_ids)}
        keyword_score = dict(self._passing_hits(tenant, query.filter, found, query.k))
        if keyword_score:
            with tenant.lock:
                similarity.update(
                    tenant.similarities([mid for mid in keyword_score if mid not in similarity], q)
                )
        keyword_score = {mid: s for mid, s in keyword_score.items() if mid in similarity}
        keyword_rank = {mid: i for i, mid in enumerate(keyword_score)}
        ids = list(dict.fromkeys([*dense_ids, *keyword_score]))
        vectors: dict[str, F32] = {}
        if query.with_vectors:  # for the rerankers: copies, read under the lock
            with tenant.lock:
                vectors = {mid: tenant.piece_vectors(mid) for mid in ids if mid in tenant.rows}
        return [
            Candidate(
                memory_id=mid,
                # Unit vectors in float32 can give 1.0000001: keep cosine in range.
                similarity=min(1.0, max(-1.0, float(similarity[mid]))),
                dense_rank=dense_rank.get(mid),
                keyword_rank=keyword_rank.get(mid),
                keyword_score=keyword_score.get(mid),
                vectors=vectors.get(mid),
            )
            for mid in ids
        ]

    def _dense(
        self, tenant: TenantIndex, q: F32, k: int, rows: Idx | None
    ) -> tuple[list[str], dict[str, float]]:
        """The ``k`` best memories by their best row, with their cosine.

        Rows are asked for until ``k`` distinct memories are among them (a
        memory with several pieces may fill several of the top rows).
        """
        available = tenant.n if rows is None else len(rows)
        want = k + k // 2
        while True:
            slots, sims = tenant.dense(q, min(want, available), rows, self._helper)
            best: dict[str, float] = {}
            for slot, sim in zip(slots, sims, strict=True):
                best.setdefault(tenant.ids[slot], sim)
            if len(best) >= k or want >= available:
                ids = list(best)[:k]
                return ids, {mid: best[mid] for mid in ids}
            want *= 2

    async def fetch(self, tenant_id: str, memory_ids: Sequence[str]) -> list[Memory]:
        """The tenant's memories with these ids, in the given order (missing ones left out)."""
        ids = list(dict.fromkeys(memory_ids))
        if not ids:
            return []

        def run(conn: sqlite3.Connection) -> dict[str, Memory]:
            found: dict[str, Memory] = {}
            conn.execute("BEGIN")
            try:
                for part in chunks(ids):
                    for row in conn.execute(
                        # Constant columns and "?" placeholders; the ids are parameters.
                        # "+tenant_id" keeps the planner on the unique index of id: on
                        # (tenant_id, conversation_id) it would read all the tenant's rows.
                        f"SELECT {codec.MEMORY_COLUMNS} FROM index_memories"  # noqa: S608
                        f" WHERE +tenant_id = ? AND id IN ({marks(len(part))})",
                        (tenant_id, *part),
                    ):
                        memory = codec.memory_from_row(row)
                        found[memory.id] = memory
            finally:
                conn.execute("COMMIT")
            return found

        found = await self.db.read(run)
        return [found[mid] for mid in memory_ids if mid in found]

    async def generation(self, tenant_id: str) -> int:
        """Changes on every apply to the tenant (for the search cache)."""
        return self._generations.get(tenant_id, 0)

    # --- introspection (bench, health) -----------------------------------------------------------

    def total(self) -> int:
        """How many memories are searchable, all tenants together."""
        with self._lock:
            return sum(t.memories for t in self._tenants.values())

    def size(self, tenant_id: str) -> int:
        """How many memories of the tenant are searchable."""
        tenant = self._tenant(tenant_id, create=False)
        return tenant.memories if tenant is not None else 0


#: Rows read from the file per batch while rebuilding (a few MiB of vectors).
_REBUILD_BATCH = 2048


class _Loader:
    """Sorts batches of rows by tenant and appends them, vectors as one buffer each."""

    def __init__(self, tenants: dict[str, TenantIndex], dimension: int, path: str) -> None:
        self.tenants = tenants
        self.width = dimension * 4
        self.path = path
        self.groups: dict[str, dict[tuple[str, str], int]] = {t: {} for t in tenants}

    def load(self, rows: list[Any]) -> None:
        by_tenant: dict[str, list[Any]] = {}
        for row in rows:
            by_tenant.setdefault(row[0], []).append(row)
        for tenant_id, mine in by_tenant.items():
            tenant = self.tenants[tenant_id]
            known = self.groups[tenant_id]
            ids: list[str] = []
            rowids: list[int] = []
            conversations: list[str] = []
            said_at: list[int] = []
            groups: list[int] = []
            for _, mid, conversation, said, tags, metadata, blob, rowid, scope in mine:
                if not blob or len(blob) % self.width:
                    raise ConfigurationError(
                        f"Memory {mid} in {self.path} has vectors of {len(blob)} bytes, not "
                        f"a multiple of {self.width} ({self.width // 4} dimensions): the file "
                        "is inconsistent. Restore it from a backup or set data_dir to a new "
                        "directory.",
                    )
                pieces = len(blob) // self.width
                group = known.get((tags, metadata))
                if group is None:
                    group = tenant.groups.acquire(
                        codec.loads(tags), codec.loads(metadata), count=pieces
                    )
                    known[(tags, metadata)] = group
                else:
                    tenant.groups.acquire_group(group, count=pieces)
                ids.extend([mid] * pieces)
                rowids.extend([rowid] * pieces)
                conversations.extend([document_key(scope, conversation)] * pieces)
                said_at.extend([said] * pieces)
                groups.extend([group] * pieces)
            tenant.reserve(len(ids))
            tenant.load(
                ids,
                rowids=rowids,
                conversation_ids=conversations,
                vectors=b"".join(r[6] for r in mine),
                said_at_us=said_at,
                groups=groups,
            )


def _write(change: IndexChange, dimension: int, conn: sqlite3.Connection) -> dict[str, int]:
    """Write the change to the index's tables; the rowid of each added memory.

    Redoable (the outbox applies it again if it is lost), so not fsynced. Adding
    a memory the index has updates its row in place (it keeps its rowid).
    """
    tenant, cid, scope = change.tenant_id, change.conversation_id, scope_text(change.scope)
    conversation = "tenant_id = ? AND conversation_id = ? AND scope = ?"
    rowids: dict[str, int] = {}
    with redoable_transaction(conn):
        for ids in chunks(change.removed_memory_ids):
            conn.execute(
                # Only "?" placeholders are formatted in; the ids are bound parameters.
                f"DELETE FROM index_memories WHERE +tenant_id = ? AND id IN ({marks(len(ids))})",  # noqa: S608
                (tenant, *ids),
            )
        for item in change.added:
            (rowid,) = conn.execute(_UPSERT, _row(item, scope, dimension)).fetchone()
            rowids[item.memory.id] = int(rowid)
        # Then every memory of the conversation (the added ones too) takes on its tags.
        if change.container_tags is not None and change.metadata is not None:
            tags = codec.tags_json(change.container_tags)
            metadata = codec.metadata_json(change.metadata)
            conn.execute(
                f"UPDATE index_memories SET tags = ?, metadata = ? WHERE {conversation}"  # noqa: S608
                " AND (tags IS NOT ? OR metadata IS NOT ?)",
                (tags, metadata, tenant, cid, scope, tags, metadata),
            )
        conn.executemany(
            f"UPDATE index_memories SET context = ? WHERE {conversation} AND positions = ?",  # noqa: S608
            (
                (context, tenant, cid, scope, codec.dumps([position]))
                for position, context in change.context_updates
            ),
        )
    return rowids


_COLUMNS = (
    "id, tenant_id, conversation_id, scope, said_at_us, tags, metadata, vector, positions,"
    " created_at, updated_at, speaker, text, searched, context"
)
_UPSERT = (
    f"INSERT INTO index_memories ({_COLUMNS}) VALUES ({marks(15)})"  # noqa: S608 - constant
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.replace(" ", "").split(",")[1:])
    + " RETURNING rowid"
)


def _row(item: IndexedMemory, scope: str, dimension: int) -> tuple[Any, ...]:
    memory = item.memory
    return (
        memory.id,
        memory.tenant_id,
        memory.conversation_id,
        scope,
        codec.to_micros(memory.said_at),
        codec.tags_json(memory.container_tags),
        codec.metadata_json(memory.metadata),
        codec.vectors_blob(item.vectors, dimension),
        codec.dumps(list(memory.positions)),
        codec.to_text(memory.created_at),
        codec.to_text(memory.updated_at),
        memory.speaker,
        memory.text,
        # What the keyword side matches: the memory as search shows it.
        memory_text(memory),
        item.keyword_context,
    )


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()
