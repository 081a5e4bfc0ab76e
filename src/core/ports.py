"""The ports: one ``typing.Protocol`` per capability the core needs.

Adapters implement them; the core only ever talks to these. Fakes for each
live in :mod:`memoryd.testing`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from attrs import field, frozen

from memoryd.core.filters import MemoryFilter
from memoryd.core.model import (
    ApiKey,
    ContentPart,
    Conversation,
    Memory,
    MemoryDraft,
    Scope,
    StoredMessage,
    Thread,
    ThreadMessage,
)
from memoryd.core.part_results import PartText


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
    """The source of truth for conversations, their messages and their memories.

    A conversation is stored under (tenant, scope, conversationId): two scopes
    may each hold a conversation of the same id (see ``Conversation.scope``).
    """

    async def get_conversation(
        self, tenant_id: str, conversation_id: str, *, scope: Scope | None = ()
    ) -> Conversation | None:
        """The conversation of that id in ``scope``, or None if the tenant has none there.

        ``scope=None`` looks in every scope: the empty scope's conversation if
        there is one, else the most recently updated one of that id.
        """
        ...

    async def memory_ids(
        self, tenant_id: str, conversation_id: str, *, scope: Scope = ()
    ) -> tuple[str, ...]:
        """The ids of every memory made from the conversation of that id in ``scope``."""
        ...

    async def commit(self, change: ConversationChange) -> None:
        """Write the change durably and atomically, charging its tokens to the key.

        Raises ``QuotaExceeded`` (and writes nothing) if the charge would pass
        the key's quota. When this returns, the change survives a crash.
        """
        ...

    async def delete_conversation(
        self, tenant_id: str, conversation_id: str, *, scope: Scope | None = ()
    ) -> tuple[str, ...] | None:
        """Delete the conversation, its messages and memories; return the memory ids.

        ``scope=None`` deletes the conversations of that id in every scope, in
        one transaction. Returns None if there was no such conversation.

        A store that also keeps the chat threads forgets their citations of
        these memories (``ThreadStore.forget_citations``) in the same
        transaction, so that no crash leaves the quoted text behind.
        """
        ...

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the store can be read and written."""
        ...

    # The outbox: ``commit`` and ``delete_conversation`` record, in their own
    # transaction, the ``IndexChange`` the index must learn
    # (``memoryd.core.indexer.index_change`` and ``deletion`` say which); the
    # ``Indexer`` reads the pending ones, applies them and marks them applied.

    async def pending_changes(
        self,
        *,
        tenant_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 100,
    ) -> list[PendingChange]:
        """Up to ``limit`` index changes not yet marked applied, oldest first.

        With ``tenant_id`` and ``conversation_id``, only those of the
        conversations of that id (every scope). A change may carry fewer added
        memories than were committed: those deleted since are left out.
        """
        ...

    async def mark_applied(self, seqs: Sequence[int]) -> None:
        """Forget these pending changes: the index has them (unknown numbers are ignored)."""
        ...

    # Rebuilding the index from the store (``memoryd reindex``).

    async def tenant_ids(self) -> list[str]:
        """Every tenant that has a conversation, sorted."""
        ...

    def snapshot(self, tenant_id: str) -> AsyncIterator[IndexChange]:
        """Everything the index must hold of the tenant: one change per conversation.

        Each change adds every memory of the conversation (text, piece vectors,
        keyword context as now) with its tags, metadata and scope.
        """
        ...

    def conversations_of(self, tenant_id: str) -> AsyncIterator[Conversation]:
        """Every conversation of the tenant (every scope) with its messages in order.

        Read a batch at a time (``memoryd reindex --embedder`` rebuilds each one's
        memories); a conversation committed while it runs may or may not be seen.
        """
        ...


@frozen
class IndexQuery:
    """A search against the index: both the dense and the keyword side."""

    filter: MemoryFilter
    vector: Any  # a Vector
    text: str
    #: How many candidates each side returns.
    k: int
    #: The keyword side's result, if the caller already ran it (``KeywordFirstIndex``);
    #: None: the index runs it on ``text``.
    keyword_hits: tuple[KeywordHit, ...] | None = None
    #: Whether each candidate should carry its piece vectors (``Candidate.vectors``),
    #: for the rerankers; off, the index need not read them.
    with_vectors: bool = False


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
    #: With ``IndexQuery.with_vectors``: its pieces' unit vectors (a 2-D array, one row
    #: per piece, as ``IndexedMemory.vectors`` gave them); else None.
    vectors: Any = field(default=None, eq=False, repr=False)


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
    #: The conversation's scope: tags and metadata change only the memories of the
    #: conversation of ``conversation_id`` in this scope, never another scope's.
    scope: Scope = ()
    #: New keyword context for the memories of earlier messages of the conversation,
    #: by message position (as ``ConversationChange.context_updates``).
    context_updates: tuple[tuple[int, str], ...] = ()


@frozen
class PendingChange:
    """An outbox entry: a committed change the index has not been confirmed to have."""

    #: Increases with every entry the store records; entries apply in this order.
    seq: int
    change: IndexChange


