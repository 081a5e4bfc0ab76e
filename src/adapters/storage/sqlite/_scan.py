"""Dense scoring: an exact float32 scan; int8 and sign-bit first passes with exact rescoring.

Measured on the 2-core target (``bench/vector_scan.py``), a float32 scan is
bound by memory bandwidth: 1.5 GB must be read per query at 1M x 384. The
first pass reads int8 codes instead (a quarter of the bytes), block by block:
each block is widened to float32 in a small cache-resident buffer and
multiplied by the query with BLAS (numpy has no int8 BLAS, and its own int8
or float16 matmuls are several times slower than this). The best few hundred
are then rescored exactly in float32, so the results are exact cosine scores
and the ranking loses nothing measurable (recall@10 = 1.0 in the bench).

BLAS threads: OpenBLAS spins up its threads for every gemv on a block, which
on a busy 2-core machine makes a blocked scan 50x slower. The index pins
OpenBLAS to one thread (:func:`pin_blas_threads`) and splits large scans
across its own threads instead; where it cannot pin (another BLAS, another
OS), blocks are multiplied with ``einsum``, which never threads.

Sign bits (numpy >= 2.0): on large scans even the int8 pass is bound by
widening the codes to float32 (about 80 ms per million rows per core here).
Instead, each vector's signs are kept as bits (48 bytes at 384 dimensions)
and compared with the query's by XOR and popcount (Hamming distance, numpy's
``bitwise_count``) over word columns: a few milliseconds per million rows.
The rows nearest in Hamming distance (a few percent of the scan) are then
scored exactly in float32, gathered block by block; gathering a row costs
nearly as much in int8 as in float32 (it is bound by memory latency), so no
int8 stage sits between. Measured on real MiniLM embeddings, the nearest 1%
by a weighted Hamming distance (:func:`query_bits`) hold 99.8% of the
exact top 10, and the nearest 2% all of it.
With numpy < 2 (no popcount), large tenants use the int8 pass.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

F32: TypeAlias = npt.NDArray[np.float32]
I8: TypeAlias = npt.NDArray[np.int8]
U16: TypeAlias = npt.NDArray[np.uint16]
U64: TypeAlias = npt.NDArray[np.uint64]
Idx: TypeAlias = npt.NDArray[np.intp]

#: Whether numpy has a vectorised popcount (numpy >= 2.0); without it the bits pass is skipped.
HAS_POPCOUNT = hasattr(np, "bitwise_count")
#: Rows per block of the bits pass: its temporaries stay in cache.
BITS_BLOCK = 65536

#: Rows per block of the int8 pass: 2048 x 384 floats (3 MiB) stay in cache.
BLOCK = 2048

_pinned = False
_local = threading.local()


def pin_blas_threads(threads: int = 1) -> bool:
    """Limit OpenBLAS (numpy's BLAS) to ``threads`` threads; False if it is not found."""
    global _pinned  # noqa: PLW0603 - one process-wide BLAS setting
    if _pinned:
        return True
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {
                line.split(maxsplit=5)[-1].strip()
                for line in maps
                if "openblas" in line.lower() and ".so" in line
            }
    except OSError:
        return False
    names = (
        "scipy_openblas_set_num_threads64_",
        "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_",
        "openblas_set_num_threads",
    )
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter(threads)
                _pinned = True
                return True
    return False


def _buffers(dim: int) -> tuple[F32, I8]:
    """This thread's block buffers (allocated once, so their pages stay mapped)."""
    held: tuple[F32, I8] | None = getattr(_local, "buffers", None)
    if held is None or held[0].shape[1] != dim:
        held = (np.empty((BLOCK, dim), np.float32), np.empty((BLOCK, dim), np.int8))
        _local.buffers = held
    return held


def _block_scores(codes: I8, qs: F32, idx: Idx | None, span: tuple[int, int], out: F32) -> None:
    """Approximate scores of rows ``start:stop`` (of ``idx`` if given) into ``out``."""
    fbuf, ibuf = _buffers(codes.shape[1])
    start, stop = span
    for s in range(start, stop, BLOCK):
        e = min(s + BLOCK, stop)
        wide = fbuf[: e - s]
        if idx is None:
            np.copyto(wide, codes[s:e], casting="unsafe")
        else:
            np.take(codes, idx[s:e], axis=0, out=ibuf[: e - s])
            np.copyto(wide, ibuf[: e - s], casting="unsafe")
        if _pinned:
            np.matmul(wide, qs, out=out[s:e])
        else:
            np.einsum("ij,j->i", wide, qs, out=out[s:e])


def _in_halves(
    work: Callable[[tuple[int, int]], None],
    count: int,
    block: int,
    min_blocks: int,
    helper: Executor | None,
) -> None:
    """Run ``work`` over rows ``0..count``: with at least ``min_blocks`` blocks and a
    ``helper``, the second half (from a block boundary) runs on the helper at once."""
    if helper is None or count < min_blocks * block:
        work((0, count))
        return
    half = (count // 2 // block) * block
    other = helper.submit(work, (half, count))
    work((0, half))
    other.result()


def approx_scores(
    codes: I8,
    qs: F32,
    *,
    rows: int,
    idx: Idx | None,
    helper: Executor | None,
) -> F32:
    """int8 scores of the first ``rows`` rows, or of rows ``idx``; split with ``helper``."""
    count = rows if idx is None else len(idx)
    out = np.empty(count, np.float32)
    _in_halves(lambda span: _block_scores(codes, qs, idx, span, out), count, BLOCK, 8, helper)
    return out


def exact_scores(vectors: F32, q: F32, *, rows: int, idx: Idx | None) -> F32:
    """Exact cosine scores (rows are unit length) of the first ``rows`` rows, or rows ``idx``."""
    block = vectors[:rows] if idx is None else vectors[idx]
    out: F32 = block @ q
    return out


def top(scores: F32, k: int) -> Idx:
    """Positions of the ``k`` best scores, best first (ties: lower position first)."""
    n = len(scores)
    if k <= 0 or n == 0:
        return np.empty(0, np.intp)
    part = np.argpartition(scores, n - k)[n - k :] if k < n else np.arange(n, dtype=np.intp)
    order = np.lexsort((part, -scores[part]))
    result: Idx = part[order]
    return result


def unordered_top(scores: F32, k: int) -> Idx:
    """Positions of the ``k`` best scores, in no particular order.

    On large arrays a full ``argpartition`` costs more than the rest of the
    selection: a threshold taken from a strided sample (with a 2x margin)
    keeps a small superset, which is then partitioned exactly. If the sample
    misleads (too few pass), it falls back to the full partition.
    """
    n = len(scores)
    if k >= n:
        return np.arange(n, dtype=np.intp)
    if n >= _SAMPLE_FROM and k * _SAMPLE_STEP * 4 < n:
        sample = scores[::_SAMPLE_STEP]
        rank = min(len(sample) - 1, 2 * (k // _SAMPLE_STEP) + 8)
        threshold = np.partition(sample, len(sample) - 1 - rank)[len(sample) - 1 - rank]
        above: Idx = np.flatnonzero(scores >= threshold)
        if len(above) >= k:
            if len(above) == k:
                return above
            keep = np.argpartition(scores[above], len(above) - k)[len(above) - k :]
            chosen: Idx = above[keep]
            return chosen
    result: Idx = np.argpartition(scores, n - k)[n - k :]
    return result


_SAMPLE_FROM = 65_536
_SAMPLE_STEP = 32


class Quantiser:
    """Per-dimension int8 codes: ``code = round(x / scale)``, clipped to [-127, 127].

    The scale comes from the largest magnitude seen per dimension when the
    codes were (re)built; later rows beyond it are clipped, which only makes
    their first-pass score a little less precise (rescoring is exact).
    """

    def __init__(self, scale: F32) -> None:
        self.scale = scale
        self._inverse = (1.0 / scale).astype(np.float32)

    @classmethod
    def fit(cls, vectors: F32, rows: int) -> Quantiser:
        """Scales from the first ``rows`` rows (read block by block: no big temporaries)."""
        dim = vectors.shape[1]
        peak = np.zeros(dim, np.float32)
        for s in range(0, rows, BLOCK * 8):
            np.maximum(peak, np.abs(vectors[s : min(s + BLOCK * 8, rows)]).max(axis=0), out=peak)
        peak = np.where(peak > 0, peak, np.float32(1.0)).astype(np.float32)
        return cls((peak / 127.0).astype(np.float32))

    def encode(self, vectors: F32, out: I8) -> None:
        """Write the codes of ``vectors`` into ``out`` (same number of rows)."""
        for s in range(0, len(vectors), BLOCK * 8):
            e = min(s + BLOCK * 8, len(vectors))
            scaled = vectors[s:e] * self._inverse
            np.rint(scaled, out=scaled)
            np.clip(scaled, -127, 127, out=scaled)
            np.copyto(out[s:e], scaled, casting="unsafe")

    def query(self, q: F32) -> F32:
        """The query weighted by the scales: ``codes @ query(q)`` approximates ``x @ q``."""
        out: F32 = (q * self.scale).astype(np.float32)
        return out


def as_query(vector: Any, dim: int) -> F32:
    """The query as a contiguous float32 unit vector of the index's dimension."""
    q = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(-1))
    if q.shape[0] != dim:
        raise ValueError(f"expected a {dim}-dimensional query vector, got {q.shape[0]}")
    norm = float(np.linalg.norm(q))
    if norm > 0 and abs(norm - 1.0) > 1e-6:
        q = (q / np.float32(norm)).astype(np.float32)
    return q


# --- sign bits ------------------------------------------------------------------------------------


def bit_words(dim: int) -> int:
    """How many 64-bit words hold the signs of a ``dim``-dimensional vector."""
    return (dim + 63) // 64


def sign_bits(vectors: F32) -> U64:
    """The signs of each row as bits, shape ``(rows, words)`` (bit set: component > 0)."""
    rows, dim = vectors.shape
    words = bit_words(dim)
    packed = np.zeros((rows, words * 8), np.uint8)
    packed[:, : (dim + 7) // 8] = np.packbits(vectors > 0, axis=1)
    out: U64 = packed.view(np.uint64)
    return out


def query_bits(q: F32) -> U64:
    """The query's sign bits and, second row, the bits of its larger half of components.

    The distance counts a disagreement on one of the query's larger
    components twice (:func:`hamming`): the components that weigh most in the
    dot product weigh most in the distance. On real MiniLM embeddings this
    lets a shortlist of 1% of the rows hold 99.8% of the exact top 10, where
    the plain Hamming distance needs 4%.
    """
    magnitude = np.abs(q)
    large = magnitude >= np.median(magnitude)
    both: U64 = sign_bits(np.stack([q, large.astype(np.float32)]))
    return both


def _block_hamming(bits: U64, qbits: U64, idx: Idx | None, span: tuple[int, int], out: U16) -> None:
    """Weighted Hamming distances of rows ``start:stop`` (of ``idx`` if given) into ``out``."""
    start, stop = span
    signs, large = qbits[0][:, None], qbits[1][:, None]
    for s in range(start, stop, BITS_BLOCK):
        e = min(s + BITS_BLOCK, stop)
        words = bits[:, s:e] if idx is None else bits[:, idx[s:e]]
        differ = np.bitwise_xor(words, signs)
        counts = np.bitwise_count(differ)
        counts += np.bitwise_count(np.bitwise_and(differ, large, out=differ))
        np.add.reduce(counts, axis=0, dtype=np.uint16, out=out[s:e])


def hamming(bits: U64, qbits: U64, *, rows: int, idx: Idx | None, helper: Executor | None) -> U16:
    """Weighted Hamming distances (:func:`query_bits`) of the first ``rows`` rows, or of ``idx``.

    ``bits`` is stored word-major, shape ``(words, capacity)``, so that each
    step reads contiguous columns.
    """
    count = rows if idx is None else len(idx)
    out = np.empty(count, np.uint16)
    _in_halves(
        lambda span: _block_hamming(bits, qbits, idx, span, out), count, BITS_BLOCK, 2, helper
    )
    return out


def nearest_by_distance(distances: U16, k: int) -> Idx:
    """Positions of (at least) the ``k`` smallest distances: all those up to the k-th's.

    A histogram finds the k-th distance in one pass; rows tied with it are
    kept too, so the result may be a little longer than ``k``.
    """
    n = len(distances)
    if k >= n:
        return np.arange(n, dtype=np.intp)
    counts = np.bincount(distances)
    threshold = int(np.searchsorted(np.cumsum(counts), k))
    found: Idx = np.flatnonzero(distances <= threshold)
    return found


def _block_gathered(vectors: F32, q: F32, idx: Idx, span: tuple[int, int], out: F32) -> None:
    fbuf, _ = _buffers(vectors.shape[1])
    start, stop = span
    for s in range(start, stop, BLOCK):
        e = min(s + BLOCK, stop)
        rows = fbuf[: e - s]
        np.take(vectors, idx[s:e], axis=0, out=rows)
        if _pinned:
            np.matmul(rows, q, out=out[s:e])
        else:
            np.einsum("ij,j->i", rows, q, out=out[s:e])


def gathered_scores(vectors: F32, q: F32, idx: Idx, helper: Executor | None) -> F32:
    """Exact scores of rows ``idx``, gathered block by block (no full copy); split with ``helper``.

    Gathering is bound by memory latency, so two threads help even when the
    arithmetic is trivial.
    """
    count = len(idx)
    out = np.empty(count, np.float32)
    _in_halves(lambda span: _block_gathered(vectors, q, idx, span, out), count, BLOCK, 4, helper)
    return out
