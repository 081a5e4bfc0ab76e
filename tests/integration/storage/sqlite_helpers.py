"""Builders for the SQLite storage tests: conversations, memories, vectors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from memoryd.adapters.storage.sqlite import SqliteBackend
from memoryd.core.indexer import Indexer
from memoryd.core.model import Conversation, Message, Scalar, StoredMessage
from memoryd.core.ports import ConversationChange, IndexChange, IndexedMemory, TokenCharge
from memoryd.testing.contract import indexed

DIM = 16
MODEL = "test-model"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def stored(messages: Sequence[Message], start: int = 0) -> tuple[StoredMessage, ...]:
    return tuple(
        StoredMessage(message=m, position=start + i, received_at=T0 + timedelta(seconds=i))
        for i, m in enumerate(messages)
    )


def conversation(
    tenant: str,
    conversation_id: str,
    messages: Sequence[StoredMessage],
    *,
    tags: tuple[str, ...] = (),
    metadata: Mapping[str, Scalar] | None = None,
    cid: str | None = None,
) -> Conversation:
    return Conversation(
        id=cid or f"id-{tenant}-{conversation_id}",
        tenant_id=tenant,
        conversation_id=conversation_id,
        messages=tuple(messages),
        container_tags=tags,
        metadata=dict(metadata or {}),
        created_at=T0,
        updated_at=T0,
    )


def memory(
    tenant: str,
    conversation_id: str,
    memory_id: str,
    text: str,
    vector: Any,
    *,
    tags: tuple[str, ...] = (),
    metadata: Mapping[str, Scalar] | None = None,
    said_at: datetime = T0,
    context: str = "",
) -> IndexedMemory:
    """A memory with one vector, or with one per piece when ``vector`` is 2-D."""
    return indexed(
        tenant,
        conversation_id,
        memory_id,
        text,
        vector,
        tags=tags,
        metadata=metadata,
        said_at=said_at,
        context=context,
    )


def created(
    conv: Conversation,
    added: Sequence[IndexedMemory] = (),
    *,
    charge: TokenCharge | None = None,
) -> ConversationChange:
    return ConversationChange(
        kind="created",
        conversation=conv,
        new_messages=conv.messages,
        added=tuple(added),
        removed_memory_ids=(),
        charge=charge,
    )


def index_change(conv: Conversation, change: ConversationChange) -> IndexChange:
    return IndexChange(
        tenant_id=conv.tenant_id,
        conversation_id=conv.conversation_id,
        added=change.added,
        removed_memory_ids=change.removed_memory_ids,
        container_tags=conv.container_tags,
        metadata=dict(conv.metadata),
    )


async def settle(backend: SqliteBackend) -> int:
    """Apply the outbox's pending changes to the index, as the app does after each write."""
    return await Indexer(backend.conversations, backend.index).drain()
