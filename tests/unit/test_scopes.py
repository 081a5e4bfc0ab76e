"""Scopes with the fakes: threads keep theirs, ids are namespaced by it, forgetting forgets."""

from __future__ import annotations

import pytest

from memoryd.core.chat import ChatReply, ChatRequest, ChatService
from memoryd.core.conversations import ConversationService
from memoryd.core.errors import NotFound, ValidationFailed
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.model import Caller, Message, ScoredMemory
from memoryd.core.prompt import citations_for
from memoryd.core.retrieval import ContextRule, SearchRequest, SearchService, select_context
from memoryd.testing import FixedClock, InMemoryIndex, InMemoryStore, ScriptedChatModel, WordCounter

TENANT = "t1"
FULL = Caller(tenant_id=TENANT, key_id="full")
ALICE = Caller(tenant_id=TENANT, key_id="alice", tags=("alice",))
BOB = Caller(tenant_id=TENANT, key_id="bob", tags=("bob",))


def user(text: str) -> Message:
    return Message.from_text("user", text)


@pytest.fixture
def chat(search: SearchService, store: InMemoryStore, clock: FixedClock) -> ChatService:
    return ChatService(
        search=search,
        threads=store,
        model=ScriptedChatModel(chunks=("ok",)),
        tokens=WordCounter(),
        clock=clock,
    )


@pytest.fixture
def conversations(store: InMemoryStore, index: InMemoryIndex) -> ConversationService:
    return ConversationService(store=store, index=index, threads=store)


async def remember(
    ingest: IngestService, who: Caller, cid: str, text: str, tags: tuple[str, ...] = ()
) -> None:
    await ingest.ingest(
        who, IngestRequest(conversation_id=cid, messages=(user(text),), container_tags=tags)
    )


@pytest.fixture
async def seeded(ingest: IngestService) -> None:
    await remember(ingest, FULL, "a", "Alice flies to Lisbon on the red plane", ("alice",))
    await remember(ingest, FULL, "b", "Bob flies to Lisbon on the blue plane", ("bob",))
    await remember(ingest, FULL, "n", "Nobody flies to Lisbon on the green plane")


def cited_text(reply: ChatReply) -> str:
    return " ".join(a.content for a in reply.annotations)


async def answer(chat: ChatService, who: Caller, text: str, **kw: object) -> ChatReply:
    reply = await chat.start(who, ChatRequest(messages=(user(text),), **kw))  # type: ignore[arg-type]
    _ = [event async for event in reply.events()]
    return reply


# --- threads keep their scope ---------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
async def test_a_full_key_continuing_a_tag_limited_thread_searches_only_its_tags(
    chat: ChatService, store: InMemoryStore
) -> None:
    hers = await answer(chat, ALICE, "Who flies to Lisbon on a plane?")
    assert "red" in cited_text(hers)
    assert hers.thread.container_tags == ("alice",)
    continued = await answer(
        chat, FULL, "Who flies to Lisbon on a plane?", thread_id=hers.thread.id
    )
    assert "red" in cited_text(continued)
    assert "blue" not in cited_text(continued)
    assert "green" not in cited_text(continued)
    system = continued.prompt.turns[0].content
    assert "blue" not in system
    assert "green" not in system
    # So the thread Alice reads holds nothing outside her tags.
    thread = await chat.get_thread(ALICE, hers.thread.id)
    assert all(
        "blue" not in a.content and "green" not in a.content
        for m in thread.messages
        for a in m.annotations
    )


@pytest.mark.usefixtures("seeded")
async def test_tags_outside_the_continued_threads_are_a_400_naming_container_tags(
    chat: ChatService, store: InMemoryStore
) -> None:
    hers = await answer(chat, ALICE, "Who flies?")
    before = await store.get_thread(TENANT, hers.thread.id)
    with pytest.raises(ValidationFailed) as raised:
        await chat.start(
            FULL,
            ChatRequest(
                messages=(user("Who?"),), thread_id=hers.thread.id, container_tags=("bob",)
            ),
        )
    assert [e.path for e in raised.value.errors] == ["containerTags"]
    assert "['bob']" in raised.value.errors[0].message
    assert await store.get_thread(TENANT, hers.thread.id) == before
    # Tags within the thread's are fine.
    again = await answer(
        chat, FULL, "Who flies to Lisbon?", thread_id=hers.thread.id, container_tags=("alice",)
    )
    assert "red" in cited_text(again)


@pytest.mark.usefixtures("seeded")
async def test_a_new_thread_keeps_the_requests_tags_as_its_scope(chat: ChatService) -> None:
    made = await answer(chat, FULL, "Who flies to Lisbon?", container_tags=("alice",))
    assert made.thread.container_tags == ("alice",)
    assert "blue" not in cited_text(made)
    # Alice may read and continue it; Bob may not.
    assert (await chat.get_thread(ALICE, made.thread.id)).id == made.thread.id
    with pytest.raises(NotFound):
        await chat.get_thread(BOB, made.thread.id)
    whole = await answer(chat, FULL, "Who flies to Lisbon?")
    assert whole.thread.container_tags == ()
    with pytest.raises(NotFound):
        await chat.get_thread(ALICE, whole.thread.id)


