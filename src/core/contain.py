"""Containment of plugin code that runs per request: part handlers, rerankers and filters.

A plugin's handler or reranker that raises, hangs or returns too much must
not fail the request: each call has a deadline, its failures are logged with
the plugin's name (once per kind of failure, then at debug level), and the
request carries on as if it were not installed, except that a failing filter
keeps out the draft or result it was screening (a filter guards what goes in
and out: memoryd passes on nothing it could not screen). A handler's or reranker's
method may be a plain function instead of a coroutine function: it then runs
in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from attrs import define, field, frozen

from memoryd.core.model import ContentPart, Memory, MemoryDraft
from memoryd.core.part_results import HandlerFailure, PartText
from memoryd.core.ports import PartHandler, RerankCandidate, Reranker

log = logging.getLogger("memoryd.plugins")


class BlockingPartHandler(Protocol):
    """A part handler whose ``to_text`` is a plain function: it runs in a worker thread."""

    def accepts(self, part: ContentPart) -> bool: ...

    def to_text(self, part: ContentPart) -> str | PartText | None: ...


class BlockingReranker(Protocol):
    """A reranker whose ``rerank`` is a plain function: it runs in a worker thread."""

    @property
    def name(self) -> str: ...

    def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> Sequence[RerankCandidate]: ...


@frozen
class Limits:
    """What per-request plugin code may take."""

    #: Seconds one call may take (``plugin_timeout``).
    timeout: float = 10.0
    #: Characters a part handler's text may have; longer text is cut (``plugin_max_chars``).
    max_chars: int = 20_000


class _Failed(Exception):
    """The call failed in a way already reported; the caller goes on without it."""


@define
class _Reporter:
    """Logs a plugin's failures: the first of each kind as a warning, later ones at debug."""

    plugin: str
    what: str
    #: What the request does without the call's answer.
    outcome: str = "request goes on without it"
    seen: set[str] = field(factory=set)

    def report(self, kind: str, message: str, *, exc: BaseException | None = None) -> None:
        first = kind not in self.seen
        self.seen.add(kind)
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "plugin %r: %s %s; the %s%s",
            self.plugin,
            self.what,
            message,
            self.outcome,
            "" if not first else " (further failures of this kind are logged at debug level)",
            exc_info=exc if first and exc is not None else None,
            extra={"plugin": self.plugin},
        )


def _drain(task: asyncio.Future[Any]) -> None:
    # A timed-out call is abandoned; read its outcome so that asyncio does not report it.
    if not task.cancelled():
        task.exception()


async def _call(reporter: _Reporter, seconds: float, method: Callable[..., Any], *args: Any) -> Any:
    """``method(*args)`` within ``seconds``; a plain function runs in a thread."""
    if inspect.iscoroutinefunction(method):
        call: Awaitable[Any] = method(*args)
    else:
        call = asyncio.to_thread(method, *args)
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        # Cancelled, not awaited: code that ignores cancellation must not hang us too.
        task.cancel()
        task.add_done_callback(_drain)
        reporter.report("timeout", f"took longer than {seconds:g} s (plugin_timeout)")
        raise _Failed(f"it took longer than {seconds:g} s (setting plugin_timeout)")
    if task.cancelled():
        reporter.report("cancelled", "was cancelled")
        raise _Failed("it was cancelled")
    exc = task.exception()
    if exc is not None:
        reporter.report(
            f"raised {type(exc).__name__}", f"raised {type(exc).__name__}: {exc}", exc=exc
        )
        # The client is told the kind only: the message may quote what the part holds.
        raise _Failed(f"it raised {type(exc).__name__} (the server's log has more)")
    return task.result()