class MemoryIndex(Protocol):
    """The searchable view of memories: vectors, keywords and filters."""

    async def apply(self, change: IndexChange) -> None:
        """Make the change searchable (called after the store committed it).

        Idempotent: adding a memory the index has replaces it, removing one it
        lacks is ignored, so a change applied twice (a replay) does no harm.
        """
        ...

    async def clear(self, tenant_id: str | None = None) -> None:
        """Forget every memory of the tenant (None: of every tenant), before a rebuild."""
        ...

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the index can answer searches."""
        ...

    async def search(self, query: IndexQuery) -> list[Candidate]:
        """Up to ``query.k`` dense and ``query.k`` keyword candidates that pass the filter."""
        ...

    async def fetch(self, tenant_id: str, memory_ids: Sequence[str]) -> list[Memory]:
        """The memories with these ids, in the given order (missing ones left out)."""
        ...

    async def generation(self, tenant_id: str) -> int:
        """A number that changes whenever the tenant's memories change (for caches).

        It must change for every change of the tenant's memories that a search
        through this index could see, whichever process made it: a backend
        shared by several servers keeps it where they all read it.
        """
        ...


@runtime_checkable
class KeywordFirstIndex(Protocol):
    """An optional capability of a ``MemoryIndex``: the keyword side run on its own.

    An index that has it lets the search run the keyword side while the query
    is embedded, and hand the hits to ``search`` (``IndexQuery.keyword_hits``).
    An index without it runs both sides in ``search``.
    """

    async def keyword_search(
        self, memory_filter: MemoryFilter, text: str, k: int
    ) -> tuple[KeywordHit, ...]:
        """The keyword side alone: up to ``k`` hits that pass the filter, best first."""
        ...


@runtime_checkable
class MemoryStore(Protocol):
    """An optional capability of a ``ConversationStore``: memories read and edited one by one.

    Each write records its ``IndexChange`` in the outbox in the same
    transaction, like ``commit``; the caller drains it.
    """

    async def list_memories(
        self,
        tenant_id: str,
        *,
        tags: Sequence[str] = (),
        memory_id: str | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> list[Memory]:
        """The tenant's memories, newest said first (then newest stored first).

        Only those carrying at least one of ``tags`` (empty: any), of id
        ``memory_id`` and of exactly ``text``, where given; at most ``limit``.
        """
        ...

    async def update_memory(
        self,
        item: IndexedMemory,
        *,
        charge: TokenCharge | None = None,
    ) -> bool:
        """Replace the stored memory of ``item.memory.id`` (text, vectors, metadata, times).

        Its conversation, positions, tags and scope stay as stored. Charges the
        key (``QuotaExceeded``: nothing written). False: the tenant has no such memory.
        """
        ...

    async def forget_memories(self, tenant_id: str, memory_ids: Sequence[str]) -> tuple[str, ...]:
        """Delete these memories and what threads quote of them; return the ids deleted."""
        ...


@runtime_checkable
class ConversationsById(Protocol):
    """An optional capability of a ``ConversationStore``: a conversation found by our id.

    ``/v3/documents/{id}`` addresses a conversation by its ``Conversation.id``; a
    store without this capability is scanned (``conversations_of``) instead.
    """

    async def conversation_by_id(self, tenant_id: str, id: str) -> Conversation | None:
        """The tenant's conversation whose ``Conversation.id`` is ``id`` (any scope), or None."""
        ...


@frozen
class QueuedWork:
    """A conversation whose memories are still to be built (queued ingest)."""

    tenant_id: str
    conversation_id: str
    scope: Scope
    #: Our id of the conversation: one deleted and made anew is other work.
    id: str
    #: The position of the first message whose memories are still to be built.
    pending_from: int
    #: Changes with every commit of the conversation: memories built for one
    #: revision are committed only while the conversation is still at it.
    revision: int


@runtime_checkable
class IngestQueue(Protocol):
    """An optional capability of a ``ConversationStore``: queued ingest (``queued_ingest``).

    ``commit`` keeps ``Conversation.pending_from`` of the committed conversation
    (and reads it back), so a write is durable before its memories are built: a
    commit with ``pending_from`` set records the work, in the same transaction as
    the messages. Every commit of a conversation changes its revision.
    """

    async def queued(self, *, tenant_id: str | None = None, limit: int = 100) -> list[QueuedWork]:
        """Up to ``limit`` conversations with ``pending_from`` set (of one tenant), oldest first."""
        ...

    async def complete_queued(self, work: QueuedWork, change: ConversationChange) -> bool:
        """Commit the memories built for ``work``, if the conversation is still at its revision.

        ``change`` is an ``unchanged`` change of the stored conversation (its
        ``pending_from`` now None, or a later position) with the memories added
        and the earlier memories' new keyword contexts; it charges nothing. It
        is written like ``commit`` (with its outbox entry) in one transaction.
        False, and nothing written, if the conversation was changed, deleted or
        made anew since ``work`` was read.
        """
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
        """Append messages durably, in order.

        An annotation citing a memory the tenant no longer has (it was deleted
        while the answer streamed) is stored forgotten (``Citation.forget``).
        """
        ...

    async def forget_citations(self, tenant_id: str, memory_ids: Sequence[str]) -> int:
        """Forget the stored annotations that cite these memories; return how many changed.

        Each becomes ``Citation.forget()``: the id stays, the cited text goes.
        It finds them through an index of cited memory ids, not by reading every thread.
        """
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


