"""Use cases: documents (``/v3/documents``), supermemory's name for what memories come from.

A document *is* a conversation: its ``id`` is the conversation's id and its
``customId`` the ``conversationId``. A document added without a ``customId``
gets one new id for both, so ``customId`` reads as absent. A text, a file or a
fetched URL is stored as a conversation of one user message; a conversation
sent to ``/v4/conversations`` is a document of all its messages. Either way the
same conversation is read, changed and forgotten through both APIs.

Writes go through :class:`~memoryd.core.ingest.IngestService`, so a
``customId`` upserts exactly as a ``conversationId`` does (the same content:
nothing happens; anything else replaces it), with the same tags, quota and
embed budget. Reads and deletes go through the conversation store with the
scope rules of :mod:`memoryd.core.conversations`.

A document is processed while its request waits, so it is ``done`` when the
answer comes, unless the setting ``queued_ingest`` is on: then it is
``queued`` (:func:`status`) until the worker of :mod:`memoryd.core.queued` has
built its memories, and :meth:`DocumentService.processing` lists it meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Literal, TypeAlias

from attrs import define, frozen

from memoryd.core.conversations import ConversationService, addressable
from memoryd.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from memoryd.core.filters import Clause
from memoryd.core.ingest import IngestRequest, IngestResult, IngestService
from memoryd.core.model import Caller, ContentPart, Conversation, Memory, Message, Scalar
from memoryd.core.ports import ConversationsById, ConversationStore, IngestQueue, MemoryIndex

#: A document's processing status, as supermemory names them.
DocumentStatus: TypeAlias = Literal["queued", "done", "failed"]
#: A document whose memories are built (every one, without queued ingest).
STATUS_DONE: DocumentStatus = "done"
#: A document whose memories are still to be built (queued ingest).
STATUS_QUEUED: DocumentStatus = "queued"
#: The most queued documents ``processing`` lists.
PROCESSING_LIMIT = 1000


def status(conversation: Conversation) -> DocumentStatus:
    """``queued`` while memories of some of its messages are still to be built, else ``done``."""
    return STATUS_QUEUED if conversation.queued else STATUS_DONE


SortField: TypeAlias = Literal["createdAt", "updatedAt"]
SortOrder: TypeAlias = Literal["asc", "desc"]

#: The most characters of a summary (``includeSummary``).
SUMMARY_CHARS = 280
#: The most characters of a title made from the first line of a text.
TITLE_CHARS = 80


@frozen
class DocumentIn:
    """A document to add: the content of its one message, and what it is filed under."""

    content: tuple[ContentPart, ...]
    custom_id: str | None = None
    container_tags: tuple[str, ...] = ()
    metadata: Mapping[str, Scalar] | None = None
    #: When the content is from (``documentDate``): its memories are said then.
    said_at: datetime | None = None


@frozen
class DocumentPatch:
    """``PATCH /v3/documents/{id}``: each field given replaces the stored one."""

    content: tuple[ContentPart, ...] | None = None
    custom_id: str | None = None
    container_tags: tuple[str, ...] | None = None
    metadata: Mapping[str, Scalar] | None = None
    said_at: datetime | None = None


@frozen
class ListRequest:
    container_tags: tuple[str, ...] = ()
    conditions: tuple[Clause, ...] = ()
    sort: SortField = "createdAt"
    order: SortOrder = "desc"
    #: 1-based.
    page: int = 1
    limit: int = 10


@frozen
class DocumentPage:
    documents: tuple[Conversation, ...]
    total: int
    page: int
    limit: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.limit) if self.limit else 0


@frozen
class BulkDeleted:
    deleted: int
    #: ``(id, why)`` of each id that was not deleted.
    errors: tuple[tuple[str, str], ...] = ()


def custom_id(conversation: Conversation) -> str | None:
    """The ``customId`` the document was given; None if it was given none."""
    return None if conversation.conversation_id == conversation.id else conversation.conversation_id


def document_text(conversation: Conversation) -> str:
    """The words of the document: its messages' text, a blank line between messages."""
    return "\n\n".join(m.message.text for m in conversation.messages if m.message.text)


