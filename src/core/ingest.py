"""Use case: upsert a conversation and turn its new messages into memories."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import ParamSpec, TypeVar

from attrs import Factory, define, field, frozen

from memoryd.core.errors import Forbidden, PayloadTooLarge
from memoryd.core.indexer import Indexer
from memoryd.core.memories import MemoryPolicy, build_memories, context_updates
from memoryd.core.model import (
    Caller,
    Conversation,
    Memory,
    MemoryDraft,
    Message,
    Scalar,
    StoredMessage,
)
from memoryd.core.part_results import PartOutcome
from memoryd.core.parts import part_label, part_text
from memoryd.core.ports import (
    ChangeKind,
    Clock,
    ConversationChange,
    ConversationStore,
    DraftFilter,
    Embedder,
    IndexedMemory,
    MemoryIndex,
    PartHandler,
    TokenCharge,
    TokenCounter,
)
from memoryd.core.queue_signal import QueueSignal
from memoryd.core.quota import check_quota
from memoryd.core.reading import PartReader, UrlFetcher
from memoryd.core.screening import screen_contexts, screen_drafts


@frozen
class IngestRequest:
    conversation_id: str
    messages: tuple[Message, ...]
    container_tags: tuple[str, ...] = ()
    metadata: Mapping[str, Scalar] = field(factory=dict)
    #: The id a conversation this request creates gets (a document added without a
    #: ``customId`` uses one id for both); None: a new random one. An existing
    #: conversation keeps its id.
    id: str | None = None


@frozen
class IngestResult:
    id: str
    conversation_id: str
    kind: ChangeKind
    messages_added: int
    memories_added: int
    memories_removed: int
    #: What became of each image and file part of the new messages (read, skipped, ...).
    parts: tuple[PartOutcome, ...] = ()
    #: Queued ingest: the memories are still to be built (status ``queued``); False: ``done``.
    queued: bool = False


def classify(
    stored: Sequence[StoredMessage], incoming: Sequence[Message]
) -> tuple[ChangeKind, int]:
    """How ``incoming`` relates to the stored history, and where new messages start.

    The same messages are ``unchanged``; the stored ones followed by more, in
    the same order, are ``appended`` from the stored length; anything else
    (edited, reordered, shortened) ``replaced`` from 0.
    """
    if not stored:
        return "created", 0
    old = [s.message.fingerprint() for s in stored]
    new = [m.fingerprint() for m in incoming]
    if new == old:
        return "unchanged", len(old)
    if len(new) > len(old) and new[: len(old)] == old:
        return "appended", len(old)
    return "replaced", 0


def resolve_tags(caller: Caller, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The tags a write gets: the requested ones, which must be inside the key's scope.

    A tag-limited key that names no tags writes under all of its own tags.
    """
    if not requested:
        return caller.tags
    if not caller.may_use_tags(requested):
        outside = sorted(set(requested) - set(caller.tags))
        raise Forbidden(
            "This API key may not write to these container tags",
            details={"containerTags": outside, "allowed": list(caller.tags)},
        )
    return tuple(dict.fromkeys(requested))


#: The embed budget counts a text as at least one token per this many characters.
CHARS_PER_TOKEN = 4


P = ParamSpec("P")
R = TypeVar("R")

#: Requests whose new messages hold more text than this count their tokens and build
#: their memories on a worker thread.
OFF_LOOP_CHARS = 64 * 1024