@define
class ContainedPartHandler:
    """A plugin's part handler behind a deadline, with its text capped."""

    handler: PartHandler | BlockingPartHandler
    plugin: str
    limits: Limits = field(factory=Limits)
    _reporter: _Reporter = field(init=False)

    def __attrs_post_init__(self) -> None:
        self._reporter = _Reporter(self.plugin, f"part handler {type(self.handler).__name__}")

    def accepts(self, part: ContentPart) -> bool:
        """The handler's answer; False if it raises (``accepts`` must be quick: it is not timed)."""
        try:
            return bool(self.handler.accepts(part))
        except Exception as exc:
            self._reporter.report(
                f"accepts raised {type(exc).__name__}",
                f"accepts() raised {type(exc).__name__}: {exc}",
                exc=exc,
            )
            return False

    async def to_text(self, part: ContentPart) -> str | None:
        answer = await self.read(part)
        return answer.text if isinstance(answer, PartText) else None

    async def read(self, part: ContentPart) -> PartText | HandlerFailure:
        """The handler's text and note (:class:`PartText`), or why the call failed."""
        try:
            answer = await _call(self._reporter, self.limits.timeout, self.handler.to_text, part)
        except _Failed as failed:
            return HandlerFailure(str(failed))
        if answer is None or isinstance(answer, str):
            answer = PartText(answer)
        if not isinstance(answer, PartText) or not isinstance(answer.text, str | None):
            kind = type(answer).__name__
            self._reporter.report("not text", f"returned {kind}, not str, PartText or None")
            return HandlerFailure(f"its handler returned {kind}, not text")
        text = answer.text
        if text is not None and len(text) > self.limits.max_chars:
            self._reporter.report(
                "too long",
                f"returned {len(text)} characters; kept the first {self.limits.max_chars} "
                "(plugin_max_chars)",
            )
            cut = f"its text was cut from {len(text)} to {self.limits.max_chars} characters "
            cut += "(setting plugin_max_chars)"
            note = f"{answer.note}; {cut}" if answer.note else cut
            return PartText(text[: self.limits.max_chars], note)
        return answer


@define
class ContainedReranker:
    """A plugin's reranker behind a deadline; an answer that is not a reordering is ignored."""

    reranker: Reranker | BlockingReranker
    plugin: str
    limits: Limits = field(factory=Limits)
    _reporter: _Reporter = field(init=False)

    def __attrs_post_init__(self) -> None:
        self._reporter = _Reporter(self.plugin, f"reranker {self.name!r}")

    @property
    def name(self) -> str:
        return str(getattr(self.reranker, "name", None) or type(self.reranker).__name__)

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        given = list(pool)
        if not given:
            return given
        try:
            answer = await _call(
                self._reporter, self.limits.timeout, self.reranker.rerank, query, given
            )
        except _Failed:
            return given
        if not is_reordering(given, answer):
            self._reporter.report(
                "not a reordering",
                "returned results that are not a reordering of those it was given "
                "(a reranker may not add, drop or repeat any)",
            )
            return given
        return list(answer)


@define
class ContainedDraftFilter:
    """A plugin's ingest filter behind a deadline; a failure rejects the draft."""

    filter: object
    plugin: str
    limits: Limits = field(factory=Limits)
    _reporter: _Reporter = field(init=False)

    def __attrs_post_init__(self) -> None:
        self._reporter = _Reporter(self.plugin, f"ingest filter {self.name!r}", "draft is left out")

    @property
    def name(self) -> str:
        return _name_of(self.filter)

    async def on_draft(self, draft: MemoryDraft) -> MemoryDraft | None:
        method = self.filter.on_draft  # type: ignore[attr-defined]
        try:
            answer = await _call(self._reporter, self.limits.timeout, method, draft)
        except _Failed:
            return None
        if answer is not None and not isinstance(answer, MemoryDraft):
            self._reporter.report("not a draft", f"returned {type(answer).__name__}, not a draft")
            return None
        return answer


@define
class ContainedResultFilter:
    """A plugin's result filter behind a deadline; a failure drops the result."""

    filter: object
    plugin: str
    limits: Limits = field(factory=Limits)
    _reporter: _Reporter = field(init=False)

    def __attrs_post_init__(self) -> None:
        self._reporter = _Reporter(
            self.plugin, f"result filter {self.name!r}", "result is left out"
        )

    @property
    def name(self) -> str:
        return _name_of(self.filter)

    async def on_result(self, memory: Memory) -> Memory | None:
        method = self.filter.on_result  # type: ignore[attr-defined]
        try:
            answer = await _call(self._reporter, self.limits.timeout, method, memory)
        except _Failed:
            return None
        if answer is not None and (not isinstance(answer, Memory) or answer.id != memory.id):
            self._reporter.report(
                "not the memory", "returned something other than the memory or None"
            )
            return None
        return answer


def _name_of(obj: object) -> str:
    return str(getattr(obj, "name", None) or type(obj).__name__)


def is_reordering(given: Sequence[RerankCandidate], answer: object) -> bool:
    """Whether ``answer`` is a list or tuple of the same memories as ``given``, in any order.

    Scores may change (a reranker may rescore); memories may not be added, dropped or repeated.
    """
    if not isinstance(answer, list | tuple) or len(answer) != len(given):
        return False
    if not all(isinstance(item, RerankCandidate) for item in answer):
        return False
    return sorted(r.memory.id for r in answer) == sorted(r.memory.id for r in given)
