"""In-memory fakes of the ports."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import numpy as np
from attrs import define, field

from memoryd.core.errors import ModelUnavailable, StoreUnavailable
from memoryd.core.filters import MemoryFilter
from memoryd.core.indexer import deletion, index_change
from memoryd.core.memories import memory_text
from memoryd.core.model import (
    ApiKey,
    Conversation,
    Memory,
    Scope,
    Thread,
    ThreadMessage,
)
from memoryd.core.ports import (
    Candidate,
    ChatTurn,
    Completed,
    ConversationChange,
    FinishReason,
    IndexChange,
    IndexedMemory,
    IndexQuery,
    KeywordHit,
    PendingChange,
    QueuedWork,
    RerankCandidate,
    TokenCharge,
    Usage,
)
from memoryd.core.quota import check_quota

_WORD = re.compile(r"\w+")


@define
class FixedClock:
    """A clock that stands still until told to move."""

    current: datetime = datetime(2025, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@define
class WordCounter:
    """Counts words as tokens."""

    @property
    def encoding_name(self) -> str:
        return "words"

    def count(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])


@define
class FakeEmbedder:
    """Bag-of-words hashing embedder: texts sharing words get similar vectors.

    ``calls`` records every batch it was asked to embed.
    """

    dim: int = 64
    calls: list[list[str]] = field(factory=list)

    @property
    def model_name(self) -> str:
        return "fake-bow"

    @property
    def dimension(self) -> int:
        return self.dim

    def _one(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
            v[h % self.dim] += 1.0
        norm = float(np.linalg.norm(v))
        if norm == 0:
            v[0] = 1.0
            return v
        return v / norm

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        self.calls.append(list(texts))
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim))

    async def embed_query(self, text: str) -> np.ndarray[Any, Any]:
        return self._one(text)

    @property
    def texts_embedded(self) -> int:
        return sum(len(c) for c in self.calls)


@define
class CountingEmbedder:
    """Wraps a real ``Embedder`` and records the texts it is asked to embed."""

    inner: Any
    batches: list[list[str]] = field(factory=list)

    @property
    def model_name(self) -> str:
        return str(self.inner.model_name)

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    @property
    def texts(self) -> int:
        """How many texts were sent for storing."""
        return sum(len(b) for b in self.batches)

    async def embed_documents(self, texts: Sequence[str]) -> Any:
        self.batches.append(list(texts))
        return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> Any:
        return await self.inner.embed_query(text)


#: Where the fake keeps a conversation: (tenant, scope, conversationId).
Where = tuple[str, Scope, str]


@define
class InMemoryStore:
    """ConversationStore, KeyStore and ThreadStore over dictionaries."""

    conversations: dict[Where, Conversation] = field(factory=dict)
    memories: dict[Where, list[str]] = field(factory=dict)
    keys: dict[str, tuple[str, ApiKey]] = field(factory=dict)
    threads: dict[tuple[str, str], Thread] = field(factory=dict)
    available: bool = True
    #: The pending index changes, oldest first (the outbox).
    outbox: list[PendingChange] = field(factory=list)
    #: Every memory as committed (what a rebuild of the index reads back).
    indexed: dict[str, IndexedMemory] = field(factory=dict)
    #: Each conversation's revision (queued ingest): up by one with every commit of it.
    revisions: dict[Where, int] = field(factory=dict)
    _seq: int = 0

    def _record(self, change: IndexChange) -> None:
        self._seq += 1
        self.outbox.append(PendingChange(self._seq, change))

    def _of_id(self, tenant_id: str, conversation_id: str) -> list[Where]:
        """Every scope's conversation of that id, the empty scope's first, then newest first."""
        found = [w for w in self.conversations if w[0] == tenant_id and w[2] == conversation_id]

        def newest_first(where: Where) -> tuple[bool, float]:
            updated = self.conversations[where].updated_at
            return (where[1] != (), -updated.timestamp() if updated else 0.0)

        found.sort(key=newest_first)
        return found

    async def get_conversation(
        self, tenant_id: str, conversation_id: str, *, scope: Scope | None = ()
    ) -> Conversation | None:
        if scope is None:
            found = self._of_id(tenant_id, conversation_id)
            return self.conversations[found[0]] if found else None
        return self.conversations.get((tenant_id, scope, conversation_id))

    async def conversation_by_id(self, tenant_id: str, id: str) -> Conversation | None:
        found = (c for c in self.conversations.values() if (c.tenant_id, c.id) == (tenant_id, id))
        return next(found, None)

    async def memory_ids(
        self, tenant_id: str, conversation_id: str, *, scope: Scope = ()
    ) -> tuple[str, ...]:
        return tuple(self.memories.get((tenant_id, scope, conversation_id), ()))

    async def commit(self, change: ConversationChange) -> None:
        conv = change.conversation
        if change.charge is not None:
            for digest, (_, key) in list(self.keys.items()):
                if key.id == change.charge.key_id:
                    tokens = change.charge.tokens
                    check_quota(used=key.used_tokens, quota=key.quota_tokens, tokens=tokens)
                    used = key.used_tokens + tokens
                    self.keys[digest] = (digest, attrs.evolve(key, used_tokens=used))
        where = (conv.tenant_id, conv.scope, conv.conversation_id)
        self.conversations[where] = conv
        self.revisions[where] = self.revisions.get(where, 0) + 1
        kept = [m for m in self.memories.get(where, []) if m not in change.removed_memory_ids]
        self.memories[where] = kept + [a.memory.id for a in change.added]
        for mid in change.removed_memory_ids:
            self.indexed.pop(mid, None)
        # As the SQLite file does: a replacing edit forgets what threads quote of them.
        await self.forget_citations(conv.tenant_id, change.removed_memory_ids)
        contexts = dict(change.context_updates)
        for mid in kept:
            old = self.indexed.get(mid)
            if old is None:
                continue
            new = attrs.evolve(
                old.memory,
                container_tags=conv.container_tags,
                metadata=dict(conv.metadata),
            )
            context = contexts.get(old.memory.positions[0], old.keyword_context)
            self.indexed[mid] = attrs.evolve(old, memory=new, keyword_context=context)
        for item in change.added:
            self.indexed[item.memory.id] = item
        self._record(index_change(change))

    async def delete_conversation(
        self, tenant_id: str, conversation_id: str, *, scope: Scope | None = ()
    ) -> tuple[str, ...] | None:
        wheres = (
            self._of_id(tenant_id, conversation_id)
            if scope is None
            else [(tenant_id, scope, conversation_id)]
        )
        wheres = [w for w in wheres if w in self.conversations]
        if not wheres:
            return None
        removed: list[str] = []
        for where in wheres:
            del self.conversations[where]
            removed.extend(self.memories.pop(where, ()))
        for mid in removed:
            self.indexed.pop(mid, None)
        # As the SQLite file does, in the delete's own transaction.
        await self.forget_citations(tenant_id, removed)
        self._record(deletion(tenant_id, conversation_id, removed))
        return tuple(removed)

    # MemoryStore: single memories
    async def list_memories(
        self,
        tenant_id: str,
        *,
        tags: Sequence[str] = (),
        memory_id: str | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> list[Memory]:
        found = [
            (i, item.memory)
            for i, item in enumerate(self.indexed.values())
            if item.memory.tenant_id == tenant_id
            and (not tags or bool(set(tags) & set(item.memory.container_tags)))
            and (memory_id is None or item.memory.id == memory_id)
            and (text is None or item.memory.text == text)
        ]
        found.sort(key=lambda im: (im[1].said_at, im[0]), reverse=True)
        return [m for _, m in found[:limit]]

    async def update_memory(
        self, item: IndexedMemory, *, charge: TokenCharge | None = None
    ) -> bool:
        old = self.indexed.get(item.memory.id)
        if old is None or old.memory.tenant_id != item.memory.tenant_id:
            return False
        if charge is not None:
            self._charge(charge)
        memory = attrs.evolve(
            old.memory,
            text=item.memory.text,
            metadata=dict(item.memory.metadata),
            updated_at=item.memory.updated_at,
        )
        self.indexed[memory.id] = attrs.evolve(old, memory=memory, vectors=item.vectors)
        self._record(
            IndexChange(
                tenant_id=memory.tenant_id,
                conversation_id=memory.conversation_id,
                added=(self.indexed[memory.id],),
                scope=memory.scope,
            )
        )
        return True

    async def forget_memories(self, tenant_id: str, memory_ids: Sequence[str]) -> tuple[str, ...]:
        removed: list[str] = []
        for mid in dict.fromkeys(memory_ids):
            item = self.indexed.get(mid)
            if item is None or item.memory.tenant_id != tenant_id:
                continue
            del self.indexed[mid]
            where = (tenant_id, item.memory.scope, item.memory.conversation_id)
            self.memories[where] = [m for m in self.memories.get(where, []) if m != mid]
            removed.append(mid)
            self._record(
                IndexChange(
                    tenant_id=tenant_id,
                    conversation_id=item.memory.conversation_id,
                    removed_memory_ids=(mid,),
                    scope=item.memory.scope,
                )
            )
        await self.forget_citations(tenant_id, removed)
        return tuple(removed)

    def _charge(self, charge: TokenCharge) -> None:
        for digest, (_, key) in list(self.keys.items()):
            if key.id == charge.key_id:
                check_quota(used=key.used_tokens, quota=key.quota_tokens, tokens=charge.tokens)
                used = key.used_tokens + charge.tokens
                self.keys[digest] = (digest, attrs.evolve(key, used_tokens=used))

    async def check(self) -> None:
        if not self.available:
            raise StoreUnavailable()

    # Queued ingest (IngestQueue)
    async def queued(self, *, tenant_id: str | None = None, limit: int = 100) -> list[QueuedWork]:
        found = [
            QueuedWork(
                tenant_id=tenant,
                conversation_id=cid,
                scope=scope,
                id=conv.id,
                pending_from=conv.pending_from,
                revision=self.revisions.get((tenant, scope, cid), 0),
            )
            for (tenant, scope, cid), conv in self.conversations.items()
            if conv.pending_from is not None and tenant_id in (None, tenant)
        ]
        return found[:limit]

    async def complete_queued(self, work: QueuedWork, change: ConversationChange) -> bool:
        where = (work.tenant_id, work.scope, work.conversation_id)
        conv = self.conversations.get(where)
        if (
            conv is None
            or conv.id != work.id
            or conv.pending_from is None
            or self.revisions.get(where, 0) != work.revision
        ):
            return False
        await self.commit(change)
        return True

    # The outbox
    async def pending_changes(
        self,
        *,
        tenant_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 100,
    ) -> list[PendingChange]:
        live = {m for ids in self.memories.values() for m in ids}
        found: list[PendingChange] = []
        for entry in self.outbox:
            change = entry.change
            key = (change.tenant_id, change.conversation_id)
            if (
                tenant_id is not None
                and conversation_id is not None
                and key
                != (
                    tenant_id,
                    conversation_id,
                )
            ):
                continue
            # As the SQLite file does: memories deleted since are left out.
            added = tuple(a for a in change.added if a.memory.id in live)
            found.append(PendingChange(entry.seq, attrs.evolve(change, added=added)))
            if len(found) == limit:
                break
        return found

    async def mark_applied(self, seqs: Sequence[int]) -> None:
        done = set(seqs)
        self.outbox = [e for e in self.outbox if e.seq not in done]

    async def tenant_ids(self) -> list[str]:
        return sorted({tenant for tenant, _, _ in self.conversations})

    async def snapshot(self, tenant_id: str) -> AsyncIterator[IndexChange]:
        for (tenant, scope, cid), conv in list(self.conversations.items()):
            if tenant != tenant_id:
                continue
            yield IndexChange(
                tenant_id=tenant,
                conversation_id=cid,
                added=tuple(self.indexed[m] for m in self.memories.get((tenant, scope, cid), ())),
                container_tags=conv.container_tags,
                metadata=dict(conv.metadata),
                scope=scope,
            )

    async def conversations_of(self, tenant_id: str) -> AsyncIterator[Conversation]:
        for (tenant, _, _), conv in sorted(
            self.conversations.items(), key=lambda item: (item[0][2], item[0][1])
        ):
            if tenant == tenant_id:
                yield conv

    # KeyStore
    async def find_key(self, digest: str) -> ApiKey | None:
        found = self.keys.get(digest)
        if found is None or found[1].revoked_at is not None:
            return None
        return found[1]

    async def create_key(
        self,
        *,
        tenant: str,
        digest: str,
        tags: tuple[str, ...] = (),
        quota_tokens: int | None = None,
        label: str | None = None,
    ) -> ApiKey:
        key = ApiKey(
            id=uuid.uuid4().hex[:12],
            tenant_id=tenant,
            tags=tags,
            quota_tokens=quota_tokens,
            label=label,
            created_at=datetime.now(UTC),
        )
        self.keys[digest] = (digest, key)
        return key

    async def list_keys(self) -> list[ApiKey]:
        return [k for _, k in self.keys.values()]

    async def revoke_key(self, key_id: str) -> bool:
        for digest, (_, key) in self.keys.items():
            if key.id == key_id and key.revoked_at is None:
                self.keys[digest] = (digest, attrs.evolve(key, revoked_at=datetime.now(UTC)))
                return True
        return False

    # ThreadStore
    def _with_live_citations(
        self, tenant_id: str, messages: Sequence[ThreadMessage]
    ) -> tuple[ThreadMessage, ...]:
        """``messages`` with citations of memories the tenant no longer has forgotten."""
        live = {
            m for (tenant, _, _), ids in self.memories.items() if tenant == tenant_id for m in ids
        }
        return tuple(
            attrs.evolve(
                m,
                annotations=tuple(
                    a if a.forgotten or a.id in live else a.forget() for a in m.annotations
                ),
            )
            for m in messages
        )

    async def create_thread(self, thread: Thread) -> None:
        messages = self._with_live_citations(thread.tenant_id, thread.messages)
        self.threads[(thread.tenant_id, thread.id)] = attrs.evolve(thread, messages=messages)

    async def get_thread(self, tenant_id: str, thread_id: str) -> Thread | None:
        return self.threads.get((tenant_id, thread_id))

    async def append_messages(
        self, tenant_id: str, thread_id: str, messages: Sequence[ThreadMessage]
    ) -> None:
        thread = self.threads[(tenant_id, thread_id)]
        self.threads[(tenant_id, thread_id)] = attrs.evolve(
            thread, messages=thread.messages + self._with_live_citations(tenant_id, messages)
        )

    async def forget_citations(self, tenant_id: str, memory_ids: Sequence[str]) -> int:
        gone = set(memory_ids)
        changed = 0
        for (tenant, thread_id), thread in list(self.threads.items()):
            if tenant != tenant_id:
                continue
            messages = []
            for m in thread.messages:
                annotations = []
                for a in m.annotations:
                    forget = a.id in gone and not a.forgotten
                    changed += forget
                    annotations.append(a.forget() if forget else a)
                messages.append(attrs.evolve(m, annotations=tuple(annotations)))
            self.threads[(tenant, thread_id)] = attrs.evolve(thread, messages=tuple(messages))
        return changed

    async def list_threads(
        self,
        tenant_id: str,
        *,
        limit: int,
        offset: int,
        within_tags: tuple[str, ...] | None = None,
    ) -> list[Thread]:
        mine = [
            t
            for (tenant, _), t in self.threads.items()
            if tenant == tenant_id
            and (
                within_tags is None
                or (t.container_tags and set(t.container_tags) <= set(within_tags))
            )
        ]
        mine.sort(key=lambda t: t.updated_at or t.created_at or datetime.min, reverse=True)
        return [attrs.evolve(t, messages=()) for t in mine[offset : offset + limit]]

    async def delete_thread(self, tenant_id: str, thread_id: str) -> bool:
        return self.threads.pop((tenant_id, thread_id), None) is not None


@define
class InMemoryIndex:
    """Exact cosine plus word-overlap keyword search, filtered by ``MemoryFilter.matches``."""

    memories: dict[str, Memory] = field(factory=dict)
    vectors: dict[str, Any] = field(factory=dict)
    #: Each memory's keyword context (neighbouring turns).
    contexts: dict[str, str] = field(factory=dict)
    generations: dict[str, int] = field(factory=dict)
    available: bool = True

    async def clear(self, tenant_id: str | None = None) -> None:
        for mid, m in list(self.memories.items()):
            if tenant_id is None or m.tenant_id == tenant_id:
                del self.memories[mid]
                self.vectors.pop(mid, None)
                self.contexts.pop(mid, None)
        for tenant in list(self.generations) if tenant_id is None else [tenant_id]:
            self.generations[tenant] = self.generations.get(tenant, 0) + 1

    async def check(self) -> None:
        if not self.available:
            raise StoreUnavailable("the index is unavailable")

    async def apply(self, change: IndexChange) -> None:
        for mid in change.removed_memory_ids:
            self.memories.pop(mid, None)
            self.vectors.pop(mid, None)
            self.contexts.pop(mid, None)
        for item in change.added:
            self.memories[item.memory.id] = item.memory
            self.vectors[item.memory.id] = np.atleast_2d(np.asarray(item.vectors, np.float32))
            self.contexts[item.memory.id] = item.keyword_context
        document = (change.scope, change.conversation_id)
        contexts = dict(change.context_updates)
        for mid, old in list(self.memories.items()):
            if old.tenant_id == change.tenant_id and old.document == document:
                if old.positions and old.positions[0] in contexts:
                    self.contexts[mid] = contexts[old.positions[0]]
                new = old
                if change.container_tags is not None:
                    new = attrs.evolve(new, container_tags=change.container_tags)
                if change.metadata is not None:
                    new = attrs.evolve(new, metadata=dict(change.metadata))
                self.memories[mid] = new
        self.generations[change.tenant_id] = self.generations.get(change.tenant_id, 0) + 1

    async def keyword_search(
        self, memory_filter: MemoryFilter, text: str, k: int
    ) -> tuple[KeywordHit, ...]:
        """Memories sharing words with ``text``, most shared first (their context's count less)."""
        words = set(_WORD.findall(text.lower()))

        def shared(found: str) -> int:
            return len(words & set(_WORD.findall(found.lower())))

        overlap = {
            m.id: shared(memory_text(m)) + 0.35 * shared(self.contexts.get(m.id, ""))
            for m in self.memories.values()
            if memory_filter.matches(m)
        }
        ranked = sorted(
            (mid for mid, n in overlap.items() if n > 0), key=lambda x: (-overlap[x], x)
        )
        return tuple(KeywordHit(mid, float(overlap[mid])) for mid in ranked[:k])

    async def search(self, query: IndexQuery) -> list[Candidate]:
        q = np.asarray(query.vector, dtype=np.float32)
        eligible = [m for m in self.memories.values() if query.filter.matches(m)]
        sims = {m.id: float(np.max(self.vectors[m.id] @ q)) for m in eligible}
        dense = sorted(eligible, key=lambda m: (-sims[m.id], m.id))[: query.k]
        hits = query.keyword_hits
        if hits is None:
            hits = await self.keyword_search(query.filter, query.text, query.k)
        keyword = {h.memory_id: h.score for h in hits if h.memory_id in sims}
        dense_rank = {m.id: i for i, m in enumerate(dense)}
        keyword_rank = {mid: i for i, mid in enumerate(keyword)}
        return [
            Candidate(
                mid,
                sims[mid],
                dense_rank.get(mid),
                keyword_rank.get(mid),
                keyword.get(mid),
                vectors=self.vectors[mid].copy() if query.with_vectors else None,
            )
            for mid in dict.fromkeys([*dense_rank, *keyword_rank])
        ]

    async def fetch(self, tenant_id: str, memory_ids: Sequence[str]) -> list[Memory]:
        return [
            self.memories[m]
            for m in memory_ids
            if m in self.memories and self.memories[m].tenant_id == tenant_id
        ]

    async def generation(self, tenant_id: str) -> int:
        return self.generations.get(tenant_id, 0)


@define
class ScriptedChatModel:
    """A chat model that streams the chunks it was given, optionally failing midway.

    It ends with ``Completed(finish_reason, usage)``; ``prompts`` records every
    prompt it received.
    """

    chunks: Sequence[str] = ("Hello", " world")
    fail_after: int | None = None
    window: int = 2048
    delay: float = 0.0
    finish_reason: FinishReason = "stop"
    #: The token counts it reports as its own (None: it reports none).
    usage: Usage | None = None
    prompts: list[list[ChatTurn]] = field(factory=list)

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def context_window(self) -> int:
        return self.window

    async def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int
    ) -> AsyncIterator[str | Completed]:
        self.prompts.append(list(turns))
        for i, chunk in enumerate(self.chunks):
            if self.fail_after is not None and i >= self.fail_after:
                raise ModelUnavailable("scripted failure")
            if self.delay:
                await asyncio.sleep(self.delay)
            yield chunk
        yield Completed(self.finish_reason, self.usage)


@define
class ReversingReranker:
    """A reranker that reverses the pool; ``pools`` records every pool it was given."""

    name: str = "reverse"
    pools: list[list[RerankCandidate]] = field(factory=list)

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        self.pools.append(list(pool))
        return list(reversed(pool))
