"""Small numpy helpers shared by the embedders."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

#: A batch of embeddings: float32, shape (n, dimension).
FloatMatrix: TypeAlias = np.ndarray[tuple[int, int], np.dtype[np.float32]]
#: One embedding: float32, shape (dimension,).
FloatVector: TypeAlias = np.ndarray[tuple[int], np.dtype[np.float32]]

_TINY = 1e-12


def l2_normalise(rows: np.ndarray[Any, Any]) -> FloatMatrix:
    """``rows`` as float32 with each row scaled to unit length (zero rows stay zero)."""
    matrix = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    out: FloatMatrix = (matrix / np.maximum(norms, _TINY)).astype(np.float32, copy=False)
    return out


def empty_matrix(dimension: int) -> FloatMatrix:
    """A (0, dimension) float32 matrix: the answer for no texts."""
    return np.empty((0, dimension), dtype=np.float32)
