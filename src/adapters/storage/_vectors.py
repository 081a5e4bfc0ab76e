"""Piece vectors as every storage backend keeps them: float32 rows of unit length."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def unit_rows(vectors: Any, dimension: int | None) -> npt.NDArray[np.float32]:
    """One vector or a 2-D array of them, as float32 rows of unit length.

    Raises ``ValueError`` for no rows, or rows of another ``dimension``.
    """
    rows = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError("expected at least one vector")
    if dimension is not None and rows.shape[1] != dimension:
        raise ValueError(
            f"expected {dimension}-dimensional vectors, got {rows.shape[1]} dimensions"
        )
    norms = np.linalg.norm(rows, axis=1, keepdims=True).astype(np.float32)
    if np.any(np.abs(norms - 1.0) > 1e-6):
        rows = (rows / np.where(norms > 0, norms, np.float32(1.0))).astype(np.float32)
    return np.ascontiguousarray(rows, dtype=np.float32)
