"""A MemoryIndex that fails on purpose: fault injection between the commit and the apply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import define, field

from memoryd.core.errors import StoreUnavailable
from memoryd.core.model import Memory
from memoryd.core.ports import Candidate, IndexChange, IndexQuery


@define
class FlakyIndex:
    """Wraps a real ``MemoryIndex``; its next ``failures`` applies raise and change nothing.

    ``applied`` records every change the inner index was given; ``failed`` every
    change that was refused.
    """

    inner: Any
    failures: int = 0
    applied: list[IndexChange] = field(factory=list)
    failed: list[IndexChange] = field(factory=list)

    def fail_next(self, times: int) -> None:
        self.failures = times

    async def apply(self, change: IndexChange) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.failed.append(change)
            raise StoreUnavailable("injected: the index refused the change")
        await self.inner.apply(change)
        self.applied.append(change)

    async def clear(self, tenant_id: str | None = None) -> None:
        await self.inner.clear(tenant_id)

    async def check(self) -> None:
        await self.inner.check()

    async def search(self, query: IndexQuery) -> list[Candidate]:
        found: list[Candidate] = await self.inner.search(query)
        return found

    async def fetch(self, tenant_id: str, memory_ids: Sequence[str]) -> list[Memory]:
        found: list[Memory] = await self.inner.fetch(tenant_id, memory_ids)
        return found

    async def generation(self, tenant_id: str) -> int:
        return int(await self.inner.generation(tenant_id))

    def __getattr__(self, name: str) -> Any:
        # What the inner index offers beyond the port (size, total, close...), and the
        # optional ``keyword_search`` (``KeywordFirstIndex``) only where the inner index
        # has it: an index without it (Elasticsearch) runs both sides in ``search``.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
