"""Documents over the fakes: ids, customId upserts, scopes, listing, the by-id scan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from attrs import define

from memoryd.core.conversations import ConversationService
from memoryd.core.document_search import DocumentSearch, DocumentSearchRequest
from memoryd.core.documents import (
    DocumentIn,
    DocumentPatch,
    DocumentService,
    ListRequest,
    custom_id,
    summary,
    title,
)
from memoryd.core.errors import Forbidden, NotFound, ValidationFailed
from memoryd.core.filters import Condition
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.model import Caller, ContentPart, Conversation, Message, StoredMessage
from memoryd.core.ports import ConversationsById
from memoryd.core.retrieval import SearchRequest, SearchService
from memoryd.testing import FixedClock, InMemoryIndex, InMemoryStore

T0 = datetime(2024, 5, 8, tzinfo=UTC)
FULL = Caller(tenant_id="t1", key_id="full")
ALICE = Caller(tenant_id="t1", key_id="alice", tags=("alice",))
BOB = Caller(tenant_id="t1", key_id="bob", tags=("bob",))


def text(value: str) -> tuple[ContentPart, ...]:
    return (ContentPart.from_text(value),)


@define
class ScanOnly:
    """The fake store without ``conversation_by_id``: documents must scan it."""

    inner: InMemoryStore

    def __getattr__(self, name: str) -> Any:
        if name == "conversation_by_id":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def conversations_of(self, tenant_id: str) -> AsyncIterator[Conversation]:
        return self.inner.conversations_of(tenant_id)


def service(store: Any, index: InMemoryIndex, ingest: IngestService) -> DocumentService:
    conversations = ConversationService(store=store, index=index, threads=store)
    return DocumentService(ingest=ingest, conversations=conversations, store=store, index=index)


@pytest.fixture(params=["by-id", "scan"])
def documents(
    request: pytest.FixtureRequest,
    store: InMemoryStore,
    index: InMemoryIndex,
    ingest: IngestService,
) -> DocumentService:
    chosen: Any = store if request.param == "by-id" else ScanOnly(store)
    assert isinstance(chosen, ConversationsById) == (request.param == "by-id")
    return service(chosen, index, ingest)


async def test_ids_and_custom_ids(documents: DocumentService, ingest: IngestService) -> None:
    plain = await documents.add(FULL, DocumentIn(content=text("Alice likes tea.")))
    assert plain.id == plain.conversation_id  # one id for both: no customId
    got = await documents.get(FULL, plain.id)
    assert custom_id(got) is None

    named = await documents.add(FULL, DocumentIn(content=text("Bob likes jazz."), custom_id="b"))
    assert named.id != "b"
    assert (await documents.get(FULL, "b")).id == named.id
    assert (await documents.get(FULL, named.id)).conversation_id == "b"
    again = await documents.add(FULL, DocumentIn(content=text("Bob likes jazz."), custom_id="b"))
    assert (again.id, again.kind, again.memories_added) == (named.id, "unchanged", 0)
    changed = await documents.add(FULL, DocumentIn(content=text("Bob likes soul."), custom_id="b"))
    assert (changed.id, changed.kind) == (named.id, "replaced")

    # A conversation is a document, by its id or its conversationId.
    chat = await ingest.ingest(
        FULL,
        IngestRequest(conversation_id="c", messages=(Message.from_text("user", "Hi there"),)),
    )
    assert (await documents.get(FULL, chat.id)).conversation_id == "c"
    with pytest.raises(NotFound):
        await documents.get(FULL, "nothing")


async def test_scopes_isolate(documents: DocumentService) -> None:
    hers = await documents.add(ALICE, DocumentIn(content=text("Alice's secret plan.")))
    assert (await documents.get(ALICE, hers.id)).container_tags == ("alice",)
    assert (await documents.get(FULL, hers.id)).id == hers.id  # a full key reads every scope
    for attempt in (documents.get(BOB, hers.id), documents.delete(BOB, hers.id)):
        with pytest.raises(NotFound):
            await attempt
    assert (await documents.list(BOB, ListRequest())).total == 0
    with pytest.raises(Forbidden):
        await documents.list(BOB, ListRequest(container_tags=("alice",)))
    with pytest.raises(Forbidden):  # written by Alice's key: a full key may not rewrite it
        await documents.update(FULL, hers.id, DocumentPatch(metadata={"k": 1}))


async def test_list_filters_sorts_and_pages(documents: DocumentService, clock: FixedClock) -> None:
    ids = []
    for i in range(5):
        added = await documents.add(
            FULL,
            DocumentIn(
                content=text(f"note {i}"),
                container_tags=("even",) if i % 2 == 0 else ("odd",),
                metadata={"n": i},
            ),
        )
        ids.append(added.id)
        clock.advance(60)
    page = await documents.list(FULL, ListRequest(order="asc", limit=2, page=2))
    assert [c.id for c in page.documents] == ids[2:4]
    assert (page.total, page.pages) == (5, 3)
    newest = await documents.list(FULL, ListRequest(limit=1))
    assert [c.id for c in newest.documents] == [ids[4]]
    even = await documents.list(FULL, ListRequest(container_tags=("even",), order="asc"))
    assert [c.id for c in even.documents] == ids[0::2]
    big = await documents.list(
        FULL, ListRequest(conditions=(Condition("n", "gte", 3),), order="asc")
    )
    assert [c.id for c in big.documents] == ids[3:]
    deleted = await documents.delete_bulk(FULL, ids=[ids[0], "nope"], container_tags=("odd",))
    assert deleted.deleted == 3
    assert deleted.errors == (("nope", "Document not found"),)
    assert [c.id for c in (await documents.list(FULL, ListRequest(order="asc"))).documents] == [
        ids[2],
        ids[4],
    ]


async def test_update_keeps_what_it_is_not_given(documents: DocumentService) -> None:
    added = await documents.add(
        FULL, DocumentIn(content=text("v1"), custom_id="d", metadata={"a": 1})
    )
    await documents.update(FULL, "d", DocumentPatch(container_tags=("t",)))
    got = await documents.get(FULL, added.id)
    assert (got.container_tags, dict(got.metadata), got.messages[0].message.text) == (
        ("t",),
        {"a": 1},
        "v1",
    )
    await documents.update(FULL, added.id, DocumentPatch(content=text("v2")))
    assert (await documents.get(FULL, "d")).messages[0].message.text == "v2"
    with pytest.raises(ValidationFailed):
        await documents.update(FULL, "d", DocumentPatch(custom_id="e"))
    assert await documents.processing(FULL) == ()


async def test_search_groups_chunks_by_document(
    documents: DocumentService, search: SearchService
) -> None:
    one = await documents.add(FULL, DocumentIn(content=text("red apples and green pears")))
    await documents.add(FULL, DocumentIn(content=text("blue whales swim")))
    finder = DocumentSearch(search=search, documents=documents)
    hits = await finder.run(
        FULL, DocumentSearchRequest(search=SearchRequest(q="red apples"), limit=1)
    )
    assert [h.document.id for h in hits] == [one.id]
    assert hits[0].chunks[0].relevant
    assert hits[0].chunks[0].content == "red apples and green pears"
    none = await finder.run(
        FULL,
        DocumentSearchRequest(search=SearchRequest(q="red apples"), document_threshold=1.01),
    )
    assert none == []
    only = await finder.run(
        FULL, DocumentSearchRequest(search=SearchRequest(q="whales"), doc_id=one.id)
    )
    assert {h.document.id for h in only} <= {one.id}


def test_title_and_summary() -> None:
    long = "First sentence here. " + "word " * 100
    doc = Conversation(
        id="x",
        tenant_id="t",
        conversation_id="x",
        messages=(),
        metadata={},
    )
    assert title(doc) is None
    assert summary(doc) is None
    with_text = Conversation(
        id="x",
        tenant_id="t",
        conversation_id="x",
        messages=(StoredMessage(Message.from_text("user", long), position=0, received_at=T0),),
    )
    assert title(with_text) == long[:80].strip()
    assert summary(with_text) == "First sentence here."
