"""One tenant's in-memory search state: vectors, codes, said_at, groups, id maps.

A very large tenant (``ScanTuning.float_below`` rows or more) is *compact*: it
keeps int8 codes and sign bits in memory instead of float32 vectors (a quarter
of the bytes), scores its shortlist by the codes, and reads the float32
vectors of the best few hundred rows from the file (``read_vectors``) for
their exact scores.

A memory has one row per embedded piece of its text (most have one); it
scores the best of its rows. Slots ``0..n-1`` are always the live rows: a
delete moves the last row into the hole, so a scan never meets a dead row
and needs no alive mask.
Capacity doubles with ``np.empty``, so capacity not yet written costs
address space, not RSS.

Not thread-safe by itself: the index holds ``lock`` around every call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import datetime
from typing import Literal, TypeAlias

import numpy as np
from attrs import frozen

from memoryd.adapters.storage.sqlite._codec import to_micros
from memoryd.adapters.storage.sqlite._groups import Groups, Mask
from memoryd.adapters.storage.sqlite._rowids import SlotsByRowid
from memoryd.adapters.storage.sqlite._scan import (
    F32,
    HAS_POPCOUNT,
    I8,
    U64,
    Idx,
    Quantiser,
    approx_scores,
    bit_words,
    exact_scores,
    gathered_scores,
    hamming,
    nearest_by_distance,
    query_bits,
    sign_bits,
    top,
    unordered_top,
)
from memoryd.core.filters import MemoryFilter
from memoryd.core.model import Scalar

Prefilter: TypeAlias = Literal["bits", "int8"]

#: Smallest capacity a tenant starts with.
MIN_CAPACITY = 64
#: Below this many rows to score, an exact float32 scan is as fast as the int8 pass.
EXACT_BELOW = 8192
#: From this many rows to score, a sign-bits pass picks the rows that are scored exactly.
BITS_FROM = 8192
#: The share of the scanned rows the sign-bits pass keeps (at least ``COARSE_MIN``).
COARSE_SHARE = 0.015
COARSE_MIN = 2048
#: Tenants with at least this many rows get prefilter codes (sign bits, or int8).
QUANTISE_FROM = 16_384
#: The fewest prefilter candidates rescored exactly (at least 4 x k).
RESCORE = 400
#: Tenants with at least this many rows keep int8 codes instead of float32 vectors in memory.
FLOAT_BELOW = 1 << 19
#: Rows of a compact tenant's shortlist rescored with float32 read from the file; the
#: rest keep their int8 estimate (within 0.0021 of the cosine on 166k MiniLM rows).
FILE_RESCORE = 32
#: Rows a compact tenant stages as float32 before it fits its int8 scales (at open).
FIT_ROWS = 65_536

#: Reads rows' float32 vectors from the file: SQLite rowids -> each memory's vectors blob
#: (rowids no longer there are left out).
VectorReader: TypeAlias = Callable[[Sequence[int]], Mapping[int, bytes]]


@frozen(kw_only=True)
class ScanTuning:
    """How the dense side scans a tenant; the defaults suit 384 dimensions on 2 cores.

    Tenants with ``quantise_from`` rows or more get a prefilter. With
    ``prefilter = "bits"`` (the default; numpy >= 2), scans of at least
    ``bits_from`` rows compare sign bits first and score exactly only the
    nearest ``coarse_share`` of them (at least ``coarse_min``); with
    ``"int8"`` (or numpy < 2), scans of at least ``exact_below`` rows get an
    int8 first pass whose best ``rescore`` (at least 4 x k) are rescored
    exactly. Tenants of ``float_below`` rows or more are compact (see the
    module): sign bits, then int8 codes for the nearest, then float32 read from
    the file for the best ``file_rescore`` of the best ``rescore`` (at least 4 x
    k) by their codes.
    """

    quantise_from: int = QUANTISE_FROM
    rescore: int = RESCORE
    exact_below: int = EXACT_BELOW
    bits_from: int = BITS_FROM
    coarse_share: float = COARSE_SHARE
    coarse_min: int = COARSE_MIN
    prefilter: Prefilter = "bits"
    float_below: int = FLOAT_BELOW
    file_rescore: int = FILE_RESCORE


DEFAULT_TUNING = ScanTuning()


class TenantIndex:
    """The searchable memories of one tenant."""

    def __init__(
        self,
        dim: int,
        *,
        capacity: int = MIN_CAPACITY,
        tuning: ScanTuning = DEFAULT_TUNING,
        read_vectors: VectorReader | None = None,
        compact: bool = False,
    ) -> None:
        self.dim = dim
        self.lock = threading.Lock()
        #: Bumped by every change; a search that dropped the lock checks it.
        self.version = 0
        self.tuning = tuning
        self.n = 0
        capacity = max(capacity, MIN_CAPACITY)
        self.read_vectors = read_vectors
        #: Float32 rows; None in a compact tenant (codes and bits instead).
        self.vectors: F32 | None = None
        self.codes: I8 | None = None
        #: A compact tenant's rows loaded before its scales were fitted.
        self._staged: list[tuple[int, F32]] = []
        self._capacity = capacity
        #: Sign bits, word-major (``bits[word, slot]``), built with the codes.
        self.bits: U64 | None = None
        self.quantiser: Quantiser | None = None
        self.said_at = np.empty(capacity, np.int64)
        self.group = np.empty(capacity, np.int32)
        self.conversation = np.empty(capacity, np.int32)
        #: The SQLite rowid of each row's memory (what the FTS5 index returns).
        self.rowid = np.empty(capacity, np.int64)
        #: The memory id of each SQLite rowid (the keyword side's hits, without a join);
        #: a compact tenant maps rowids to slots instead (``slot_by_rowid``).
        self.by_rowid: dict[int, str] = {}
        self.slot_by_rowid: SlotsByRowid | None = None
        #: The memory id of each row.
        self.ids: list[str] = []
        #: The rows of each memory.
        self.rows: dict[str, list[int]] = {}
        self.groups = Groups()
        self._conversations: dict[str, int] = {}
        if compact and read_vectors is not None:
            self.slot_by_rowid = SlotsByRowid(capacity)
            self.codes = np.empty((capacity, dim), np.int8)
            if tuning.prefilter == "bits" and HAS_POPCOUNT:
                self.bits = np.empty((bit_words(dim), capacity), np.uint64)
        else:
            self.vectors = np.empty((capacity, dim), np.float32)

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def compact(self) -> bool:
        """Whether the rows' float32 vectors live in the file only (codes in memory)."""
        return self.vectors is None

    @property
    def memories(self) -> int:
        """How many memories (not rows) are searchable."""
        return len(self.rows)

    # --- changes ---------------------------------------------------------------------------------

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more rows (capacity doubles)."""
        need = self.n + extra
        if need <= self.capacity:
            return
        capacity = self.capacity
        while capacity < need:
            capacity *= 2
        n = self.n
        self._capacity = capacity
        if self.vectors is not None:
            vectors = np.empty((capacity, self.dim), np.float32)
            vectors[:n] = self.vectors[:n]
            self.vectors = vectors
        for name in ("said_at", "group", "conversation", "rowid"):
            old = getattr(self, name)
            new = np.empty(capacity, old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)
        if self.codes is not None:
            # The scales stay: fitted on at least QUANTISE_FROM rows, they hold for
            # later ones (a rare clipped component only blurs a first-pass score).
            codes = np.empty((capacity, self.dim), np.int8)
            codes[:n] = self.codes[:n]
            self.codes = codes
        if self.bits is not None:
            bits = np.empty((self.bits.shape[0], capacity), np.uint64)
            bits[:, :n] = self.bits[:, :n]
            self.bits = bits
        self.version += 1

    def add(
        self,
        *,
        memory_id: str,
        rowid: int,
        conversation_id: str,
        vectors: F32,
        said_at_us: int,
        tags: Sequence[str],
        metadata: Mapping[str, Scalar],
    ) -> None:
        """Add a memory with one row per vector (replacing it, if the id is already here)."""
        self.remove(memory_id)
        count = len(vectors)
        self.reserve(count)
        start, stop = self.n, self.n + count
        group = self.groups.acquire(tags, metadata, count=count)
        if self.vectors is not None:
            self.vectors[start:stop] = vectors
        self.said_at[start:stop] = said_at_us
        self.group[start:stop] = group
        self.conversation[start:stop] = self._conversation(conversation_id)
        self.rowid[start:stop] = rowid
        if self.slot_by_rowid is not None:
            self.slot_by_rowid.set(rowid, start)
        else:
            self.by_rowid[rowid] = memory_id
        self.ids.extend([memory_id] * count)
        self.rows[memory_id] = list(range(start, stop))
        self.n = stop
        self._encode(start, vectors)
        self.version += 1

    def _encode(self, start: int, vectors: F32) -> None:
        """The codes and bits of rows ``start:`` (the float32 ``vectors``), where kept."""
        stop = start + len(vectors)
        if self.codes is not None:
            if self.quantiser is None:  # a compact tenant still loading: fitted later
                self._staged.append((start, vectors.copy()))
            else:
                self.quantiser.encode(vectors, self.codes[start:stop])
        if self.bits is not None:
            self.bits[:, start:stop] = sign_bits(vectors).T

    def remove(self, memory_id: str) -> bool:
        """Remove a memory's rows; the last rows move into their slots."""
        rows = self.rows.pop(memory_id, None)
        if rows is None:
            return False
        if self.slot_by_rowid is not None:
            self.slot_by_rowid.drop(int(self.rowid[rows[0]]))
        else:
            self.by_rowid.pop(int(self.rowid[rows[0]]), None)
        # Highest first: a row of this memory never moves into a hole of its own.
        for slot in sorted(rows, reverse=True):
            self.groups.release(int(self.group[slot]))
            last = self.n - 1
            if slot != last:
                moved = self.ids[last]
                if self.vectors is not None:
                    self.vectors[slot] = self.vectors[last]
                if self.codes is not None:
                    self.codes[slot] = self.codes[last]
                if self.bits is not None:
                    self.bits[:, slot] = self.bits[:, last]
                self.said_at[slot] = self.said_at[last]
                self.group[slot] = self.group[last]
                self.conversation[slot] = self.conversation[last]
                self.rowid[slot] = self.rowid[last]
                if self.slot_by_rowid is not None:
                    self.slot_by_rowid.moved(int(self.rowid[last]), last, slot)
                self.ids[slot] = moved
                others = self.rows[moved]
                others[others.index(last)] = slot
            self.ids.pop()
            self.n = last
        self.version += 1
        return True

    def retag(
        self,
        conversation_id: str,
        tags: Sequence[str] | None,
        metadata: Mapping[str, Scalar] | None,
    ) -> None:
        """Give every memory of the conversation these tags and/or this metadata."""
        code = self._conversations.get(conversation_id)
        if code is None or (tags is None and metadata is None):
            return
        slots = np.flatnonzero(self.conversation[: self.n] == code)
        if len(slots) == 0:
            return
        # Memories of one conversation nearly always share one group; handle any mix.
        by_group: dict[int, list[int]] = {}
        for slot in slots.tolist():
            by_group.setdefault(int(self.group[slot]), []).append(slot)
        for old, members in by_group.items():
            old_tags, old_meta = self.groups.attributes(old)
            new = self.groups.acquire(
                tags if tags is not None else old_tags,
                metadata if metadata is not None else old_meta,
                count=len(members),
            )
            self.group[members] = new
            self.groups.release(old, count=len(members))
        self.version += 1

    def load(
        self,
        memory_ids: Sequence[str],
        *,
        rowids: Sequence[int],
        conversation_ids: Sequence[str],
        vectors: bytes,
        said_at_us: Sequence[int],
        groups: Sequence[int],
    ) -> None:
        """Append rows read from the file (rebuild): ``vectors`` is their float32 bytes.

        A memory with several pieces appears once per row. The groups are
        already acquired (once per row). Call reserve first.
        """
        start, count = self.n, len(memory_ids)
        stop = start + count
        rows = np.frombuffer(vectors, np.float32).reshape(count, self.dim)
        if self.vectors is not None:
            self.vectors[start:stop] = rows
        else:
            self._encode(start, rows)
            if sum(len(v) for _, v in self._staged) >= FIT_ROWS:
                self._fit_staged()
        self.said_at[start:stop] = said_at_us
        self.group[start:stop] = groups
        self.conversation[start:stop] = [self._conversation(c) for c in conversation_ids]
        self.rowid[start:stop] = rowids
        if self.slot_by_rowid is not None:
            self.slot_by_rowid.set_many(zip(rowids, range(start, stop), strict=True))
        else:
            self.by_rowid.update(zip(rowids, memory_ids, strict=True))
        self.ids.extend(memory_ids)
        for slot, memory_id in enumerate(memory_ids, start):
            self.rows.setdefault(memory_id, []).append(slot)
        self.n = stop
        self.version += 1

    def _fit_staged(self) -> None:
        """Fit a compact tenant's int8 scales on its staged rows, and encode them."""
        staged = np.concatenate([v for _, v in self._staged]) if self._staged else None
        if staged is None or self.codes is None:
            return
        self.quantiser = Quantiser.fit(staged, len(staged))
        for start, rows in self._staged:
            self.quantiser.encode(rows, self.codes[start : start + len(rows)])
        self._staged = []

    def make_compact(self) -> None:
        """Keep int8 codes and sign bits, not float32 vectors (``read_vectors`` reads those)."""
        if self.vectors is None or self.read_vectors is None:
            return
        if self.quantiser is None:
            self.quantiser = Quantiser.fit(self.vectors, self.n)
        if self.codes is None:
            codes = np.empty((self.capacity, self.dim), np.int8)
            self.quantiser.encode(self.vectors[: self.n], codes[: self.n])
            self.codes = codes
        if self.bits is None and self.tuning.prefilter == "bits" and HAS_POPCOUNT:
            self._bits_from_vectors(self.vectors)
        slots = SlotsByRowid(self.capacity)
        slots.set_many((rowid, self.rows[mid][0]) for rowid, mid in self.by_rowid.items())
        self.slot_by_rowid, self.by_rowid = slots, {}
        self.vectors = None
        self.version += 1

    def _bits_from_vectors(self, vectors: F32) -> None:
        bits = np.empty((bit_words(self.dim), self.capacity), np.uint64)
        step = 65536
        for s in range(0, self.n, step):
            e = min(s + step, self.n)
            bits[:, s:e] = sign_bits(vectors[s:e]).T
        self.bits = bits

    def quantise_if_large(self) -> None:
        """Build the int8 codes once the tenant is big enough for them to pay.

        A tenant that reached ``float_below`` rows becomes compact; a compact
        one still loading fits its scales now.
        """
        if self.vectors is None:
            self._fit_staged()
            return
        if self.n >= self.tuning.float_below and self.read_vectors is not None:
            self.make_compact()
            return
        if self.codes is not None or self.bits is not None or self.n < self.tuning.quantise_from:
            return
        if self.tuning.prefilter == "bits" and HAS_POPCOUNT:
            self._bits_from_vectors(self.vectors)
            return
        self.quantiser = Quantiser.fit(self.vectors, self.n)
        codes = np.empty((self.capacity, self.dim), np.int8)
        self.quantiser.encode(self.vectors[: self.n], codes[: self.n])
        self.codes = codes

    def _conversation(self, conversation_id: str) -> int:
        return self._conversations.setdefault(conversation_id, len(self._conversations))

    # --- search ----------------------------------------------------------------------------------

    def hits_by_id(self, hits: Sequence[tuple[int, float]]) -> list[tuple[str, float]]:
        """Keyword hits keyed by SQLite rowid, as memory ids (other tenants' rows dropped)."""
        with self.lock:
            if self.slot_by_rowid is not None:
                slots = self.slot_by_rowid
                found = ((slots.get(rowid), score) for rowid, score in hits)
                return [(self.ids[slot], score) for slot, score in found if slot >= 0]
            known = self.by_rowid
            return [(known[rowid], score) for rowid, score in hits if rowid in known]

    def candidates(self, memory_filter: MemoryFilter) -> Idx | None:
        """The slots passing the filter, or None when every slot does."""
        n = self.n
        group_ok = self.groups.mask(memory_filter)
        mask: Mask | None = None
        if group_ok is not None:
            mask = group_ok[self.group[:n]]
        if memory_filter.after is not None or memory_filter.before is not None:
            said = self.said_at[:n]
            if mask is None:
                mask = np.ones(n, np.bool_)
            if memory_filter.after is not None:
                mask &= said >= _micros(memory_filter.after)
            if memory_filter.before is not None:
                mask &= said < _micros(memory_filter.before)
        if mask is None:
            return None
        found: Idx = np.flatnonzero(mask)
        return found

    def passing(self, slots: Sequence[int], memory_filter: MemoryFilter) -> list[bool]:
        """Whether each slot passes the filter (for keyword hits)."""
        if not slots:
            return []
        at = np.asarray(slots, np.intp)
        ok = np.ones(len(at), np.bool_)
        group_ok = self.groups.mask(memory_filter)
        if group_ok is not None:
            ok &= group_ok[self.group[at]]
        said = self.said_at[at]
        if memory_filter.after is not None:
            ok &= said >= _micros(memory_filter.after)
        if memory_filter.before is not None:
            ok &= said < _micros(memory_filter.before)
        passed: list[bool] = ok.tolist()
        return passed

    def dense(
        self, q: F32, k: int, idx: Idx | None, helper: Executor | None
    ) -> tuple[list[int], list[float]]:
        """The ``k`` best slots (of ``idx``, or all) by cosine, with their exact scores."""
        rows = self.n if idx is None else len(idx)
        if rows == 0 or k <= 0:
            return [], []
        if self.vectors is None:
            return self._compact_dense(q, k, idx, rows, helper)
        if self.bits is not None and rows >= self.tuning.bits_from:
            # Sign bits pick the rows worth an exact score.
            qbits = query_bits(q)
            distances = hamming(self.bits, qbits, rows=self.n, idx=idx, helper=helper)
            keep = max(
                self.tuning.coarse_min,
                int(rows * self.tuning.coarse_share),
                self.tuning.rescore,
                4 * k,
            )
            coarse = nearest_by_distance(distances, keep)
            chosen = coarse if idx is None else idx[coarse]
            exact = gathered_scores(self.vectors, q, chosen, helper)
            best = top(exact, k)
            return chosen[best].tolist(), exact[best].tolist()
        if self.codes is None or self.quantiser is None or rows < self.tuning.exact_below:
            scores = (
                exact_scores(self.vectors, q, rows=self.n, idx=None)
                if idx is None
                else gathered_scores(self.vectors, q, idx, helper)
            )
            best = top(scores, k)
            slots = best if idx is None else idx[best]
            return slots.tolist(), scores[best].tolist()
        approx = approx_scores(
            self.codes, self.quantiser.query(q), rows=self.n, idx=idx, helper=helper
        )
        shortlist = unordered_top(approx, max(self.tuning.rescore, 4 * k))
        chosen = shortlist if idx is None else idx[shortlist]
        exact = exact_scores(self.vectors, q, rows=self.n, idx=chosen)
        best = top(exact, k)
        return chosen[best].tolist(), exact[best].tolist()

    def _compact_dense(
        self, q: F32, k: int, idx: Idx | None, rows: int, helper: Executor | None
    ) -> tuple[list[int], list[float]]:
        """Sign bits (large scans), then int8 codes, then float32 from the file for the best."""
        assert self.codes is not None
        assert self.quantiser is not None
        chosen: Idx = np.arange(self.n, dtype=np.intp) if idx is None else idx
        if self.bits is not None and rows >= self.tuning.bits_from:
            distances = hamming(self.bits, query_bits(q), rows=self.n, idx=idx, helper=helper)
            keep = max(
                self.tuning.coarse_min,
                int(rows * self.tuning.coarse_share),
                self.tuning.rescore,
                4 * k,
            )
            chosen = chosen[nearest_by_distance(distances, keep)]
        approx = approx_scores(
            self.codes, self.quantiser.query(q), rows=self.n, idx=chosen, helper=helper
        )
        order = top(approx, max(self.tuning.rescore, 4 * k))  # best first, by the codes
        shortlist, scores = chosen[order], approx[order]
        # The best few get exact scores from the file; the rest keep their estimate.
        head = min(len(shortlist), self.tuning.file_rescore)
        scores[:head] = self._file_scores(shortlist[:head], q)
        best = top(scores, k)
        best = best[np.isfinite(scores[best])]  # rows whose memory left the file meanwhile
        return shortlist[best].tolist(), scores[best].tolist()

    def _estimates(self, slots: Idx, q: F32) -> F32:
        """A compact tenant's int8 estimates of the cosine of ``slots``."""
        assert self.codes is not None
        assert self.quantiser is not None
        scores: F32 = self.codes[slots].astype(np.float32) @ self.quantiser.query(q)
        return scores

    def _file_rows(self, slots: Idx) -> F32:
        """The unit float32 vectors of ``slots``, read from the file (NaN rows: gone from it)."""
        assert self.read_vectors is not None
        rowids = self.rowid[slots]
        blobs = self.read_vectors(sorted(set(rowids.tolist())))
        out = np.full((len(slots), self.dim), np.nan, np.float32)
        width = self.dim
        for i, (slot, rowid) in enumerate(zip(slots.tolist(), rowids.tolist(), strict=True)):
            blob = blobs.get(rowid)
            if blob is None:
                continue
            piece = self.rows[self.ids[slot]].index(slot)
            row = np.frombuffer(blob, np.float32, count=width, offset=piece * width * 4)
            out[i] = row
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def _file_scores(self, slots: Idx, q: F32) -> F32:
        scores: F32 = self._file_rows(slots) @ q
        scores[np.isnan(scores)] = -np.inf
        return scores

    def _row_vectors(self, memory_id: str) -> F32:
        slots = np.asarray(self.rows[memory_id], np.intp)
        if self.vectors is not None:
            return self.vectors[slots]
        return self._file_rows(slots)

    def piece_vectors(self, memory_id: str) -> F32:
        """A copy of the memory's pieces' unit vectors, one row per piece (hold ``lock``)."""
        return self._row_vectors(memory_id)

    def similarities(self, memory_ids: Sequence[str], q: F32) -> dict[str, float]:
        """Each memory's cosine (the best of its rows); memories gone are left out.

        Exact; in a compact tenant, its int8 estimate (see ``FILE_RESCORE``).
        """
        known = [mid for mid in memory_ids if mid in self.rows]
        if not known:
            return {}
        slots = [np.asarray(self.rows[mid], np.intp) for mid in known]
        every = np.concatenate(slots)
        scores: F32 = (
            self.vectors[every] @ q if self.vectors is not None else self._estimates(every, q)
        )
        found: dict[str, float] = {}
        at = 0
        for mid, own in zip(known, slots, strict=True):
            best = float(scores[at : at + len(own)].max())
            at += len(own)
            if np.isfinite(best):
                found[mid] = best
        return found


def _micros(value: datetime) -> int:
    return to_micros(value)
