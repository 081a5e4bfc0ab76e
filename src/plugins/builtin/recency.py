"""The built-in ``recency`` reranker: newer memories first, other things equal.

Each candidate's fused score is multiplied by ``(1 - weight) + weight * decay``,
where ``decay = 0.5 ** (age / half_life_days)`` halves every half-life of
age. The age is counted from the newest memory in the pool by default
(``relative_to = "newest"``), so a store of old conversations is not all
"old"; ``relative_to = "now"`` counts it from the current time instead. A
multiplier, unlike a sum, keeps the scale of either fusion method (weighted
scores in [0, 1], RRF's small ones). The score returned is the new one.

Off until ``rerankers`` names it and a search asks (``rerank: true``);
``[plugins.recency] half_life_days = 30``, ``weight = 0.3``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import attrs
from attrs import field, frozen

from memoryd.core.ports import RerankCandidate, Reranker
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

PLUGIN_NAME = "recency"

_DAY = 86_400.0


@frozen
class RecencySettings:
    """``[plugins.recency]``."""

    #: Days after which a memory's recency factor has halved.
    half_life_days: float = field(default=30.0, validator=attrs.validators.gt(0))
    #: Share of the score that recency can take away, in [0, 1] (0: off; 1: all of it).
    weight: float = field(
        default=0.3, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    #: Age from the pool's newest memory, or from the current time.
    relative_to: Literal["newest", "now"] = "newest"


@frozen
class RecencyReranker:
    """Rescores by the fused score times a half-life decay of the memory's ``said_at``."""

    half_life_days: float = 30.0
    weight: float = 0.3
    relative_to: Literal["newest", "now"] = "newest"
    name: str = "recency"

    def factor(self, said_at: datetime, reference: datetime) -> float:
        age_days = max((reference - said_at).total_seconds(), 0.0) / _DAY
        decay: float = 0.5 ** (age_days / self.half_life_days)
        return (1 - self.weight) + self.weight * decay

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        if not pool:
            return []
        if self.relative_to == "now":
            reference = datetime.now(UTC)
        else:
            reference = max(c.memory.said_at for c in pool)
        rescored = [
            attrs.evolve(c, score=c.score * self.factor(c.memory.said_at, reference)) for c in pool
        ]
        order = sorted(range(len(pool)), key=lambda i: (-rescored[i].score, i))
        return [rescored[i] for i in order]


@hookimpl
def memoryd_plugin_settings() -> type[RecencySettings]:
    return RecencySettings


@hookimpl
def memoryd_register_rerankers(context: PluginContext[RecencySettings]) -> Sequence[Reranker]:
    config = context.config
    return [
        RecencyReranker(
            half_life_days=config.half_life_days,
            weight=config.weight,
            relative_to=config.relative_to,
        )
    ]