def first_part(conversation: Conversation) -> ContentPart | None:
    """The first non-text part of the document's first message (its file or URL), if any."""
    for stored in conversation.messages[:1]:
        for part in stored.message.content:
            if part.type != "text":
                return part
    return None


def source_url(conversation: Conversation) -> str | None:
    """The http(s) URL the document was fetched from, if it was."""
    part = first_part(conversation)
    url = part.url if part is not None else None
    return url if url and url.split(":", 1)[0].lower() in ("http", "https") else None


def document_type(conversation: Conversation) -> str:
    """supermemory's ``type``: ``text``, ``pdf``, ``image``, ``webpage``, ``video``, ``audio``."""
    part = first_part(conversation)
    if part is None:
        return "text"
    mime = (part.mime_type or "").split(";", 1)[0].strip().lower()
    if part.type == "image_url" or mime.startswith("image/"):
        return "image"
    if mime == "application/pdf":
        return "pdf"
    if mime.startswith(("video/", "audio/")):
        return mime.split("/", 1)[0]
    if source_url(conversation) is not None or mime in ("text/html", "application/xhtml+xml"):
        return "webpage"
    return "text"


def title(conversation: Conversation) -> str | None:
    """The ``title`` metadata, else the file's name or URL, else the text's first line."""
    given = conversation.metadata.get("title")
    if isinstance(given, str) and given:
        return given
    part = first_part(conversation)
    if part is not None and (part.filename or source_url(conversation)):
        return part.filename or source_url(conversation)
    line = document_text(conversation).strip().split("\n", 1)[0].strip()
    return line[:TITLE_CHARS] or None


def summary(conversation: Conversation) -> str | None:
    """An extractive summary (no model): the text's first sentences, up to SUMMARY_CHARS."""
    text = " ".join(document_text(conversation).split())
    if len(text) <= SUMMARY_CHARS:
        return text or None
    cut = text[:SUMMARY_CHARS]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > 0 else cut.rsplit(" ", 1)[0] + " ..."


def _matches(conversation: Conversation, tags: Sequence[str], conditions: Sequence[Clause]) -> bool:
    if tags and not set(tags) & set(conversation.container_tags):
        return False
    return all(c.matches(conversation.metadata) for c in conditions)


