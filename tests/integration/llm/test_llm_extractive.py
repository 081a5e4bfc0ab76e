"""The extractive chat model: it quotes the prompt's memories with their dates, in order.

It reads the memories as values (``ChatTurn.memories``): speaker, words and date.
"""

from __future__ import annotations

from datetime import UTC, datetime

from memoryd.adapters.llm import ExtractiveChatModel
from memoryd.core.model import Memory, ScoredMemory
from memoryd.core.ports import ChatTurn, Completed
from memoryd.core.prompt import system_turn

QUESTION = ChatTurn("user", "What did Caroline do?")


def found(text: str, said_at: datetime, score: float = 1.0, speaker: str = "") -> ScoredMemory:
    memory = Memory(
        id=f"m{score}",
        tenant_id="t",
        conversation_id="c",
        text=text,
        positions=(0,),
        said_at=said_at,
        speaker=speaker,
    )
    return ScoredMemory(memory=memory, similarity=score, score=score)


MAY_8 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
JUNE_27 = datetime(2023, 6, 27, 9, 0, tzinfo=UTC)


async def streamed(
    context: list[ScoredMemory], max_tokens: int = 256, instructions: str = "Be brief."
) -> tuple[list[str], Completed]:
    """The answer to a prompt whose system turn holds ``context``, as the chat builds it."""
    model = ExtractiveChatModel()
    turns = (system_turn(instructions, context, ""), QUESTION)
    *chunks, completed = [p async for p in model.stream(turns, max_tokens=max_tokens)]
    assert isinstance(completed, Completed)
    assert completed.usage is None  # it counts nothing: the chat counts
    texts = [c for c in chunks if isinstance(c, str)]
    assert texts == chunks
    return texts, completed


async def answer(context: list[ScoredMemory], max_tokens: int = 256) -> list[str]:
    return (await streamed(context, max_tokens))[0]


async def test_quotes_memories_with_dates_best_first() -> None:
    chunks = await answer(
        [
            found("I went to a LGBTQ support group yesterday.", MAY_8, 0.9, "Caroline"),
            found("My dog is\ncalled Rex.", JUNE_27, 0.5, "user"),
        ]
    )
    assert len(chunks) == 3  # streamed in a few pieces
    assert "".join(chunks) == (
        "Here is what I remember:\n"
        '- On 8 May 2023, Caroline said: "I went to a LGBTQ support group yesterday."\n'
        '- On 27 June 2023, the user said: "My dog is called Rex."'
    )


async def test_a_memory_without_a_speaker_is_quoted_with_its_date() -> None:
    chunks = await answer([found("Melanie paints sunrises.", JUNE_27)])
    assert "".join(chunks).endswith('- On 27 June 2023: "Melanie paints sunrises."')
    # Words that look like a speaker's prefix are words: nothing is parsed out of them.
    chunks = await answer([found("[1 May 2023] Mallory: hi", JUNE_27, speaker="Eve")])
    assert "".join(chunks).endswith('- On 27 June 2023, Eve said: "[1 May 2023] Mallory: hi"')


async def test_it_finishes_with_stop_or_with_length_when_cut() -> None:
    memory = found("Hello there, friend.", MAY_8, speaker="Caroline")
    assert (await streamed([memory]))[1] == Completed("stop")
    assert (await streamed([memory], max_tokens=5))[1] == Completed("length")


async def test_it_reads_only_the_memories_block_of_the_system_turn() -> None:
    memory = found("Hello.", MAY_8, speaker="Caroline")
    chunks, _ = await streamed([memory], instructions="- [1 May 2023] Mallory: not a memory")
    assert "Mallory" not in "".join(chunks)
    assert "".join(chunks).endswith('Caroline said: "Hello."')


async def test_the_same_memory_twice_is_quoted_once() -> None:
    same = "Hello."
    chunks = await answer(
        [found(same, MAY_8, 0.9, "Caroline"), found(same, MAY_8, 0.8, "Caroline")]
    )
    assert len(chunks) == 2


async def test_without_memories_it_says_so() -> None:
    text = "".join(await answer([]))
    assert text.startswith("I don't have any memories about that")


async def test_max_tokens_cuts_the_answer_at_about_four_characters_a_token() -> None:
    long = "word " * 200
    text = "".join(await answer([found(long, MAY_8, speaker="Caroline")], max_tokens=20))
    assert len(text) <= 20 * 4 + 1
    assert text.startswith("Here is what I remember:\n- On 8 May 2023, Caroline said:")
    assert text.endswith("…")
    assert "  " not in text


async def test_name_and_window() -> None:
    model = ExtractiveChatModel(context_window=4096)
    assert model.name == "extractive"
    assert model.context_window == 4096
