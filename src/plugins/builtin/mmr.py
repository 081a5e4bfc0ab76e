"""The built-in ``mmr`` reranker: maximal marginal relevance, for diverse results.

MMR picks, one at a time, the candidate with the best
``lambda * relevance - (1 - lambda) * redundancy``, where *relevance* is the
fused score (min-max scaled to [0, 1] over the pool) and *redundancy* the
highest cosine similarity to any candidate already picked. Near-duplicates of
a better result sink; ``lambda_ = 1`` keeps the fused order.

A memory's vector is the **mean of its pieces' unit vectors**, scaled back to
unit length: it stands for everything the memory says, where its best piece
only stands for what matched the query. A candidate without vectors (an index
that keeps none) counts as redundant with nothing.

Off until ``rerankers`` names it (``rerankers = ["mmr"]``) and a search asks
(``rerank: true``); ``[plugins.mmr] lambda_ = 0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from attrs import field, frozen

from memoryd.core.contain import BlockingReranker
from memoryd.core.ports import RerankCandidate
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

PLUGIN_NAME = "mmr"


@frozen
class MmrSettings:
    """``[plugins.mmr]``."""

    #: Weight of relevance against diversity, in [0, 1]: 1 is the fused order, 0 only diversity.
    lambda_: float = field(
        default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )


def memory_vector(vectors: Any) -> Any:
    """The memory's unit vector: the mean of its pieces' rows, renormalised (None if none)."""
    import numpy as np

    if vectors is None:
        return None
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.size == 0:
        return None
    mean = rows.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else None


def _scaled(values: Sequence[float]) -> list[float]:
    low, high = min(values), max(values)
    if high <= low:
        return [1.0] * len(values)
    return [(v - low) / (high - low) for v in values]


@frozen
class MmrReranker:
    """Reorders the pool by maximal marginal relevance (scores kept)."""

    lambda_: float = 0.5
    name: str = "mmr"

    def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        """A plain function (numpy work): memoryd runs it off the event loop."""
        import numpy as np

        if len(pool) < 2:
            return list(pool)
        relevance = _scaled([c.score for c in pool])
        vectors = [memory_vector(c.vectors) for c in pool]
        dims = {v.shape[0] for v in vectors if v is not None}
        if len(dims) != 1:  # no vectors, or vectors of two models: nothing to compare
            return list(pool)
        (dim,) = dims
        matrix = np.stack([v if v is not None else np.zeros(dim, np.float32) for v in vectors])
        similarity = matrix @ matrix.T
        redundancy = np.full(len(pool), -np.inf)
        remaining = list(range(len(pool)))
        order: list[int] = []
        while remaining:
            best = max(
                remaining,
                key=lambda i: (
                    self.lambda_ * relevance[i]
                    - (1 - self.lambda_) * (max(float(redundancy[i]), 0.0) if order else 0.0),
                    -i,
                ),
            )
            order.append(best)
            remaining.remove(best)
            redundancy = np.maximum(redundancy, similarity[best])
        return [pool[i] for i in order]


@hookimpl
def memoryd_plugin_settings() -> type[MmrSettings]:
    return MmrSettings


@hookimpl
def memoryd_register_rerankers(context: PluginContext[MmrSettings]) -> Sequence[BlockingReranker]:
    return [MmrReranker(lambda_=context.config.lambda_)]
