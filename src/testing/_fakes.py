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

from memoryd.core.errors import ModelUnavailable, QuotaExceeded, StoreUnavailable
from memoryd.core.filters import MemoryFilter
from memoryd.core.model import (
    ApiKey,
    Conversation,
    Memory,
    ScoredMemory,
    Thread,
    ThreadMessage,
)
from memoryd.core.ports import (
    Candidate,
    ChatTurn,
    ConversationChange,
    IndexChange,
    IndexQuery,
    KeywordHit,
)

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


@define
class InMemoryStore:
    """ConversationStore, KeyStore and ThreadStore over dictionaries."""

    conversations: dict[tuple[str, str], Conversation] = field(factory=dict)
    memories: dict[tuple[str, str], list[str]] = field(factory=dict)
    keys: dict[str, tuple[str, ApiKey]] = field(factory=dict)
    threads: dict[tuple[str, str], Thread] = field(factory=dict)
    available: bool = True

    async def get_conversation(self, tenant_id: str, conversation_id: str) -> Conversation | None:
        return self.conversations.get((tenant_id, conversation_id))

    async def memory_ids(self, tenant_id: str, conversation_id: str) -> tuple[str, ...]:
        return tuple(self.memories.get((tenant_id, conversation_id), ()))

    async def commit(self, change: ConversationChange) -> None:
        conv = change.conversation
        if change.charge is not None:
            for digest, (_, key) in list(self.keys.items()):
                if key.id == change.charge.key_id:
                    used = key.used_tokens + change.charge.tokens
                    if key.quota_tokens is not None and used > key.quota_tokens:
                        raise QuotaExceeded("This write would pass the API key's token quota")
                    self.keys[digest] = (digest, attrs.evolve(key, used_tokens=used))
        where = (conv.tenant_id, conv.conversation_id)
        self.conversations[where] = conv
        kept = [m for m in self.memories.get(where, []) if m not in change.removed_memory_ids]
        self.memories[where] = kept + [a.memory.id for a in change.added]

    async def delete_conversation(
        self, tenant_id: str, conversation_id: str
    ) -> tuple[str, ...] | None:
        if self.conversations.pop((tenant_id, conversation_id), None) is None:
            return None
        return tuple(self.memories.pop((tenant_id, conversation_id), ()))

    async def check(self) -> None:
        if not self.available:
            raise StoreUnavailable()

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
    async def create_thread(self, thread: Thread) -> None:
        self.threads[(thread.tenant_id, thread.id)] = thread

    async def get_thread(self, tenant_id: str, thread_id: str) -> Thread | None:
        return self.threads.get((tenant_id, thread_id))

    async def append_messages(
        self, tenant_id: str, thread_id: str, messages: Sequence[ThreadMessage]
    ) -> None:
        thread = self.threads[(tenant_id, thread_id)]
        self.threads[(tenant_id, thread_id)] = attrs.evolve(
            thread, messages=thread.messages + tuple(messages)
        )

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
    generations: dict[str, int] = field(factory=dict)

    async def apply(self, change: IndexChange) -> None:
        for mid in change.removed_memory_ids:
            self.memories.pop(mid, None)
            self.vectors.pop(mid, None)
        for item in change.added:
            self.memories[item.memory.id] = item.memory
            self.vectors[item.memory.id] = np.atleast_2d(np.asarray(item.vectors, np.float32))
        for mid, old in list(self.memories.items()):
            if old.tenant_id == change.tenant_id and old.conversation_id == change.conversation_id:
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
        """Memories sharing words with ``text``, most shared words first."""
        words = set(_WORD.findall(text.lower()))
        overlap = {
            m.id: len(words & set(_WORD.findall(m.text.lower())))
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
            Candidate(mid, sims[mid], dense_rank.get(mid), keyword_rank.get(mid), keyword.get(mid))
            for mid in dict.fromkeys([*dense_rank, *keyword_rank])
        ]

    async def fetch(self, tenant_id: str, memory_ids: Sequence[str]) -> list[Memory]:
        return [
            self.memories[m]
            for m in memory_ids
            if m in self.memories and self.memories[m].tenant_id == tenant_id
        ]

    def generation(self, tenant_id: str) -> int:
        return self.generations.get(tenant_id, 0)


@define
class ScriptedChatModel:
    """A chat model that streams the chunks it was given, optionally failing midway.

    ``prompts`` records every prompt it received.
    """

    chunks: Sequence[str] = ("Hello", " world")
    fail_after: int | None = None
    window: int = 2048
    delay: float = 0.0
    prompts: list[list[ChatTurn]] = field(factory=list)

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def context_window(self) -> int:
        return self.window

    async def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        max_tokens: int,
        context: Sequence[ScoredMemory] = (),
    ) -> AsyncIterator[str]:
        self.prompts.append(list(turns))
        for i, chunk in enumerate(self.chunks):
            if self.fail_after is not None and i >= self.fail_after:
                raise ModelUnavailable("scripted failure")
            if self.delay:
                await asyncio.sleep(self.delay)
            yield chunk
