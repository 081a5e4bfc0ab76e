"""Latency summaries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from attrs import frozen


def per_second(count: float, seconds: float) -> float:
    """``count`` over ``seconds`` (0 for no time)."""
    return count / seconds if seconds else 0.0


@frozen
class Latency:
    """Percentiles of a set of latencies, in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Latency:
        if not samples:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        a = np.asarray(samples, dtype=np.float64)
        p50, p95, p99 = (float(np.percentile(a, p)) for p in (50, 95, 99))
        return cls(len(a), p50, p95, p99, float(a.mean()))
