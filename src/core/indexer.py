"""The indexer: applies the store's pending index changes (its outbox) to the index.

The store is the source of truth. Every commit and every delete writes, in
its own transaction, the ``IndexChange`` the index must learn (an outbox
entry). The indexer applies those entries in order, retrying with backoff,
and marks them applied. Applying is idempotent (adds replace by memory id,
removals of absent ids are ignored), so an entry applied twice (a crash
between the apply and the mark, a replay at start) does no harm.

A request that wrote a change returns only once the change is applied: if
the index keeps failing, the request fails with ``StoreUnavailable`` while
the entry stays pending, and the same request sent again (then ``unchanged``)
drains it first. Whatever is pending at start is replayed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from attrs import define, field

from memoryd.core.errors import StoreUnavailable
from memoryd.core.ports import (
    ConversationChange,
    ConversationStore,
    IndexChange,
    MemoryIndex,
    PendingChange,
)

log = logging.getLogger(__name__)

#: Outbox entries read per batch while draining.
BATCH = 100
#: The most batches one drain reads (a bound: new entries keep coming while it runs).
MAX_BATCHES = 10_000


def index_change(change: ConversationChange) -> IndexChange:
    """What the index must learn of a committed ``ConversationChange`` (its outbox entry)."""
    conversation = change.conversation
    return IndexChange(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.conversation_id,
        added=change.added,
        removed_memory_ids=change.removed_memory_ids,
        container_tags=conversation.container_tags,
        metadata=dict(conversation.metadata),
        scope=conversation.scope,
        context_updates=change.context_updates,
    )


def deletion(tenant_id: str, conversation_id: str, removed: Sequence[str]) -> IndexChange:
    """The outbox entry of a deleted conversation: its memories leave the index."""
    return IndexChange(
        tenant_id=tenant_id, conversation_id=conversation_id, removed_memory_ids=tuple(removed)
    )


@define
class Indexer:
    """Applies pending outbox entries to the index, in order, with retries.

    One indexer serves every use case of an app, so that two requests never
    apply entries of the same conversation out of order (drains take turns).
    """

    outbox: ConversationStore
    index: MemoryIndex
    #: Tries per entry before a drain gives up (the entry stays pending).
    attempts: int = 3
    #: Seconds before the second try; doubled before each next one.
    backoff: float = 0.05
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _lock: asyncio.Lock = field(factory=asyncio.Lock, init=False)

    async def drain(self, tenant_id: str | None = None, conversation_id: str | None = None) -> int:
        """Apply the pending entries (of one conversation, given its tenant and id); how many.

        Raises ``StoreUnavailable`` if an entry cannot be applied after
        ``attempts`` tries; it and the entries after it stay pending.
        """
        applied = 0
        async with self._lock:
            for _ in range(MAX_BATCHES):
                pending = await self.outbox.pending_changes(
                    tenant_id=tenant_id, conversation_id=conversation_id, limit=BATCH
                )
                if not pending:
                    break
                for entry in pending:
                    await self._apply(entry)
                    await self.outbox.mark_applied([entry.seq])
                    applied += 1
        return applied

    async def replay(self) -> int:
        """Apply everything pending (at start); log, rather than raise, if the index fails."""
        try:
            applied = await self.drain()
        except StoreUnavailable as e:
            log.error("the search index could not apply the pending changes at start: %s", e)
            return 0
        if applied:
            log.info("applied %d pending index changes", applied)
        return applied

    async def _apply(self, entry: PendingChange) -> None:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                await self.index.apply(entry.change)
                return
            except Exception as e:  # any failure of the index is retried
                change = entry.change
                log.warning(
                    "index change %d (conversation %r) failed, try %d of %d: %r",
                    entry.seq,
                    change.conversation_id,
                    attempt,
                    self.attempts,
                    e,
                )
                if attempt == self.attempts:
                    raise StoreUnavailable(
                        "The change was stored, but the search index could not apply it "
                        f"after {self.attempts} tries; send the same request again to finish "
                        "it (the change stays pending, and is applied at the next start too)",
                        details={"conversationId": change.conversation_id, "pending": entry.seq},
                    ) from e
            await self.sleep(delay)
            delay *= 2


@define
class ReindexProgress:
    """How far a rebuild got: reported after each tenant."""

    tenant_id: str
    conversations: int
    memories: int
    #: 1-based: this tenant's place among those being rebuilt.
    done: int
    total: int


async def reindex(
    store: ConversationStore,
    index: MemoryIndex,
    *,
    tenant_id: str | None = None,
    progress: Callable[[ReindexProgress], None] | None = None,
) -> ReindexProgress | None:
    """Rebuild the index from the store: every tenant's, or one's; the last progress.

    Each tenant's memories are cleared from the index and added again from the
    store's snapshot; then the outbox is drained (an entry made before the
    snapshot applies again harmlessly, one made after brings the index up to date).
    """
    tenants = await store.tenant_ids() if tenant_id is None else [tenant_id]
    if tenant_id is None:
        await index.clear(None)
    last: ReindexProgress | None = None
    for done, tenant in enumerate(tenants, 1):
        if tenant_id is not None:
            await index.clear(tenant)
        conversations = memories = 0
        async for change in store.snapshot(tenant):
            await index.apply(change)
            conversations += 1
            memories += len(change.added)
        last = ReindexProgress(tenant, conversations, memories, done, len(tenants))
        if progress is not None:
            progress(last)
    await Indexer(store, index).drain()
    return last