async def _maybe_off_loop(heavy: bool, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args)``: on a worker thread when ``heavy``, else right here."""
    if heavy:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)


@define
class IngestService:
    """Upserts conversations: stores messages, embeds new memories, charges tokens."""

    store: ConversationStore
    index: MemoryIndex
    embedder: Embedder
    tokens: TokenCounter
    clock: Clock
    policy: MemoryPolicy = field(factory=MemoryPolicy)
    part_handlers: Sequence[PartHandler] = ()
    #: Fetches the http(s) URLs of image and file parts (the fetch guard); None: fetching is
    #: off (setting ``fetch_urls``), and such parts are refused, each saying so.
    fetcher: UrlFetcher | None = None
    #: The plugins' ingest filters (contained), run on each draft before it is embedded.
    filters: Sequence[DraftFilter] = ()
    #: The most tokens one request may send to the embedder (setting ``max_embed_tokens``;
    #: None: no limit).
    max_embed_tokens: int | None = None
    #: Applies the committed change (the store's outbox entry) to ``index``; share one
    #: between the services of an app.
    indexer: Indexer = field(
        default=Factory(lambda self: Indexer(self.store, self.index), takes_self=True)
    )
    #: Queued ingest (setting ``queued_ingest``): a write answers once its messages are
    #: durable, and this signal wakes the worker that builds the memories
    #: (:mod:`memoryd.core.queued`); None: memories are built while the request waits.
    queue: QueueSignal | None = None

    async def ingest(self, caller: Caller, request: IngestRequest) -> IngestResult:
        tags = resolve_tags(caller, request.container_tags)
        # Ids are namespaced by the key's scope: a conversation of that id in another
        # scope is not looked at, so "exists elsewhere" writes exactly as "does not exist".
        scope = caller.scope
        existing = await self.store.get_conversation(
            caller.tenant_id, request.conversation_id, scope=scope
        )
        now = self.clock.now()
        stored = existing.messages if existing else ()
        kind, start = classify(stored, request.messages)
        messages = self._stored_messages(stored, request.messages, start, now)
        new_messages = messages[start:] if kind != "unchanged" else ()
        # Memories are built from here: a queued write before this one may have left the
        # memories of earlier messages unbuilt (a replacing write starts over at 0).
        pending = existing.pending_from if existing is not None else None
        build_from = start if pending is None else min(start, pending)
        queue = self.queue
        # A large request counts its tokens and builds its memories off the event loop
        # (about 0.2 s a MB each), so that other requests are served meanwhile.
        heavy = sum(len(m.message.text) for m in new_messages) > OFF_LOOP_CHARS
        charge = await _maybe_off_loop(heavy, self._charge, caller, new_messages)

        conversation = Conversation(
            id=existing.id if existing else (request.id or uuid.uuid4().hex),
            tenant_id=caller.tenant_id,
            conversation_id=request.conversation_id,
            messages=messages,
            container_tags=tags,
            metadata=dict(request.metadata),
            created_at=existing.created_at if existing else now,
            updated_at=now,
            scope=scope,
            pending_from=build_from if queue is not None and build_from < len(messages) else None,
        )
        if (
            kind == "unchanged"
            and existing is not None
            and existing.container_tags == tags
            and dict(existing.metadata) == dict(request.metadata)
            and (pending is None or queue is not None)
        ):
            # A retry of a request whose index update failed: finish that update first.
            await self.indexer.drain(caller.tenant_id, request.conversation_id)
            if queue is not None and pending is not None:
                queue.wake()
            queued = pending is not None
            return IngestResult(existing.id, request.conversation_id, kind, 0, 0, 0, queued=queued)

        removed: tuple[str, ...] = ()
        if kind == "replaced":
            removed = await self.store.memory_ids(
                caller.tenant_id, request.conversation_id, scope=scope
            )
        if queue is not None:
            return await self._queue(
                queue,
                conversation=conversation,
                kind=kind,
                new_messages=new_messages,
                start=start,
                removed=removed,
                charge=charge,
                heavy=heavy,
            )
        drafts: list[MemoryDraft] = []
        updates: list[tuple[int, str]] = []
        outcomes: tuple[PartOutcome, ...] = ()
        if build_from < len(messages):
            # Earlier turns are the new memories' context (and they gain the new turns).
            extra, outcomes = await PartReader(self.part_handlers, self.fetcher).texts(
                messages, max(0, build_from - self.policy.context_before), report_from=start
            )
            drafts, updates = await _maybe_off_loop(
                heavy, self._drafts, messages, build_from, extra, build_from > 0
            )
            updates = await screen_contexts(self.filters, updates, drafts)
            drafts = await screen_drafts(self.filters, drafts)
        added = await self._embed(conversation, drafts, now)
        await self.store.commit(
            ConversationChange(
                kind=kind,
                conversation=conversation,
                new_messages=new_messages,
                added=added,
                removed_memory_ids=removed,
                charge=charge,
                context_updates=tuple(updates),
            )
        )
        # The commit recorded the index change (its outbox entry): apply it before answering.
        await self.indexer.drain(caller.tenant_id, request.conversation_id)
        return IngestResult(
            conversation.id,
            request.conversation_id,
            kind,
            messages_added=len(new_messages),
            memories_added=len(added),
            memories_removed=len(removed),
            parts=outcomes,
        )

    async def _queue(
        self,
        queue: QueueSignal,
        *,
        conversation: Conversation,
        kind: ChangeKind,
        new_messages: tuple[StoredMessage, ...],
        start: int,
        removed: tuple[str, ...],
        charge: TokenCharge | None,
        heavy: bool,
    ) -> IngestResult:
        """Queued ingest: commit the messages and the pending work; the worker builds memories.

        The embed budget is checked here, on the new messages' text (their image
        and file parts are read by the worker), so that a refused request stores
        nothing; the memories a replacing write removes go at once.
        """
        drafts = await _maybe_off_loop(
            heavy, build_memories, conversation.messages, start=start, policy=self.policy
        )
        self._check_embed_budget(drafts)
        await self.store.commit(
            ConversationChange(
                kind=kind,
                conversation=conversation,
                new_messages=new_messages,
                added=(),
                removed_memory_ids=removed,
                charge=charge,
            )
        )
        await self.indexer.drain(conversation.tenant_id, conversation.conversation_id)
        queue.wake()
        return IngestResult(
            conversation.id,
            conversation.conversation_id,
            kind,
            messages_added=len(new_messages),
            memories_added=0,
            memories_removed=len(removed),
            queued=conversation.pending_from is not None,
        )

    @staticmethod
    def _stored_messages(
        stored: Sequence[StoredMessage],
        incoming: Sequence[Message],
        start: int,
        now: datetime,
    ) -> tuple[StoredMessage, ...]:
        kept = tuple(stored[:start])
        fresh = tuple(
            StoredMessage(message=m, position=start + i, received_at=now)
            for i, m in enumerate(incoming[start:])
        )
        return kept + fresh

    def _drafts(
        self,
        messages: Sequence[StoredMessage],
        start: int,
        extra: Mapping[int, str],
        appended: bool,
    ) -> tuple[list[MemoryDraft], list[tuple[int, str]]]:
        """The new memories and the earlier ones' new keyword contexts, within the budget."""
        drafts = build_memories(messages, start=start, policy=self.policy, extra_text=extra)
        self._check_embed_budget(drafts)
        updates = (
            context_updates(messages, start=start, policy=self.policy, extra_text=extra)
            if appended
            else []
        )
        return drafts, updates

    def _charge(self, caller: Caller, new_messages: Sequence[StoredMessage]) -> TokenCharge | None:
        tokens = sum(self.tokens.count(m.message.text) for m in new_messages)
        check_quota(used=caller.used_tokens, quota=caller.quota_tokens, tokens=tokens)
        return TokenCharge(key_id=caller.key_id, tokens=tokens, quota=caller.quota_tokens)

    def _check_embed_budget(self, drafts: Sequence[MemoryDraft]) -> None:
        """Refuse (413, nothing stored) a request that would embed more than the limit.

        Counting stops just past the limit, so that a huge body costs little more
        than a refusal: the count reported is a lower bound. A text counts at least a
        token per :data:`CHARS_PER_TOKEN` characters: the embedding model reads runs of
        punctuation as one token a character, where tiktoken packs them into a few.
        """
        limit = self.max_embed_tokens
        if limit is None:
            return
        tokens = 0
        for text in (t for d in drafts for t in d.embed_texts):
            tokens += max(self.tokens.count(text), len(text) // CHARS_PER_TOKEN)
            if tokens > limit:
                raise PayloadTooLarge(
                    f"This request would embed at least {tokens} tokens, more than the "
                    f"{limit} that the setting max_embed_tokens allows; nothing was stored. "
                    "Send a long conversation in parts (append its messages over several "
                    "requests), or raise max_embed_tokens",
                    details={
                        "setting": "max_embed_tokens",
                        "limitTokens": limit,
                        "requestTokensAtLeast": tokens,
                    },
                )

    async def _embed(
        self, conversation: Conversation, drafts: Sequence[MemoryDraft], now: datetime
    ) -> tuple[IndexedMemory, ...]:
        return await embed_drafts(self.embedder, conversation, drafts, now=now)


async def part_texts(
    handlers: Sequence[PartHandler], messages: Sequence[StoredMessage], start: int
) -> dict[int, str]:
    """Text that the first accepting handler makes of each non-text part, by position.

    Each part's text starts with its :func:`part_label` (``[part 1, file a.pdf]``),
    so a memory made of it says which part of the message it came from.
    """
    texts: dict[int, str] = {}
    for i in range(start, len(messages)):
        found: list[str] = []
        for index, part in enumerate(messages[i].message.content):
            if part.type == "text":
                continue
            text = await part_text(handlers, part)
            if text:
                found.append(f"{part_label(index, part)} {text.strip()}")
        if found:
            texts[i] = "\n".join(found)
    return texts


async def embed_drafts(
    embedder: Embedder,
    conversation: Conversation,
    drafts: Sequence[MemoryDraft],
    *,
    now: datetime | Callable[[MemoryDraft], datetime],
) -> tuple[IndexedMemory, ...]:
    """Embed every draft's pieces in one batch; each memory keeps the rows of its pieces.

    Each memory gets a new id; ``now`` is its creation time (or says it, per draft).
    """
    if not drafts:
        return ()
    vectors = await embedder.embed_documents([t for d in drafts for t in d.embed_texts])
    added: list[IndexedMemory] = []
    row = 0
    for draft in drafts:
        pieces = len(draft.embed_texts)
        created = now(draft) if callable(now) else now
        added.append(
            IndexedMemory(
                memory=Memory(
                    id=uuid.uuid4().hex,
                    tenant_id=conversation.tenant_id,
                    conversation_id=conversation.conversation_id,
                    text=draft.text,
                    positions=draft.positions,
                    said_at=draft.said_at,
                    container_tags=conversation.container_tags,
                    metadata=conversation.metadata,
                    created_at=created,
                    updated_at=created,
                    scope=conversation.scope,
                    speaker=draft.speaker,
                ),
                vectors=vectors[row : row + pieces],
                keyword_context=draft.keyword_context,
            )
        )
        row += pieces
    return tuple(added)
