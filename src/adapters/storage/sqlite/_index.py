"""MemoryIndex: in-memory vectors and filters per tenant, FTS5 for keywords.

The SQLite file is the source of truth; this is its searchable view, rebuilt
from the file at open. Dense search is an exact cosine scan over the rows
that pass the filter (the filter is applied inside the scan: the scan only
reads the passing rows), with a sign-bits prefilter for large tenants. The
keyword side is FTS5's bm25, restricted to the tenant in the MATCH and to the
filter by the same in-memory attributes. Numeric work runs in the index's own
threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from memoryd.adapters.storage.sqlite import _codec as codec
from memoryd.adapters.storage.sqlite._conversations import chunks, marks
from memoryd.adapters.storage.sqlite._db import Database
from memoryd.adapters.storage.sqlite._fts import KEYWORD_BUDGET, TermPlanner, keyword_hits
from memoryd.adapters.storage.sqlite._scan import F32, as_query, pin_blas_threads
from memoryd.adapters.storage.sqlite._tenant import (
    BITS_FROM,
    COARSE_MIN,
    EXACT_BELOW,
    Prefilter,
    TenantIndex,
)
from memoryd.core.errors import ConfigurationError, StoreUnavailable
from memoryd.core.model import Memory
from memoryd.core.ports import Candidate, IndexChange, IndexQuery

#: Tenants with at least this many memories get prefilter codes (sign bits, or int8).
QUANTISE_FROM = 16_384
T = TypeVar("T")

#: The fewest prefilter candidates rescored exactly (at least 4 x k).
RESCORE = 400


class SqliteMemoryIndex:
    """The searchable view of the memories in one SQLite file."""

    def __init__(
        self,
        db: Database,
        *,
        dimension: int,
        quantise_from: int = QUANTISE_FROM,
        rescore: int = RESCORE,
        exact_below: int = EXACT_BELOW,
        bits_from: int = BITS_FROM,
        coarse_min: int = COARSE_MIN,
        prefilter: Prefilter = "bits",
        scan_threads: int = 2,
        keyword_budget: int = KEYWORD_BUDGET,
    ) -> None:
        self.db = db
        self.planner = TermPlanner(keyword_budget)
        self.dimension = dimension
        self.quantise_from = quantise_from
        self.rescore = rescore
        self.exact_below = exact_below
        self.bits_from = bits_from
        self.coarse_min = coarse_min
        self.prefilter = prefilter
        self.loaded = False
        self._closed = False
        self._tenants: dict[str, TenantIndex] = {}
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()
        self._compute = ThreadPoolExecutor(2, thread_name_prefix="memoryd-index")
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
            for tenant_id, count in conn.execute(
                "SELECT tenant_id, count(*) FROM memories GROUP BY tenant_id"
            ):
                tenants[tenant_id] = self._new_tenant(capacity=_next_power_of_two(count))
            loader = _Loader(tenants, self.dimension, str(self.db.path))
            cursor = conn.execute(
                "SELECT tenant_id, id, conversation_id, said_at_us, tags, metadata, vector"
                " FROM memories"
            )
            while rows := cursor.fetchmany(_REBUILD_BATCH):
                loader.load(rows)
        finally:
            conn.execute("COMMIT")
        for tenant in tenants.values():
            tenant.quantise_if_large()
        return tenants

    def _new_tenant(self, capacity: int = 0) -> TenantIndex:
        return TenantIndex(
            self.dimension,
            capacity=capacity,
            quantise_from=self.quantise_from,
            rescore=self.rescore,
            exact_below=self.exact_below,
            bits_from=self.bits_from,
            coarse_min=self.coarse_min,
            prefilter=self.prefilter,
        )

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
        """Make a committed change searchable."""
        if self.loaded:
            await self._run(self._apply, change)
        with self._lock:
            self._generations[change.tenant_id] = self._generations.get(change.tenant_id, 0) + 1

    def _apply(self, change: IndexChange) -> None:
        tenant = self._tenant(change.tenant_id, create=bool(change.added))
        if tenant is None:
            return
        with tenant.lock:
            for memory_id in change.removed_memory_ids:
                tenant.remove(memory_id)
            tenant.reserve(len(change.added))
            for item in change.added:
                memory = item.memory
                tenant.add(
                    memory_id=memory.id,
                    conversation_id=memory.conversation_id,
                    vector=as_query(item.vector, self.dimension),
                    said_at_us=codec.to_micros(memory.said_at),
                    tags=memory.container_tags,
                    metadata=memory.metadata,
                )
            tenant.retag(change.conversation_id, change.container_tags, change.metadata)
            tenant.quantise_if_large()

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
        keywords: Future[list[str]] | None = None
        if query.text.strip():
            # Other tenants' rows never reach us; extra rows make up for those the
            # filter drops or that are committed but not yet applied.
            limit = query.k * (3 if query.filter.is_restrictive else 1) + 16
            tenant_id, text = query.filter.tenant_id, query.text
            total = self.total()
            share = tenant.n / total if total else 1.0
            keywords = self.db.submit_read(
                lambda conn: keyword_hits(
                    conn, text, tenant_id, limit, planner=self.planner, total=total, share=share
                )
            )
        try:
            return await self._run(self._search, tenant, q, query, keywords)
        finally:
            if keywords is not None and not keywords.done():
                keywords.cancel()

    def _search(
        self,
        tenant: TenantIndex,
        q: F32,
        query: IndexQuery,
        keywords: Future[list[str]] | None,
    ) -> list[Candidate]:
        with tenant.lock:
            rows = tenant.candidates(query.filter)
            slots, sims = tenant.dense(q, query.k, rows, self._helper)
            dense_ids = [tenant.ids[s] for s in slots]
        found = keywords.result() if keywords is not None else []
        dense_rank = {mid: i for i, mid in enumerate(dense_ids)}
        similarity = dict(zip(dense_ids, sims, strict=True))
        keyword_ids: list[str] = []
        if found:
            with tenant.lock:
                hits = [(mid, tenant.slots[mid]) for mid in found if mid in tenant.slots]
                ok = tenant.passing([slot for _, slot in hits], query.filter)
                hits = [hit for hit, passed in zip(hits, ok, strict=True) if passed][: query.k]
                missing = [(mid, slot) for mid, slot in hits if mid not in similarity]
                for (mid, _), sim in zip(
                    missing, tenant.similarities([s for _, s in missing], q), strict=True
                ):
                    similarity[mid] = sim
            keyword_ids = [mid for mid, _ in hits]
        keyword_rank = {mid: i for i, mid in enumerate(keyword_ids)}
        return [
            Candidate(
                memory_id=mid,
                # Unit vectors in float32 can give 1.0000001: keep cosine in range.
                similarity=min(1.0, max(-1.0, float(similarity[mid]))),
                dense_rank=dense_rank.get(mid),
                keyword_rank=keyword_rank.get(mid),
            )
            for mid in dict.fromkeys([*dense_ids, *keyword_ids])
        ]

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
                        f"SELECT {codec.MEMORY_COLUMNS} FROM memories"  # noqa: S608
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

    def generation(self, tenant_id: str) -> int:
        """Changes on every apply to the tenant (for the search cache)."""
        return self._generations.get(tenant_id, 0)

    # --- introspection (bench, health) -----------------------------------------------------------

    def total(self) -> int:
        """How many memories are searchable, all tenants together."""
        with self._lock:
            return sum(t.n for t in self._tenants.values())

    def size(self, tenant_id: str) -> int:
        """How many memories of the tenant are searchable."""
        tenant = self._tenant(tenant_id, create=False)
        return tenant.n if tenant is not None else 0


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
            groups = []
            for _, mid, _, _, tags, metadata, blob in mine:
                if len(blob) != self.width:
                    raise ConfigurationError(
                        f"Memory {mid} in {self.path} has a {len(blob) // 4}-dimensional "
                        f"vector, not {self.width // 4}: the file is inconsistent. Restore it "
                        "from a backup or set data_dir to a new directory.",
                    )
                group = known.get((tags, metadata))
                if group is None:
                    group = tenant.groups.acquire(codec.loads(tags), codec.loads(metadata))
                    known[(tags, metadata)] = group
                else:
                    tenant.groups.acquire_group(group)
                groups.append(group)
            tenant.load(
                [r[1] for r in mine],
                [r[2] for r in mine],
                b"".join(r[6] for r in mine),
                [r[3] for r in mine],
                groups,
            )


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()
