"""Conformance checks any part handler or reranker can run in its own tests.

``await check_part_handler(handler)`` feeds it every junk part of
:func:`~memoryd.testing.samples.corrupt_parts` (and any you add): ``accepts``
must answer a bool, quickly, and ``to_text`` must answer ``str``, a
:class:`~memoryd.core.part_results.PartText` or None, never raise, and never
block the event loop: an ``async def`` that does blocking work stalls every
request, so the check times how long the loop is held while one runs. A plain
``def`` is run in a worker thread, as memoryd runs it, and is not timed.

``await check_reranker(reranker)`` gives it pools of 0, 1 and several
candidates: its answer must be a reordering (a permutation of what it was
given: none added, dropped or repeated), and it must leave the pool it was
given as it was.

Both raise :class:`NotConforming` listing every problem found, and return
what they saw, for further assertions.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from attrs import define, field

from memoryd.core.contain import is_reordering
from memoryd.core.model import ContentPart
from memoryd.core.part_results import PartText
from memoryd.core.ports import RerankCandidate
from memoryd.testing.samples import corrupt_parts, sample_candidates

#: How long ``accepts``, or an ``async`` method between two awaits, may hold the loop.
MAX_BLOCK = 0.5
#: How long one call may take at most before the check gives up on it.
MAX_CALL = 30.0


class NotConforming(AssertionError):
    """A handler or reranker broke a rule; the message lists each problem."""


@define
class _Heartbeat:
    """Ticks on the loop; the longest gap between ticks is how long the loop was held."""

    interval: float = 0.01
    longest: float = 0.0
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.longest = max(self.longest, now - last - self.interval)
            last = now

    async def __aenter__(self) -> _Heartbeat:
        self._task = asyncio.ensure_future(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.sleep(self.interval * 2)  # one last tick sees the end of a stall
        assert self._task is not None
        self._task.cancel()


async def _call(method: Callable[..., Any], *args: Any) -> Any:
    """``method(*args)`` as memoryd calls it: awaited, or in a worker thread if it is plain."""
    if inspect.iscoroutinefunction(method):
        call: Awaitable[Any] = method(*args)
    else:
        call = asyncio.to_thread(method, *args)
    return await asyncio.wait_for(call, MAX_CALL)


def _name(obj: object) -> str:
    return str(getattr(obj, "name", None) or type(obj).__name__)


async def check_part_handler(
    handler: object,
    parts: Mapping[str, ContentPart] | None = None,
    *,
    max_block: float = MAX_BLOCK,
) -> dict[str, str | PartText | None]:
    """Every junk part (``parts`` beside :func:`corrupt_parts`) through ``handler``.

    Returns each accepted part's answer by name; raises :class:`NotConforming`.
    """
    problems: list[str] = []
    answers: dict[str, str | PartText | None] = {}
    cases = {**corrupt_parts(), **(parts or {})}
    for name, part in cases.items():
        started = time.monotonic()
        try:
            accepted = handler.accepts(part)  # type: ignore[attr-defined]
        except Exception as exc:
            problems.append(f"{name}: accepts() raised {type(exc).__name__}: {exc}")
            continue
        held = time.monotonic() - started
        if held > max_block:
            problems.append(f"{name}: accepts() held the event loop {held:.2f} s (keep it quick)")
        if not isinstance(accepted, bool):
            problems.append(f"{name}: accepts() returned {type(accepted).__name__}, not bool")
        if not accepted:
            continue
        method = handler.to_text  # type: ignore[attr-defined]
        async with _Heartbeat() as beat:
            try:
                answer = await _call(method, part)
            except TimeoutError:
                problems.append(f"{name}: to_text() took over {MAX_CALL:g} s")
                continue
            except Exception as exc:
                problems.append(f"{name}: to_text() raised {type(exc).__name__}: {exc}")
                continue
        if inspect.iscoroutinefunction(method) and beat.longest > max_block:
            problems.append(
                f"{name}: to_text() held the event loop {beat.longest:.2f} s: do blocking "
                "work in a plain def (run in a thread) or asyncio.to_thread"
            )
        if not (answer is None or isinstance(answer, str | PartText)):
            problems.append(f"{name}: to_text() returned {type(answer).__name__}")
        elif isinstance(answer, PartText):
            inner: object = answer.text  # attrs does not check it
            if not isinstance(inner, str | None):
                problems.append(f"{name}: to_text() returned PartText of {type(inner).__name__}")
        answers[name] = answer
    if problems:
        raise NotConforming(f"part handler {_name(handler)}:\n  " + "\n  ".join(problems))
    return answers


def _pools(pool: Sequence[RerankCandidate] | None) -> dict[str, list[RerankCandidate]]:
    full = list(pool) if pool is not None else sample_candidates()
    without_vectors = [RerankCandidate(c.memory, c.similarity, c.score, vectors=None) for c in full]
    return {
        "an empty pool": [],
        "one candidate": full[:1],
        "the pool": full,
        "the pool reversed": list(reversed(full)),
        "the pool without vectors": without_vectors,
    }


async def check_reranker(
    reranker: object,
    pool: Sequence[RerankCandidate] | None = None,
    *,
    query: str = "golden retriever Max",
    max_block: float = MAX_BLOCK,
) -> dict[str, list[RerankCandidate]]:
    """``reranker`` over pools made of ``pool`` (default :func:`sample_candidates`).

    Returns its answer for each pool by name; raises :class:`NotConforming`.
    """
    problems: list[str] = []
    answers: dict[str, list[RerankCandidate]] = {}
    for name, given in _pools(pool).items():
        before = [(c.memory.id, c.score) for c in given]
        method = reranker.rerank  # type: ignore[attr-defined]
        async with _Heartbeat() as beat:
            try:
                answer = await _call(method, query, given)
            except TimeoutError:
                problems.append(f"{name}: rerank() took over {MAX_CALL:g} s")
                continue
            except Exception as exc:
                problems.append(f"{name}: rerank() raised {type(exc).__name__}: {exc}")
                continue
        if inspect.iscoroutinefunction(method) and beat.longest > max_block:
            problems.append(f"{name}: rerank() held the event loop {beat.longest:.2f} s")
        if [(c.memory.id, c.score) for c in given] != before:
            problems.append(f"{name}: rerank() changed the pool it was given (return a new list)")
        if not is_reordering(given, answer):
            ids: object = (
                [getattr(getattr(c, "memory", None), "id", c) for c in answer]
                if isinstance(answer, list | tuple)
                else type(answer).__name__
            )
            problems.append(
                f"{name}: rerank() returned {ids}, not a reordering of "
                f"{[c.memory.id for c in given]} (add, drop or repeat none)"
            )
            continue
        answers[name] = list(answer)
    if problems:
        raise NotConforming(f"reranker {_name(reranker)}:\n  " + "\n  ".join(problems))
    return answers