@define
class DocumentService:
    """Documents over the conversation store, the ingest and the conversation use cases."""

    ingest: IngestService
    conversations: ConversationService
    store: ConversationStore
    index: MemoryIndex

    async def add(self, caller: Caller, document: DocumentIn) -> IngestResult:
        """Add (or, by ``customId``, upsert) a document; its memories are searchable on return."""
        new_id = None if document.custom_id is not None else uuid.uuid4().hex
        conversation_id = document.custom_id or new_id
        assert conversation_id is not None
        message = Message(role="user", content=document.content, timestamp=document.said_at)
        return await self.ingest.ingest(
            caller,
            IngestRequest(
                conversation_id=conversation_id,
                messages=(message,),
                container_tags=document.container_tags,
                metadata=dict(document.metadata or {}),
                id=new_id,
            ),
        )

    async def get(self, caller: Caller, ref: str) -> Conversation:
        """The document of id (or ``customId``) ``ref`` this key may address; else ``NotFound``."""
        scope = addressable(caller)
        found = await self.store.get_conversation(caller.tenant_id, ref, scope=scope)
        if found is None:
            found = await self._by_id(caller, ref)
        if found is None:
            raise NotFound("Document not found", details={"id": ref})
        return found

    async def _by_id(self, caller: Caller, id: str) -> Conversation | None:
        store = self.store
        found: Conversation | None = None
        if isinstance(store, ConversationsById):
            found = await store.conversation_by_id(caller.tenant_id, id)
        else:
            async for conversation in store.conversations_of(caller.tenant_id):
                if conversation.id == id:
                    found = conversation
                    break
        if found is None or (caller.tag_limited and found.scope != caller.scope):
            return None
        return found

    async def memories(self, caller: Caller, document: Conversation) -> list[Memory]:
        """The document's memories, oldest first."""
        ids = await self.store.memory_ids(
            caller.tenant_id, document.conversation_id, scope=document.scope
        )
        return await self.index.fetch(caller.tenant_id, ids)

    async def list(self, caller: Caller, request: ListRequest) -> DocumentPage:
        """A page of the documents this key may address, filtered and sorted."""
        tags = request.container_tags
        if tags and not caller.may_use_tags(tags):
            raise Forbidden(
                "This API key may not list these container tags",
                details={
                    "containerTags": sorted(set(tags) - set(caller.tags)),
                    "allowed": list(caller.tags),
                },
            )
        found = [c async for c in self._visible(caller, tags, request.conditions)]
        attribute = "created_at" if request.sort == "createdAt" else "updated_at"
        found.sort(
            key=lambda c: (getattr(c, attribute) or datetime.min, c.id),
            reverse=request.order == "desc",
        )
        start = (request.page - 1) * request.limit
        return DocumentPage(
            documents=tuple(found[start : start + request.limit]),
            total=len(found),
            page=request.page,
            limit=request.limit,
        )

    async def _visible(
        self, caller: Caller, tags: Sequence[str], conditions: Sequence[Clause]
    ) -> AsyncIterator[Conversation]:
        async for conversation in self.store.conversations_of(caller.tenant_id):
            if caller.tag_limited and conversation.scope != caller.scope:
                continue
            if _matches(conversation, tags, conditions):
                yield conversation

    async def update(self, caller: Caller, ref: str, patch: DocumentPatch) -> IngestResult:
        """Change a document's content, tags or metadata (a new content replaces its memories)."""
        document = await self.get(caller, ref)
        if patch.custom_id is not None and patch.custom_id != custom_id(document):
            raise ValidationFailed(
                [
                    FieldError(
                        path="customId",
                        message="a document's customId cannot be changed: add a new document "
                        "with that customId and delete this one",
                    )
                ]
            )
        if document.scope != caller.scope:
            raise Forbidden(
                "This document was written by a key limited to container tags: update it "
                "with a key limited to the same tags",
                details={"id": ref},
            )
        if patch.content is not None:
            messages: tuple[Message, ...] = (
                Message(role="user", content=patch.content, timestamp=patch.said_at),
            )
        else:
            messages = tuple(m.message for m in document.messages)
        tags = patch.container_tags if patch.container_tags else document.container_tags
        metadata = patch.metadata if patch.metadata is not None else document.metadata
        return await self.ingest.ingest(
            caller,
            IngestRequest(
                conversation_id=document.conversation_id,
                messages=messages,
                container_tags=tags,
                metadata=dict(metadata),
            ),
        )

    async def delete(self, caller: Caller, ref: str) -> int:
        """Forget the document of id (or ``customId``) ``ref``; return the memories removed."""
        document = await self.get(caller, ref)
        return await self.conversations.forget(caller, document.conversation_id)

    async def delete_bulk(
        self, caller: Caller, *, ids: Sequence[str] = (), container_tags: Sequence[str] = ()
    ) -> BulkDeleted:
        """Forget the documents of these ids, and every document under these tags."""
        deleted = 0
        errors: list[tuple[str, str]] = []
        for ref in dict.fromkeys(ids):
            try:
                await self.delete(caller, ref)
            except NotFound:
                errors.append((ref, "Document not found"))
            else:
                deleted += 1
        if container_tags:
            page = await self.list(
                caller, ListRequest(container_tags=tuple(container_tags), limit=2**31)
            )
            for document in page.documents:
                try:
                    await self.conversations.forget(caller, document.conversation_id)
                except NotFound:
                    continue  # deleted meanwhile, or above by its id
                deleted += 1
        return BulkDeleted(deleted=deleted, errors=tuple(errors))

    async def processing(self, caller: Caller) -> tuple[Conversation, ...]:
        """The caller's documents not yet ``done`` (queued ingest), oldest queued first.

        A store without ``IngestQueue`` queues nothing: none.
        """
        store = self.store
        if not isinstance(store, IngestQueue):
            return ()
        found: list[Conversation] = []
        for work in await store.queued(tenant_id=caller.tenant_id, limit=PROCESSING_LIMIT):
            if caller.tag_limited and work.scope != caller.scope:
                continue
            conversation = await store.get_conversation(
                caller.tenant_id, work.conversation_id, scope=work.scope
            )
            if conversation is not None and conversation.queued:
                found.append(conversation)
        return tuple(found)
