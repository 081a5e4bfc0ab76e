"""The prompt fits the window: the oldest history goes first, then the least relevant memories."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memoryd.core.chat import ChatPolicy, ChatRequest, ChatService
from memoryd.core.errors import ConfigurationError
from memoryd.core.model import Caller, Memory, Message, ScoredMemory, Thread, ThreadMessage
from memoryd.core.ports import ChatTurn
from memoryd.core.prompt import (
    NO_MEMORIES,
    REPLY_OVERHEAD,
    TURN_OVERHEAD,
    Budget,
    build_prompt,
    count_turns,
)
from memoryd.core.retrieval import SearchService
from memoryd.testing import FixedClock, InMemoryStore, ScriptedChatModel, WordCounter

COUNTER = WordCounter()  # one word, one token: the counts below can be checked by eye


def memory(rank: int, words: int = 10) -> ScoredMemory:
    text = " ".join([f"m{rank}"] * words)
    found = Memory(
        id=f"m{rank}",
        tenant_id="t",
        conversation_id=f"c{rank}",
        text=text,
        positions=(0,),
        said_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    return ScoredMemory(found, similarity=1.0 - rank / 100, score=0.0)


def history(turns: int, words: int = 20) -> list[ChatTurn]:
    return [
        ChatTurn("user" if i % 2 == 0 else "assistant", " ".join([f"h{i}"] * words))
        for i in range(turns)
    ]


def test_the_budget_keeps_room_for_the_answer_and_the_headroom() -> None:
    budget = Budget(window=1000, max_answer_tokens=200, headroom=0.25)
    assert budget.answer_tokens == 200
    assert budget.prompt_tokens == int(800 * 0.75) - REPLY_OVERHEAD
    assert Budget(window=300, max_answer_tokens=256, headroom=0).answer_tokens == 150
    with pytest.raises(ConfigurationError, match="llm_context_window"):
        Budget(window=10, max_answer_tokens=5)
    with pytest.raises(ConfigurationError, match="chat_token_headroom"):
        Budget(window=1000, max_answer_tokens=5, headroom=1.5)


def test_everything_fits_in_order() -> None:
    prompt = build_prompt(
        instructions="Be helpful.",
        memories=[memory(1), memory(2)],
        history=history(2),
        question="What now?",
        budget=Budget(window=4096, max_answer_tokens=256, headroom=0),
        counter=COUNTER,
    )
    system, *middle, question = prompt.turns
    assert system.role == "system"
    assert system.content.startswith("Be helpful.\n\nMemories (")
    assert system.content.endswith(
        "\n- [1 January 2024] "
        + " ".join(["m1"] * 10)
        + "\n- [1 January 2024] "
        + " ".join(["m2"] * 10)
    )
    # The memories go with the turn as values too, in the order it lists them.
    assert [m.id for m in system.memories] == ["m1", "m2"]
    assert middle == history(2)
    assert question == ChatTurn("user", "What now?")
    assert prompt.memories == (memory(1), memory(2))
    assert prompt.history_turns == 2
    assert prompt.tokens == count_turns(prompt.turns, COUNTER)
    assert prompt.tokens == sum(COUNTER.count(t.content) + TURN_OVERHEAD for t in prompt.turns) + (
        REPLY_OVERHEAD
    )


def test_without_memories_the_model_is_told_so() -> None:
    prompt = build_prompt(
        instructions="Be helpful.",
        memories=[],
        history=[],
        question="Q?",
        budget=Budget(window=512, max_answer_tokens=64),
        counter=COUNTER,
    )
    assert prompt.turns[0].content == f"Be helpful.\n\n{NO_MEMORIES}"


def test_the_oldest_history_goes_first() -> None:
    budget = Budget(window=600, max_answer_tokens=100, headroom=0)
    prompt = build_prompt(
        instructions="Be helpful.",
        memories=[memory(1), memory(2), memory(3)],
        history=history(40),
        question="What now?",
        budget=budget,
        counter=COUNTER,
    )
    assert prompt.tokens <= budget.prompt_tokens
    assert count_turns(prompt.turns, COUNTER) == prompt.tokens
    assert len(prompt.memories) == 3  # no memory was dropped while history could go
    assert 0 < prompt.history_turns < 40
    assert list(prompt.turns[1:-1]) == history(40)[-prompt.history_turns :]  # the newest ones
    # One more history turn would not have fitted.
    assert prompt.tokens + 20 + TURN_OVERHEAD > budget.prompt_tokens


def test_then_the_least_relevant_memories_go() -> None:
    budget = Budget(window=200, max_answer_tokens=50, headroom=0)
    memories = [memory(rank) for rank in range(1, 11)]
    prompt = build_prompt(
        instructions="Be helpful.",
        memories=memories,
        history=history(10),
        question="What now?",
        budget=budget,
        counter=COUNTER,
    )
    assert prompt.history_turns == 0
    assert 0 < len(prompt.memories) < 10
    assert list(prompt.memories) == memories[: len(prompt.memories)]  # the best ones stay
    assert prompt.tokens <= budget.prompt_tokens


def test_a_question_longer_than_the_window_is_cut_to_fit() -> None:
    budget = Budget(window=128, max_answer_tokens=32, headroom=0)
    prompt = build_prompt(
        instructions="Be helpful.",
        memories=[memory(1)],
        history=history(4),
        question=" ".join(f"w{i}" for i in range(1000)),
        attachments=" ".join(["pdf"] * 500),
        budget=budget,
        counter=COUNTER,
    )
    assert prompt.tokens <= budget.prompt_tokens
    assert prompt.memories == ()
    assert prompt.history_turns == 0
    assert "pdf" not in prompt.turns[0].content  # the attachment went before the question
    assert prompt.turns[-1].content.startswith("w0 w1 w2")  # the question keeps its start


@pytest.mark.parametrize("window", [64, 100, 256, 512, 1000, 2048])
@pytest.mark.parametrize("headroom", [0.0, 0.25])
def test_it_never_overflows(window: int, headroom: float) -> None:
    budget = Budget(window=window, max_answer_tokens=256, headroom=headroom)
    for size in (0, 1, 7, 50, 400):
        prompt = build_prompt(
            instructions="Answer from memory. " * (size // 10 + 1),
            memories=[memory(rank, words=size) for rank in range(size % 7 + 1)],
            history=history(size % 13, words=size),
            question="question " * size,
            attachments="attached " * (size // 2),
            budget=budget,
            counter=COUNTER,
        )
        assert count_turns(prompt.turns, COUNTER) == prompt.tokens <= budget.prompt_tokens
        assert prompt.tokens + prompt.answer_tokens <= window


async def test_a_thread_longer_than_the_window_still_gets_a_prompt_that_fits(
    search: SearchService, store: InMemoryStore, caller: Caller, clock: FixedClock
) -> None:
    model = ScriptedChatModel(window=512)
    chat = ChatService(
        search=search,
        threads=store,
        model=model,
        tokens=COUNTER,
        clock=clock,
        policy=ChatPolicy(max_answer_tokens=128, max_history=1000),
    )
    said = [
        ThreadMessage("user" if i % 2 == 0 else "assistant", f"turn{i} " + "blah " * 30)
        for i in range(200)
    ]
    assert sum(COUNTER.count(m.content) for m in said) > 10 * 512
    await store.create_thread(Thread(id="long", tenant_id=caller.tenant_id, messages=tuple(said)))
    reply = await chat.start(
        caller, ChatRequest(messages=(Message.from_text("user", "What now?"),), thread_id="long")
    )
    [_ async for _ in reply.events()]
    sent = model.prompts[-1]
    budget = Budget(window=512, max_answer_tokens=128, headroom=0.25)
    assert count_turns(sent, COUNTER) == reply.prompt.tokens <= budget.prompt_tokens
    assert sent[-1] == ChatTurn("user", "What now?")
    kept = [t.content.split()[0] for t in sent[1:-1]]
    assert kept  # some history fits, and it is the newest
    assert kept[-1] == "turn199"
    assert kept == [f"turn{i}" for i in range(200 - len(kept), 200)]
