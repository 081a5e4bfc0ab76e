"""Containment of per-request plugin code: deadlines, threads for blocking code, checked answers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from attrs import define, evolve

from memoryd.core.contain import ContainedPartHandler, ContainedReranker, Limits, is_reordering
from memoryd.core.model import ContentPart, Memory
from memoryd.core.parts import part_text
from memoryd.core.ports import RerankCandidate

IMAGE = ContentPart.image("https://x/a.png")


class Blocking:
    """A handler whose to_text is a plain, blocking function."""

    def accepts(self, part: ContentPart) -> bool:
        return True

    def to_text(self, part: ContentPart) -> str | None:
        time.sleep(0.3)
        return "slow caption"


async def test_a_blocking_handler_runs_in_a_thread_and_the_loop_goes_on() -> None:
    handler = ContainedPartHandler(Blocking(), "slow", Limits(timeout=5))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    assert await part_text([handler], IMAGE) == "slow caption"
    ticker.cancel()
    assert ticks > 10  # the loop kept running while the handler slept


class Stubborn:
    """A handler that ignores cancellation for a while."""

    def accepts(self, part: ContentPart) -> bool:
        return True

    async def to_text(self, part: ContentPart) -> str | None:
        for _ in range(50):
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue
        return "late"


async def test_a_handler_that_ignores_cancellation_does_not_hold_the_request() -> None:
    handler = ContainedPartHandler(Stubborn(), "stubborn", Limits(timeout=0.05))
    started = time.monotonic()
    assert await handler.to_text(IMAGE) is None
    assert time.monotonic() - started < 0.3
    await asyncio.sleep(0.6)  # let it finish, so that the loop closes clean


class Picky:
    def accepts(self, part: ContentPart) -> bool:
        raise ValueError("cannot tell")

    async def to_text(self, part: ContentPart) -> str | None:
        return "never"


async def test_accepts_that_raises_means_no(caplog: pytest.LogCaptureFixture) -> None:
    handler = ContainedPartHandler(Picky(), "picky")
    assert await part_text([handler], IMAGE) is None
    assert await part_text([handler], IMAGE) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "plugin 'picky'" in warnings[0].getMessage()


def scored(memory_id: str, score: float) -> RerankCandidate:
    memory = Memory(
        id=memory_id,
        tenant_id="t",
        conversation_id="c",
        text=memory_id,
        positions=(0,),
        said_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    return RerankCandidate(memory=memory, similarity=score, score=score)


@define
class Rescoring:
    name: str = "rescoring"

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        return [evolve(r, score=1 - r.score) for r in reversed(pool)]


async def test_a_reranker_may_reorder_and_rescore_but_not_add_or_drop() -> None:
    given = [scored("a", 0.9), scored("b", 0.5)]
    answer = await ContainedReranker(Rescoring(), "p").rerank("q", given)
    assert [(r.memory.id, r.score) for r in answer] == [("b", 0.5), ("a", pytest.approx(0.1))]
    assert not is_reordering(given, given[:1])
    assert not is_reordering(given, [given[0], given[0]])
    assert not is_reordering(given, [*given, scored("c", 0.1)])
    assert not is_reordering(given, "ab")
