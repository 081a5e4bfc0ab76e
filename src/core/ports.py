"""The ports: one ``typing.Protocol`` per capability the core needs.

Adapters implement them; the core only ever talks to these. Fakes for each
live in :mod:`memoryd.testing`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, TypeAlias

from attrs import frozen

from memoryd.core.filters import MemoryFilter
from memoryd.core.model import (
    ApiKey,
    ContentPart,
    Conversation,
    Memory,
    ScoredMemory,
    StoredMessage,
    Thread,
    ThreadMessage,
)


class Vector(Protocol):
    """One embedding: a 1-D float array (numpy in practice). The core never looks inside."""

    @property
    def shape(self) -> tuple[int, ...]: ...


class Matrix(Protocol):
    """A batch of embeddings, one row per text (a 2-D numpy array in practice)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, index: Any) -> Any: ...

    def __len__(self) -> int: ...


# --- storage -------------------------------------------------------------------------------------


@frozen
class IndexedMemory:
    """A memory with what it is searched by."""

    memory: Memory
    #: One unit vector per embedded piece (a 2-D array); the memory scores its best piece.
    vectors: Any
    #: Neighbouring turns, for the keyword side (a second, lower-weighted field).
    keyword_context: str = ""


ChangeKind: TypeAlias = Literal["created", "unchanged", "appended", "replaced"]


@frozen
class TokenCharge:
    """Tokens a write spends from a key's quota; the store checks and charges atomically."""

    key_id: str
    tokens: int
    quota: int | None


@frozen
class ConversationChange:
    """One atomic write: the conversation's new state and what changes in its memories."""

    kind: ChangeKind
    conversation: Conversation
    #: Messages to add (append) or the whole new history (created, replaced).
    new_messages: tuple[StoredMessage, ...]
    added: tuple[IndexedMemory, ...]
    removed_memory_ids: tuple[str, ...]
    charge: TokenCharge | None = None
    #: New keyword context for the memories of earlier messages, by message position
    #: (an appended message is the "next turn" of the one before it).
    context_updates: tuple[tuple[int, str], ...] = ()


class ConversationStore(Protocol):
    """The source of truth for conversations, their messages and their memories."""

    async def get_conversation(self, tenant_id: str, conversation_id: str) -> Conversation | None:
        """The stored conversation, or None if this tenant has none by that id."""
        ...

    async def memory_ids(self, tenant_id: str, conversation_id: str) -> tuple[str, ...]:
        """The ids of every memory made from the conversation."""
        ...

    async def commit(self, change: ConversationChange) -> None:
        """Write the change durably and atomically, charging its tokens to the key.

        Raises ``QuotaExceeded`` (and writes nothing) if the charge would pass
        the key's quota. When this returns, the change survives a crash.
        """
        ...

    async def delete_conversation(
        self, tenant_id: str, conversation_id: str
    ) -> tuple[str, ...] | None:
        """Delete the conversation, its messages and memories; return the memory ids.

        Returns None if there was no such conversation.
        """
        ...

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the store can be read and written."""
        ...


@frozen
class IndexQuery:
    """A search against the index: both the dense and the keyword side."""

    filter: MemoryFilter
    vector: Any  # a Vector
    text: str
    #: How many candidates each side returns.
    k: int
    #: The keyword side's result, if the caller already ran it (``keyword_search``);
    #: None: the index runs it on ``text``.
    keyword_hits: tuple[KeywordHit, ...] | None = None


@frozen
class KeywordHit:
    """A memory the keyword side found, with its relevance (higher is better)."""

    memory_id: str
    score: float


@frozen
class Candidate:
    """A memory that one or both sides of the index found."""

    memory_id: str
    #: Cosine similarity to the query vector (computed for keyword hits too).
    similarity: float
    #: 0-based rank on the dense side, None if the dense side did not return it.
    dense_rank: int | None
    #: 0-based rank on the keyword side, None if the keyword side did not return it.
    keyword_rank: int | None
    #: The keyword side's relevance (bm25, higher is better), None if it did not return it.
    keyword_score: float | None = None


@frozen
class IndexChange:
    """What the searchable view must learn after a committed ``ConversationChange``."""

    tenant_id: str
    conversation_id: str
    added: tuple[IndexedMemory, ...] = ()
    removed_memory_ids: tuple[str, ...] = ()
    #: The conversation's tags and metadata, which all its memories take on (None: unchanged).
    container_tags: tuple[str, ...] | None = None
    metadata: Mapping[str, Any] | None = None


class MemoryIndex(Protocol):
    """The searchable view of memories: vectors, keywords and filters."""

    async def apply(self, change: IndexChange) -> None:
        """Make the change searchable (called after the store committed it)."""
        ...

    async def keyword_search(
        self, memory_filter: MemoryFilter, text: str, k: int
    ) -> tuple[KeywordHit, ...]:
        """The keyword side alone: up to ``k`` hits that pass the filter, best first.

        It needs no query vector, so a caller may run it while the query is embedded.
        """
        ...

    async def search(self, query: IndexQuery) -> list[Candidate]:
        """Up to ``query.k`` dense and ``query.k`` keyword candidates that pass the filter."""
        ...

    async def fetch(self, tenant_id: str, memory_ids: Sequence[str]) -> list[Memory]:
        """The memories with these ids, in the given order (missing ones left out)."""
        ...

    def generation(self, tenant_id: str) -> int:
        """A number that changes whenever the tenant's memories change (for caches)."""
        ...