@pytest.mark.usefixtures("seeded")
async def test_a_narrower_key_repeating_a_broader_keys_query_gets_only_its_own(
    search: SearchService,
) -> None:
    request = SearchRequest(q="Who flies to Lisbon on a plane?", limit=10)
    broad = await search.search(FULL, request)
    assert {r.memory.conversation_id for r in broad} == {"a", "b", "n"}
    misses = search.cache.misses
    narrow = await search.search(ALICE, request)
    assert search.cache.misses == misses + 1  # a different scope is a different entry
    assert {r.memory.conversation_id for r in narrow} == {"a"}
    assert await search.search(ALICE, request) == narrow
    assert {r.memory.conversation_id for r in await search.search(BOB, request)} == {"b"}


# --- conversation ids are namespaced by scope -----------------------------------------------------


async def test_a_tag_limited_key_cannot_tell_elsewhere_from_nowhere(
    ingest: IngestService, conversations: ConversationService, store: InMemoryStore
) -> None:
    await remember(ingest, FULL, "there", "admin secret", ("bob",))
    outcomes: dict[str, list[object]] = {}
    for cid in ("there", "nowhere"):
        for call in (conversations.get, conversations.forget):
            with pytest.raises(NotFound) as raised:
                await call(ALICE, cid)
            details = {**raised.value.details, "conversationId": "<id>"}
            outcomes.setdefault(cid, []).append((type(raised.value), raised.value.message, details))
    assert outcomes["there"] == outcomes["nowhere"]
    assert outcomes["there"][0] == (NotFound, "Conversation not found", {"conversationId": "<id>"})
    assert list(store.conversations) == [(TENANT, (), "there")]


async def test_a_full_key_reads_the_empty_scope_first_and_forgets_every_scope(
    ingest: IngestService,
    conversations: ConversationService,
    index: InMemoryIndex,
    clock: FixedClock,
) -> None:
    await remember(ingest, ALICE, "x", "alice wrote this")
    clock.advance(10)
    await remember(ingest, BOB, "x", "bob wrote this later")
    latest = await conversations.get(FULL, "x")
    assert latest.scope == ("bob",)  # no empty-scope one: the most recently updated
    assert (await conversations.get(ALICE, "x")).messages[0].message.text == "alice wrote this"
    await remember(ingest, FULL, "x", "the admin wrote this first")
    assert (await conversations.get(FULL, "x")).scope == ()
    assert await conversations.forget(BOB, "x") == 1
    assert (await conversations.get(ALICE, "x")).scope == ("alice",)
    assert await conversations.forget(FULL, "x") == 2
    for who in (FULL, ALICE, BOB):
        with pytest.raises(NotFound):
            await conversations.get(who, "x")
    assert index.memories == {}


async def test_memories_of_two_conversations_sharing_an_id_are_two_documents(
    ingest: IngestService, index: InMemoryIndex
) -> None:
    await remember(ingest, ALICE, "x", "alice flies to Lisbon")
    await remember(ingest, BOB, "x", "bob flies to Lisbon")
    found = [ScoredMemory(m, 0.9, 0.9) for m in index.memories.values()]
    assert len(select_context(found, ContextRule())) == 2
    cited = citations_for(found)
    assert sorted(a.content.split(": ")[1] for a in cited) == [
        "alice flies to Lisbon",
        "bob flies to Lisbon",
    ]


# --- forgetting removes the cited text ------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
async def test_forgetting_a_conversation_forgets_its_citations_in_threads(
    chat: ChatService, conversations: ConversationService, store: InMemoryStore
) -> None:
    reply = await answer(chat, FULL, "Who flies to Lisbon on the red plane?")
    assert "red" in cited_text(reply)
    assert await conversations.forget(FULL, "a") == 1
    thread = await chat.get_thread(FULL, reply.thread.id)
    annotations = thread.messages[-1].annotations
    forgotten = [a for a in annotations if a.forgotten]
    assert [a.id for a in forgotten] == [reply.annotations[0].id]
    assert (forgotten[0].content, forgotten[0].title, forgotten[0].url) == ("", "", "")
    assert all("red" not in a.content for a in annotations)
    assert thread.messages[-1].content == "ok"  # the answer's text is left as it was


@pytest.mark.usefixtures("seeded")
async def test_an_answer_saved_after_its_memory_was_forgotten_keeps_no_copy(
    chat: ChatService, conversations: ConversationService, store: InMemoryStore
) -> None:
    reply = await chat.start(FULL, ChatRequest(messages=(user("red plane to Lisbon?"),)))
    assert "red" in cited_text(reply)
    await conversations.forget(FULL, "a")  # while the answer streams
    _ = [event async for event in reply.events()]
    saved = await store.get_thread(TENANT, reply.thread.id)
    assert saved is not None
    assert all("red" not in a.content for a in saved.messages[-1].annotations)
    assert saved.messages[-1].annotations[0].forgotten


@pytest.mark.usefixtures("seeded")
async def test_the_fake_store_forgets_citations_in_the_delete_itself(
    chat: ChatService, store: InMemoryStore
) -> None:
    # As the SQLite file does: no crash between the delete and forget_citations.
    reply = await answer(chat, FULL, "Who flies to Lisbon on the red plane?")
    assert "red" in cited_text(reply)
    assert await store.delete_conversation(TENANT, "a", scope=None)
    saved = await store.get_thread(TENANT, reply.thread.id)
    assert saved is not None
    assert all("red" not in a.content for a in saved.messages[-1].annotations)
    assert await store.forget_citations(TENANT, [reply.annotations[0].id]) == 0
