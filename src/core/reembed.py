"""Use case: re-embed every memory under another embedding model (``memoryd reindex --embedder``).

Each stored conversation's memories are built again from its stored messages,
exactly as ingest builds them (:func:`memoryd.core.memories.build_memories`
with the configured ``MemoryPolicy``, the part handlers' text included),
embedded with the new model, and committed as a ``replaced`` change: the old
memories go, new ones (with new ids) come, in one transaction per
conversation. A memory id names one embedding of one text, so the new
memories get new ids, and the commit forgets what chat threads quote of the
old ones (``Citation.forget``, as for any edit that replaces a memory).

Each memory keeps its time of creation: when its message was received.

The loop knows nothing of which model a store records. The storage adapter
marks the store as "being re-embedded" before the loop (so nothing opens it
meanwhile with either model) and records the new model once the loop is done;
the index is rebuilt after that (``memoryd.core.indexer.reindex``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import attrs
from attrs import frozen

from memoryd.core.ingest import embed_drafts, part_texts
from memoryd.core.memories import MemoryPolicy, build_memories
from memoryd.core.model import Conversation, MemoryDraft
from memoryd.core.ports import (
    ConversationChange,
    ConversationStore,
    DraftFilter,
    Embedder,
    PartHandler,
)
from memoryd.core.screening import screen_drafts


@frozen
class ReembedProgress:
    """After each conversation: where the loop is, and what it made so far."""

    tenant_id: str
    conversation_id: str
    #: Conversations and memories done so far (every tenant).
    conversations: int
    memories: int
    #: The memories of this conversation that it replaced.
    removed: int


async def reembed_conversation(
    store: ConversationStore,
    embedder: Embedder,
    conversation: Conversation,
    *,
    policy: MemoryPolicy,
    part_handlers: Sequence[PartHandler] = (),
    filters: Sequence[DraftFilter] = (),
) -> tuple[int, int]:
    """Rebuild and re-embed one conversation's memories; (added, removed)."""
    messages = conversation.messages
    extra = await part_texts(part_handlers, messages, 0)
    drafts = await screen_drafts(
        filters, build_memories(messages, start=0, policy=policy, extra_text=extra)
    )
    received = {m.position: m.received_at for m in messages}

    def created(draft: MemoryDraft) -> datetime:
        return received.get(draft.positions[0], conversation.updated_at or draft.said_at)

    added = await embed_drafts(embedder, conversation, drafts, now=created)
    removed = await store.memory_ids(
        conversation.tenant_id, conversation.conversation_id, scope=conversation.scope
    )
    await store.commit(
        ConversationChange(
            kind="replaced",
            # Every memory is rebuilt: nothing stays queued (queued ingest).
            conversation=attrs.evolve(conversation, pending_from=None),
            new_messages=messages,
            added=added,
            removed_memory_ids=removed,
        )
    )
    return len(added), len(removed)


async def reembed(
    store: ConversationStore,
    embedder: Embedder,
    *,
    policy: MemoryPolicy,
    part_handlers: Sequence[PartHandler] = (),
    filters: Sequence[DraftFilter] = (),
    progress: Callable[[ReembedProgress], None] | None = None,
) -> ReembedProgress | None:
    """Re-embed every conversation of every tenant with ``embedder``; the last progress.

    Each conversation is one commit (its outbox entry says what the index must
    learn). The index is not touched here: its vectors are the old model's
    until it is rebuilt. Running it again after an interruption does every
    conversation again (each commit replaces whatever memories it finds).
    """
    last: ReembedProgress | None = None
    conversations = memories = 0
    for tenant in await store.tenant_ids():
        async for conversation in store.conversations_of(tenant):
            added, removed = await reembed_conversation(
                store,
                embedder,
                conversation,
                policy=policy,
                part_handlers=part_handlers,
                filters=filters,
            )
            conversations += 1
            memories += added
            last = ReembedProgress(
                tenant, conversation.conversation_id, conversations, memories, removed
            )
            if progress is not None:
                progress(last)
    return last