class KeyStore(Protocol):
    """API keys and tenants. Keys are looked up by digest, never stored in clear."""

    async def find_key(self, digest: str) -> ApiKey | None:
        """The live (not revoked) key with this digest, or None."""
        ...

    async def create_key(
        self,
        *,
        tenant: str,
        digest: str,
        tags: tuple[str, ...] = (),
        quota_tokens: int | None = None,
        label: str | None = None,
    ) -> ApiKey:
        """Create a key (and its tenant, if new)."""
        ...

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included."""
        ...

    async def revoke_key(self, key_id: str) -> bool:
        """Revoke a key by id; False if there is no live key by that id."""
        ...


class ThreadStore(Protocol):
    """Chat threads: their messages and the annotations of each answer."""

    async def create_thread(self, thread: Thread) -> None: ...

    async def get_thread(self, tenant_id: str, thread_id: str) -> Thread | None: ...

    async def append_messages(
        self, tenant_id: str, thread_id: str, messages: Sequence[ThreadMessage]
    ) -> None:
        """Append messages durably, in order."""
        ...

    async def list_threads(
        self,
        tenant_id: str,
        *,
        limit: int,
        offset: int,
        within_tags: tuple[str, ...] | None = None,
    ) -> list[Thread]:
        """Threads newest first, without their messages.

        With ``within_tags``, only threads whose tags are not empty and are all
        among ``within_tags`` (the threads a key limited to those tags may use).
        """
        ...

    async def delete_thread(self, tenant_id: str, thread_id: str) -> bool: ...


# --- models --------------------------------------------------------------------------------------


class Embedder(Protocol):
    """Turns text into unit-length vectors. Batches; runs inference off the event loop."""

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """One unit vector per text, for storing."""
        ...

    async def embed_query(self, text: str) -> Vector:
        """One unit vector, for searching."""
        ...


class TokenCounter(Protocol):
    """Counts and truncates text in a model's tokens."""

    @property
    def encoding_name(self) -> str: ...

    def count(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` that is at most ``max_tokens`` tokens."""
        ...


@frozen
class ChatTurn:
    """One message of a prompt sent to a chat model."""

    role: Literal["system", "user", "assistant"]
    content: str


class ChatModel(Protocol):
    """A streaming chat model."""

    @property
    def name(self) -> str: ...

    @property
    def context_window(self) -> int:
        """How many tokens the prompt and the answer may take together."""
        ...

    def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        max_tokens: int,
        context: Sequence[ScoredMemory] = (),
    ) -> AsyncIterator[str]:
        """Yield the answer's text as it is written. Raises ``ModelUnavailable``.

        ``turns`` is the whole prompt (the memories are already in its system
        turn); ``context`` is the same memories as values, for backends that
        work on them directly (the extractive one).
        """
        ...


class PartHandler(Protocol):
    """Turns a non-text content part (an image, a file) into text for context."""

    def accepts(self, part: ContentPart) -> bool: ...

    async def to_text(self, part: ContentPart) -> str | None:
        """The text this part contributes, or None if it yields nothing."""
        ...


class Reranker(Protocol):
    """Reorders search results; may drop none and invent none."""

    @property
    def name(self) -> str: ...

    async def rerank(self, query: str, results: Sequence[ScoredMemory]) -> list[ScoredMemory]: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...
