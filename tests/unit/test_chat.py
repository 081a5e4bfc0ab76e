"""The chat use case with the fakes: events, threads, errors, scope, attachments."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from attrs import define, field

from memoryd.core.chat import (
    Annotations,
    ChatEvent,
    ChatReply,
    ChatRequest,
    ChatService,
    Error,
    Finish,
    Start,
    TextDelta,
)
from memoryd.core.errors import InvalidPrompt, NotFound
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.model import Caller, Citation, ContentPart, Message
from memoryd.core.ports import ChatTurn
from memoryd.core.prompt import plan_turns
from memoryd.core.retrieval import SearchService
from memoryd.testing import FixedClock, InMemoryStore, ScriptedChatModel, WordCounter


def user(text: str) -> Message:
    return Message.from_text("user", text)


def assistant(text: str) -> Message:
    return Message.from_text("assistant", text)


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel(chunks=("You are going ", "to Lisbon."))


@pytest.fixture
def chat(
    search: SearchService, store: InMemoryStore, model: ScriptedChatModel, clock: FixedClock
) -> ChatService:
    return ChatService(search=search, threads=store, model=model, tokens=WordCounter(), clock=clock)


@pytest.fixture
async def seeded(ingest: IngestService, caller: Caller) -> None:
    for cid, text in [
        ("trip", "We are going to Lisbon in May"),
        ("pets", "My dog Rex loves the beach"),
    ]:
        await ingest.ingest(caller, IngestRequest(conversation_id=cid, messages=(user(text),)))


async def collect(reply: ChatReply) -> list[ChatEvent]:
    return [event async for event in reply.events()]


@pytest.mark.usefixtures("seeded")
async def test_an_answer_streams_start_annotations_text_then_finish(
    chat: ChatService, caller: Caller, store: InMemoryStore
) -> None:
    chat.new_message_id = lambda: "msg-fixed"
    reply = await chat.start(caller, ChatRequest(messages=(user("Lisbon in May?"),)))
    events = await collect(reply)
    assert [type(e) for e in events] == [Start, Annotations, TextDelta, TextDelta, Finish]
    assert events[0] == Start(message_id="msg-fixed", thread_id=reply.thread.id)
    annotations = events[1]
    assert isinstance(annotations, Annotations)
    assert [a.title for a in annotations.items] == ["trip"]
    cited = annotations.items[0]
    assert cited.type == "conversation"
    assert cited.content == "[1 January 2025] user: We are going to Lisbon in May"
    # The core cites with datetimes; the HTTP edge writes them on the wire.
    assert isinstance(cited, Citation)
    assert cited.created_at == cited.updated_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert 0.4 < cited.similarity <= 1.0
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["You are going ", "to Lisbon."]
    finish = events[-1]
    assert isinstance(finish, Finish)
    assert finish.reason == "stop"
    assert finish.usage.prompt_tokens == reply.prompt.tokens
    assert finish.usage.completion_tokens == 5  # WordCounter: five words


@pytest.mark.usefixtures("seeded")
async def test_the_thread_is_made_at_once_and_written_when_the_answer_ends(
    chat: ChatService, caller: Caller, store: InMemoryStore, clock: FixedClock
) -> None:
    reply = await chat.start(caller, ChatRequest(messages=(user("Lisbon in May?"),)))
    made = await store.get_thread(caller.tenant_id, reply.thread.id)
    assert made is not None
    assert made.title == "Lisbon in May?"
    assert made.messages == ()
    clock.advance(5)
    await collect(reply)
    saved = await store.get_thread(caller.tenant_id, reply.thread.id)
    assert saved is not None
    assert [(m.role, m.content) for m in saved.messages] == [
        ("user", "Lisbon in May?"),
        ("assistant", "You are going to Lisbon."),
    ]
    assert saved.messages[0].annotations == ()
    assert saved.messages[1].annotations == reply.annotations
    assert saved.messages[1].created_at is not None
    assert saved.messages[0].created_at is not None
    assert saved.messages[1].created_at > saved.messages[0].created_at


async def test_a_thread_continues_from_only_the_newest_message(
    chat: ChatService, caller: Caller, store: InMemoryStore, model: ScriptedChatModel
) -> None:
    first = await chat.start(caller, ChatRequest(messages=(user("Where do I go?"),)))
    await collect(first)
    second = await chat.start(
        caller, ChatRequest(messages=(user("And when?"),), thread_id=first.thread.id)
    )
    await collect(second)
    assert second.thread.id == first.thread.id
    assert model.prompts[-1][1:] == [
        ChatTurn("user", "Where do I go?"),
        ChatTurn("assistant", "You are going to Lisbon."),
        ChatTurn("user", "And when?"),
    ]
    saved = await store.get_thread(caller.tenant_id, first.thread.id)
    assert saved is not None
    assert [m.content for m in saved.messages] == [
        "Where do I go?",
        "You are going to Lisbon.",
        "And when?",
        "You are going to Lisbon.",
    ]


async def test_a_client_that_resends_the_whole_history_adds_only_what_is_new(
    chat: ChatService, caller: Caller, store: InMemoryStore, model: ScriptedChatModel
) -> None:
    first = await chat.start(caller, ChatRequest(messages=(user("Where do I go?"),)))
    await collect(first)
    whole = (user("Where do I go?"), assistant("You are going to Lisbon."), user("When?"))
    again = await chat.start(caller, ChatRequest(messages=whole, thread_id=first.thread.id))
    assert [m.content for m in again.new_messages] == ["When?"]
    await collect(again)
    saved = await store.get_thread(caller.tenant_id, first.thread.id)
    assert saved is not None
    assert len(saved.messages) == 4
    assert model.prompts[-1][-1] == ChatTurn("user", "When?")


async def test_a_new_thread_keeps_the_history_the_client_sent(
    chat: ChatService, caller: Caller, store: InMemoryStore, model: ScriptedChatModel
) -> None:
    sent = (user("Hi"), assistant("Hello!"), Message.from_text("user", ""), user("Where?"))
    reply = await chat.start(caller, ChatRequest(messages=sent))
    await collect(reply)
    assert model.prompts[-1][1:] == [
        ChatTurn("user", "Hi"),
        ChatTurn("assistant", "Hello!"),
        ChatTurn("user", "Where?"),
    ]
    saved = await store.get_thread(caller.tenant_id, reply.thread.id)
    assert saved is not None
    assert [m.content for m in saved.messages] == [
        "Hi",
        "Hello!",
        "Where?",
        "You are going to Lisbon.",
    ]


@pytest.mark.parametrize(
    "messages",
    [
        (),
        (user(""),),
        (user("   \n "),),
        (assistant("I can help."),),
        (Message.from_text("system", "Be brief."),),
        (Message(role="user", content=()),),
    ],
)
async def test_no_user_message_with_text_is_an_invalid_prompt(
    chat: ChatService, caller: Caller, store: InMemoryStore, messages: tuple[Message, ...]
) -> None:
    with pytest.raises(InvalidPrompt) as caught:
        await chat.start(caller, ChatRequest(messages=messages))
    assert caught.value.message == "Invalid prompt - please rephrase your message"
    assert store.threads == {}  # nothing was made


async def test_the_query_is_the_last_user_message_and_system_messages_instruct(
    chat: ChatService, caller: Caller, model: ScriptedChatModel
) -> None:
    sent = (
        Message.from_text("system", "Answer in French."),
        user("first question"),
        assistant("first answer"),
        user("Where am I going?"),
        assistant(""),
    )
    await collect(await chat.start(caller, ChatRequest(messages=sent)))
    prompt = model.prompts[-1]
    assert prompt[-1] == ChatTurn("user", "Where am I going?")
    assert prompt[0].role == "system"
    assert "Instructions from the application:\nAnswer in French." in prompt[0].content
    assert "Today is 1 January 2025." in prompt[0].content


async def test_an_unknown_thread_or_another_tenants_is_not_found(
    chat: ChatService, caller: Caller
) -> None:
    mine = await chat.start(caller, ChatRequest(messages=(user("Hello"),)))
    stranger = Caller(tenant_id="t2", key_id="k2")
    for who, thread_id in [(caller, "nope"), (stranger, mine.thread.id)]:
        with pytest.raises(NotFound):
            await chat.start(who, ChatRequest(messages=(user("Hi"),), thread_id=thread_id))
        with pytest.raises(NotFound):
            await chat.get_thread(who, thread_id)
        with pytest.raises(NotFound):
            await chat.delete_thread(who, thread_id)
    assert await chat.list_threads(stranger, limit=10, offset=0) == []
    await chat.delete_thread(caller, mine.thread.id)
    with pytest.raises(NotFound):
        await chat.get_thread(caller, mine.thread.id)


async def test_tag_limited_keys_see_only_the_threads_of_their_scope(
    chat: ChatService, caller: Caller
) -> None:
    alice = Caller(tenant_id=caller.tenant_id, key_id="ka", tags=("alice",))
    bob = Caller(tenant_id=caller.tenant_id, key_id="kb", tags=("bob",))
    alice_again = Caller(tenant_id=caller.tenant_id, key_id="ka2", tags=("alice", "alice"))
    hers = await chat.start(alice, ChatRequest(messages=(user("Hello"),)))
    full = await chat.start(caller, ChatRequest(messages=(user("Hello"),)))
    assert hers.thread.container_tags == ("alice",)
    assert full.thread.container_tags == ()
    alice_and_bob = Caller(tenant_id=caller.tenant_id, key_id="kab", tags=("alice", "bob"))
    assert (await chat.get_thread(alice_and_bob, hers.thread.id)).id == hers.thread.id
    assert (await chat.get_thread(alice_again, hers.thread.id)).id == hers.thread.id
    assert (await chat.get_thread(caller, hers.thread.id)).id == hers.thread.id
    for outsider, thread_id in [(bob, hers.thread.id), (alice, full.thread.id)]:
        with pytest.raises(NotFound):
            await chat.get_thread(outsider, thread_id)
    assert [t.id for t in await chat.list_threads(alice, limit=10, offset=0)] == [hers.thread.id]
    assert await chat.list_threads(alice, limit=10, offset=1) == []
    assert await chat.list_threads(bob, limit=10, offset=0) == []
    assert len(await chat.list_threads(caller, limit=10, offset=0)) == 2


@pytest.mark.usefixtures("seeded")
async def test_a_model_failure_midway_is_an_error_event_and_saves_nothing(
    chat: ChatService, caller: Caller, store: InMemoryStore, model: ScriptedChatModel
) -> None:
    model.fail_after = 1
    reply = await chat.start(caller, ChatRequest(messages=(user("Lisbon?"),)))
    events = await collect(reply)
    assert [type(e) for e in events] == [Start, Annotations, TextDelta, Error]
    assert events[-1] == Error("Model backend unavailable", details="scripted failure")
    saved = await store.get_thread(caller.tenant_id, reply.thread.id)
    assert saved is not None
    assert saved.messages == ()


@define
class EndlessModel:
    """A model that writes forever and notes whether its stream was closed."""

    closed: bool = False
    written: int = 0
    window: int = 2048

    @property
    def name(self) -> str:
        return "endless"

    @property
    def context_window(self) -> int:
        return self.window

    async def stream(self, turns: Sequence[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        try:
            while True:
                self.written += 1
                yield "word "
        finally:
            self.closed = True


async def test_closing_the_events_early_closes_the_model_stream_and_saves_nothing(
    search: SearchService, store: InMemoryStore, caller: Caller, clock: FixedClock
) -> None:
    endless = EndlessModel()
    chat = ChatService(
        search=search, threads=store, model=endless, tokens=WordCounter(), clock=clock
    )
    reply = await chat.start(caller, ChatRequest(messages=(user("Talk"),)))
    events = reply.events()
    seen = [await anext(events) for _ in range(4)]
    assert isinstance(seen[-1], TextDelta)
    await events.aclose()  # what the HTTP edge does when the client leaves
    assert endless.closed
    assert endless.written == 2
    saved = await store.get_thread(caller.tenant_id, reply.thread.id)
    assert saved is not None
    assert saved.messages == ()


@define
class CaptionHandler:
    """Describes images (as a captioning plugin would)."""

    seen: list[ContentPart] = field(factory=list)

    def accepts(self, part: ContentPart) -> bool:
        return part.type in {"image", "image_url"}

    async def to_text(self, part: ContentPart) -> str | None:
        self.seen.append(part)
        return "A photo of a red bicycle."


async def test_image_parts_go_to_the_part_handlers_and_their_text_joins_the_context(
    search: SearchService, store: InMemoryStore, caller: Caller, clock: FixedClock
) -> None:
    model = ScriptedChatModel()
    handler = CaptionHandler()
    chat = ChatService(
        search=search,
        threads=store,
        model=model,
        tokens=WordCounter(),
        clock=clock,
        part_handlers=[handler],
    )
    question = Message(
        role="user",
        content=(
            ContentPart.from_text("What is this?"),
            ContentPart(type="image", url="https://x/b.png"),
        ),
    )
    reply = await chat.start(caller, ChatRequest(messages=(question,)))
    await collect(reply)
    assert [p.url for p in handler.seen] == ["https://x/b.png"]
    system, asked = model.prompts[-1][0], model.prompts[-1][-1]
    assert "Content the user attached to this message:\nA photo of a red bicycle." in system.content
    assert asked == ChatTurn("user", "What is this?")  # text parts form the query


def test_the_current_turns_images_are_its_attachments() -> None:
    image = ContentPart(type="image", url="https://x/a.png")
    older = ContentPart(type="image", url="https://x/old.png")
    plan = plan_turns(
        (
            Message(role="user", content=(older,)),
            assistant("Nice."),
            Message(role="user", content=(image,)),  # no text, but not empty
            user("And this?"),
        )
    )
    assert plan.attachments == (image,)
    assert plan.query == "And this?"
    assert [m.content for m in plan.conversation] == ["Nice.", "And this?"]
