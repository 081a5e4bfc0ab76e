"""Queued ingest: the worker that builds, embeds and commits the memories of queued writes.

With the setting ``queued_ingest`` a write answers once its messages are
durable (:meth:`~memoryd.core.ingest.IngestService.ingest` commits them with
``Conversation.pending_from``: the position from which memories are still to
be built). The store is the queue (``IngestQueue``): this worker reads the
queued conversations, builds the memories of their messages from
``pending_from`` on (parts, filters, embedding), and commits them with
``complete_queued`` only if the conversation is still at the revision it read.
That commit leaves ``pending_from`` at the end of the messages (nothing left to
build); once the index has applied the memories, a second commit clears it, so
``done`` always means searchable.
A write meanwhile (append, replace, new tags) changes the revision: the work
is thrown away and done again on the new state, so no message is left out,
no memory of a replaced message is kept, and none is made twice.

A crash loses nothing: what is queued is in the store, and the worker reads
it again at start. A failure (the model unavailable, a plugin raising) is
logged without message text and retried with backoff, that conversation
alone: the others go on. A few conversations are worked on at once, so that
the embedder batches their texts together. The conversation stays ``queued`` until it is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import attrs
from attrs import define, field

from memoryd.core.errors import MemorydError
from memoryd.core.indexer import Indexer
from memoryd.core.ingest import IngestService, embed_drafts
from memoryd.core.memories import build_memories, context_updates
from memoryd.core.model import Conversation
from memoryd.core.ports import ConversationChange, IngestQueue, QueuedWork
from memoryd.core.queue_signal import QueueSignal
from memoryd.core.reading import PartReader
from memoryd.core.screening import screen_contexts, screen_drafts

log = logging.getLogger(__name__)

#: Queued conversations read per look at the store.
BATCH = 100


@define
class IngestWorker:
    """Builds the memories of queued conversations, oldest first, a few at a time."""

    ingest: IngestService
    queue: IngestQueue
    signal: QueueSignal
    indexer: Indexer
    #: True (``queued_ingest`` on): keep waiting for work. False: stop once the queue
    #: is empty (what a run with the setting on left queued is finished at start).
    forever: bool = True
    #: Seconds between looks at the store when nothing wakes the worker.
    poll: float = 5.0
    #: Conversations worked on at once (their texts share the embedder's batches).
    concurrency: int = 4
    #: Seconds before a failed conversation is tried again; doubled after each failure.
    backoff: float = 0.5
    max_backoff: float = 60.0
    monotonic: Callable[[], float] = time.monotonic
    #: Failed conversations (our id): when each may be tried again, and its next delay.
    _retry: dict[str, tuple[float, float]] = field(factory=dict, init=False)
    _index_behind: bool = field(default=False, init=False)

    async def run(self) -> None:
        """Work until cancelled (or, unless ``forever``, until nothing is queued)."""
        while True:
            try:
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store itself failing: look again later
                log.warning("queued ingest: could not read the queue: %s", _why(e))
                busy = False
            if busy:
                continue
            if not self.forever and not self._retry and not await self._queued_any():
                return
            await self.signal.wait(self._next_wait())

    async def run_once(self) -> bool:
        """Do every queued conversation that is due; whether any was done or tried."""
        if self._index_behind:
            # Nothing is marked done while the index is behind: this raises until it is not.
            await self.indexer.drain()
            self._index_behind = False
        now = self.monotonic()
        works = await self.queue.queued(limit=BATCH)
        live = {w.id for w in works}
        for stale in [k for k in self._retry if k not in live]:
            del self._retry[stale]  # done by a synchronous write, or deleted
        due = [w for w in works if self._retry.get(w.id, (0.0, 0.0))[0] <= now]
        for first in range(0, len(due), self.concurrency):
            await asyncio.gather(*map(self._attempt, due[first : first + self.concurrency]))
        return bool(due)

    async def _attempt(self, work: QueuedWork) -> None:
        try:
            done = await self.process(work)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            delay = self._retry.get(work.id, (0.0, self.backoff))[1]
            self._retry[work.id] = (self.monotonic() + delay, min(delay * 2, self.max_backoff))
            log.warning(
                "queued ingest of conversation %r (tenant %r) failed, trying again in %.1f s: %s",
                work.conversation_id,
                work.tenant_id,
                delay,
                _why(e),
            )
            return
        self._retry.pop(work.id, None)
        if done:
            await self._drain(work.tenant_id, work.conversation_id)

    async def process(self, work: QueuedWork) -> bool:
        """Build, embed and commit the memories of one queued conversation.

        False: the conversation changed (or went) since ``work`` was read, and
        nothing was written; the next look at the queue has its new state.
        """
        svc = self.ingest
        conversation = await svc.store.get_conversation(
            work.tenant_id, work.conversation_id, scope=work.scope
        )
        if conversation is None or conversation.id != work.id or conversation.pending_from is None:
            return False
        start = conversation.pending_from
        messages = conversation.messages
        if start >= len(messages):
            # Built and committed, and the index has applied them: now it is done.
            return await self.queue.complete_queued(work, _finished(conversation))
        extra, _ = await PartReader(svc.part_handlers, svc.fetcher).texts(
            messages, max(0, start - svc.policy.context_before), report_from=len(messages)
        )
        drafts = build_memories(messages, start=start, policy=svc.policy, extra_text=extra)
        updates = (
            context_updates(messages, start=start, policy=svc.policy, extra_text=extra)
            if start > 0
            else []
        )
        updates = await screen_contexts(svc.filters, updates, drafts)
        drafts = await screen_drafts(svc.filters, drafts)
        added = await embed_drafts(svc.embedder, conversation, drafts, now=svc.clock.now())
        if not added and not updates:
            return await self.queue.complete_queued(work, _finished(conversation))
        # Still queued, with nothing left to build: it is done once the index has the
        # memories (the drain after this), so that ``done`` always means searchable.
        built = attrs.evolve(conversation, pending_from=len(messages))
        return await self.queue.complete_queued(
            work,
            ConversationChange(
                kind="unchanged",
                conversation=built,
                new_messages=(),
                added=added,
                removed_memory_ids=(),
                context_updates=tuple(updates),
            ),
        )

    async def _drain(self, tenant_id: str | None, conversation_id: str | None) -> None:
        try:
            await self.indexer.drain(tenant_id, conversation_id)
        except MemorydError as e:  # stored; the outbox keeps it: the next look applies it
            self._index_behind = True
            log.warning("queued ingest: the search index is behind: %s", _why(e))

    async def _queued_any(self) -> bool:
        try:
            return bool(await self.queue.queued(limit=1))
        except Exception:
            return True

    def _next_wait(self) -> float:
        if not self._retry:
            return self.poll
        soonest = min(at for at, _ in self._retry.values()) - self.monotonic()
        return max(0.01, min(self.poll, soonest))


def _finished(conversation: Conversation) -> ConversationChange:
    """The change that marks a conversation whose memories are all indexed as done."""
    return ConversationChange(
        kind="unchanged",
        conversation=attrs.evolve(conversation, pending_from=None),
        new_messages=(),
        added=(),
        removed_memory_ids=(),
    )


def _why(e: BaseException) -> str:
    """What to log of a failure: our errors' messages (which never quote text), else the type."""
    if isinstance(e, MemorydError):
        return f"{type(e).__name__}: {e.message}"
    return type(e).__name__
