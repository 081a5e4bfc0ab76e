"""Use cases: update one memory's text or metadata, and forget memories (``/v4/memories``).

A memory is addressed by its id or by its exact text, always within one
container tag (as the supermemory SDKs send it): the memory must carry that
tag, and the key must be allowed it (and, for a key limited to tags, every
tag the memory carries). A memory of another tag, another tenant, or none at
all take the same path and give the same 404.

An update re-embeds the new text (the store keeps the new vectors, the
index learns of them through the outbox), so search finds the new words and
no longer the old. Forgetting deletes the memory and the text that chat
threads quote of it (their citations are kept, forgotten).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from attrs import define, field, frozen

from memoryd.core.errors import ConfigurationError, Forbidden, NotFound
from memoryd.core.indexer import Indexer
from memoryd.core.memories import MemoryPolicy, embed_pieces
from memoryd.core.model import Caller, Memory, Scalar
from memoryd.core.ports import (
    Clock,
    ConversationStore,
    Embedder,
    IndexedMemory,
    MemoryStore,
    ThreadStore,
    TokenCharge,
    TokenCounter,
)
from memoryd.core.quota import check_quota

#: The most memories one forget by content removes (equal texts in one tag).
MAX_FORGET = 100


@frozen
class MemoryRef:
    """Which memory a request means: by ``id``, else by exact ``content``, within ``tag``."""

    tag: str
    id: str | None = None
    content: str | None = None


@frozen
class MemoryUpdate:
    ref: MemoryRef
    new_content: str
    #: Replaces the memory's metadata; None: it keeps its own.
    metadata: Mapping[str, Scalar] | None = None


def editable(store: ConversationStore) -> MemoryStore:
    """``store`` as a ``MemoryStore``, or a ``ConfigurationError`` naming the backend."""
    if not isinstance(store, MemoryStore):
        raise ConfigurationError(
            f"This storage backend ({type(store).__name__}) cannot edit or forget single "
            "memories (it does not implement MemoryStore); use the sqlite or elasticsearch "
            "storage backend, or delete the whole conversation",
            details={"setting": "storage"},
        )
    return store


@define
class MemoryEditService:
    """Updates and forgets single memories."""

    store: ConversationStore
    embedder: Embedder
    tokens: TokenCounter
    clock: Clock
    threads: ThreadStore
    #: The app's one indexer (the ingests and deletes take turns with it).
    indexer: Indexer
    policy: MemoryPolicy = field(factory=MemoryPolicy)

    async def find(self, caller: Caller, ref: MemoryRef, *, limit: int = 1) -> list[Memory]:
        """The memories ``ref`` names that this key may address; ``NotFound`` if none."""
        if not caller.may_use_tags([ref.tag]):
            raise Forbidden(
                "This API key may not use this container tag",
                details={"containerTag": ref.tag, "allowed": list(caller.tags)},
            )
        found = await editable(self.store).list_memories(
            caller.tenant_id, tags=(ref.tag,), memory_id=ref.id, text=ref.content, limit=limit
        )
        # A key limited to tags changes only memories all of whose tags it holds: it may
        # read a memory it shares one tag with, but not edit what a wider key wrote.
        found = [m for m in found if caller.may_use_tags(m.container_tags)]
        if not found:
            what = {"id": ref.id} if ref.id is not None else {"content": ref.content}
            raise NotFound("Memory not found", details={**what, "containerTag": ref.tag})
        return found

    async def update(self, caller: Caller, update: MemoryUpdate) -> Memory:
        """Re-embed the memory with the new text (and metadata); the memory as now stored."""
        (memory,) = await self.find(caller, update.ref)
        tokens = self.tokens.count(update.new_content)
        check_quota(used=caller.used_tokens, quota=caller.quota_tokens, tokens=tokens)
        pieces = [
            f"{memory.speaker}: {p}" if memory.speaker else p
            for p in embed_pieces(update.new_content, self.policy.piece_words)
        ]
        vectors = await self.embedder.embed_documents(pieces)
        now: datetime = self.clock.now()
        changed = Memory(
            id=memory.id,
            tenant_id=memory.tenant_id,
            conversation_id=memory.conversation_id,
            text=update.new_content,
            positions=memory.positions,
            said_at=memory.said_at,
            container_tags=memory.container_tags,
            metadata=dict(update.metadata) if update.metadata is not None else memory.metadata,
            created_at=memory.created_at,
            updated_at=now,
            scope=memory.scope,
            speaker=memory.speaker,
        )
        charge = TokenCharge(key_id=caller.key_id, tokens=tokens, quota=caller.quota_tokens)
        stored = await editable(self.store).update_memory(
            IndexedMemory(memory=changed, vectors=vectors), charge=charge
        )
        await self.indexer.drain(caller.tenant_id, memory.conversation_id)
        if not stored:  # forgotten between the look-up and the write
            raise NotFound("Memory not found", details={"id": memory.id})
        return changed

    async def forget(self, caller: Caller, ref: MemoryRef) -> tuple[str, ...]:
        """Delete the memory ``ref`` names (by content: every one of that text); their ids."""
        found = await self.find(caller, ref, limit=MAX_FORGET)
        removed = await editable(self.store).forget_memories(
            caller.tenant_id, [m.id for m in found]
        )
        for conversation_id in dict.fromkeys(m.conversation_id for m in found):
            await self.indexer.drain(caller.tenant_id, conversation_id)
        await self.threads.forget_citations(caller.tenant_id, removed)
        if not removed:
            raise NotFound("Memory not found", details={"id": ref.id, "containerTag": ref.tag})
        return removed