class StorageBackend(Protocol):
    """Every storage port over one store: what a storage plugin's factory yields.

    The factory's async context manager opens it and closes it; ``close()`` is
    there for callers that hold the backend without that manager.
    """

    @property
    def conversations(self) -> ConversationStore: ...

    @property
    def threads(self) -> ThreadStore: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def index(self) -> MemoryIndex: ...

    async def close(self) -> None:
        """Finish pending writes and release files, connections and threads."""
        ...


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
    #: The memories this turn's ``content`` lists (the system turn's context block), in
    #: order: a model that works on the memories themselves reads them here.
    memories: tuple[Memory, ...] = ()


#: Why an answer ended, in the AI SDK's words: ``stop`` (the model was done),
#: ``length`` (it reached ``max_tokens``), ``content-filter``, ``tool-calls``,
#: ``error``, ``other``, ``unknown`` (the backend did not say).
FinishReason: TypeAlias = Literal[
    "stop", "length", "content-filter", "tool-calls", "error", "other", "unknown"
]


@frozen
class Usage:
    """Tokens of a prompt and of its answer."""

    prompt_tokens: int
    completion_tokens: int
    #: True: counted with the ``TokenCounter``, as the model reported no counts.
    estimated: bool = False


@frozen
class Completed:
    """The last value of a chat model's stream: why the answer ended and what it took."""

    finish_reason: FinishReason
    #: The model's own token counts; None if the backend reports none.
    usage: Usage | None = None


class ChatModel(Protocol):
    """A streaming chat model."""

    @property
    def name(self) -> str: ...

    @property
    def context_window(self) -> int:
        """How many tokens the prompt and the answer may take together."""
        ...

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int
    ) -> AsyncIterator[str | Completed]:
        """Yield the answer's text as it is written, then one ``Completed``.

        ``turns`` is the whole prompt; the memories are in its system turn, as
        text and as values (``ChatTurn.memories``). Raises
        ``ModelUnavailable``.
        """
        ...


class PartHandler(Protocol):
    """Turns a non-text content part (an image, a file) into text for context."""

    def accepts(self, part: ContentPart) -> bool: ...

    async def to_text(self, part: ContentPart) -> str | PartText | None:
        """The text this part contributes, or None if it yields nothing.

        A :class:`~memoryd.core.part_results.PartText` carries a note beside the
        text (why there is none, what was left out) for the ingest response.
        Never raise on a part it cannot read: return ``PartText.skipped(reason)``.
        """
        ...


@frozen
class RerankCandidate:
    """One memory of the pool a reranker reorders, with what the search knows of it."""

    memory: Memory
    #: Cosine similarity of its best piece to the query.
    similarity: float
    #: The fused score the pool came ordered by; a reranker may rescore (``attrs.evolve``).
    score: float
    #: Its pieces' unit vectors (a 2-D array, one row per piece); None if the index
    #: keeps none it can return.
    vectors: Any = field(default=None, eq=False, repr=False)


class Reranker(Protocol):
    """Reorders a search's candidate pool before it is cut to the request's limit.

    It runs only when the request asks (``rerank: true``) and only if the
    ``rerankers`` setting names it; the named ones run in that order, each on
    the order the one before it returned.
    """

    @property
    def name(self) -> str:
        """The name the ``rerankers`` setting picks it by."""
        ...

    async def rerank(
        self, query: str, pool: Sequence[RerankCandidate]
    ) -> Sequence[RerankCandidate]:
        """The same candidates, best first: a permutation of ``pool``.

        ``pool`` comes best first by the fused score, every candidate above the
        request's threshold. A reranker may change scores but may add, drop or
        repeat none; an answer that is not a permutation is ignored.
        """
        ...


class DraftFilter(Protocol):
    """Screens a memory draft at ingest, before it is embedded: allow, redact or reject it.

    Every filter an installed plugin registers runs, in call order, each on the
    draft the one before returned. A failing filter (raises, times out, returns
    something else) rejects the draft: memoryd keeps nothing it could not screen.
    The message itself is stored either way; only its memory is left out.
    """

    @property
    def name(self) -> str:
        """The filter's name, for logs."""
        ...

    async def on_draft(self, draft: MemoryDraft) -> MemoryDraft | None:
        """``draft`` as it is (allow), changed (redact: ``attrs.evolve``), or None (reject)."""
        ...


class ResultFilter(Protocol):
    """Screens a search result before it is returned (or given to a chat and cited).

    Filters run in call order, each on the memory the one before returned; a
    dropped result makes room for the next one, so a search still returns up to
    its limit. A failing filter (raises, times out, returns another memory)
    drops the result.
    """

    @property
    def name(self) -> str:
        """The filter's name, for logs."""
        ...

    async def on_result(self, memory: Memory) -> Memory | None:
        """``memory`` as it is, changed (redacted; its ``id`` kept), or None (drop it)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...
