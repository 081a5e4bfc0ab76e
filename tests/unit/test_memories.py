"""How messages become memories."""

from __future__ import annotations

from datetime import UTC, datetime

from memoryd.core.memories import (
    MemoryPolicy,
    build_memories,
    context_updates,
    embed_pieces,
    memory_text,
    split_text,
)
from memoryd.core.model import ContentPart, Memory, Message, StoredMessage

T = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def stored(*items: tuple[str, str, str | None]) -> list[StoredMessage]:
    return [
        StoredMessage(message=Message.from_text(role, text, name=name), position=i, received_at=T)  # type: ignore[arg-type]
        for i, (role, text, name) in enumerate(items)
    ]


def test_a_memory_keeps_its_words_and_speaker_apart_and_shows_them_with_its_date() -> None:
    drafts = build_memories(
        stored(("user", "I went hiking", "Caroline")), start=0, policy=MemoryPolicy()
    )
    assert (drafts[0].text, drafts[0].speaker) == ("I went hiking", "Caroline")
    assert drafts[0].positions == (0,)
    memory = Memory("m", "t", "c", drafts[0].text, (0,), drafts[0].said_at, speaker="Caroline")
    assert memory_text(memory) == "[8 May 2023] Caroline: I went hiking"
    # The date is the day in UTC; a memory without a speaker shows the date alone.
    late = datetime(2023, 5, 8, 23, 30, tzinfo=UTC).astimezone()
    assert memory_text(Memory("m", "t", "c", "words", (0,), late)) == "[8 May 2023] words"


def test_embedded_pieces_carry_the_speaker_but_not_the_date() -> None:
    drafts = build_memories(
        stored(("user", "I went hiking", "Caroline")), start=0, policy=MemoryPolicy()
    )
    assert drafts[0].embed_texts == ("Caroline: I went hiking",)


def test_long_messages_are_embedded_in_sentence_pieces() -> None:
    text = (
        "I adopted a puppy from the shelter last weekend. "
        "She is a beagle mix with very floppy ears and a loud bark. "
        "Wow! "
        "Tomorrow we start obedience classes at the big park right next to my office."
    )
    pieces = embed_pieces(text, 12)
    assert pieces == [
        "I adopted a puppy from the shelter last weekend. "
        "She is a beagle mix with very floppy ears and a loud bark.",
        "Tomorrow we start obedience classes at the big park right next to my office.",
    ]
    tail = "I adopted a puppy from the shelter last weekend and she is lovely. Yes indeed it is."
    assert embed_pieces(tail, 12) == [tail]  # a short last sentence joins the piece before
    assert embed_pieces("Short one. Another short.", 12) == ["Short one. Another short."]


def test_keyword_context_is_the_neighbouring_turns_and_positions_stay_own() -> None:
    msgs = stored(
        ("user", "a", "A"),
        ("assistant", "b", "B"),
        ("user", "c", "A"),
        ("assistant", "Did you go?", "Mel"),
        ("user", "Yes, last Tuesday!", "Caro"),
        ("assistant", "How was it?", "Mel"),
    )
    drafts = build_memories(msgs, start=4, policy=MemoryPolicy())
    assert [d.positions for d in drafts] == [(4,), (5,)]
    assert drafts[0].keyword_context == "B: b\nA: c\nMel: Did you go?\nMel: How was it?"
    assert "Did you go" not in drafts[0].text


def test_appending_updates_the_previous_turns_following_context() -> None:
    msgs = stored(
        ("user", "Did you go?", "Mel"),
        ("assistant", "Yes!", "Caro"),
        ("user", "How was it?", "Mel"),
    )
    assert context_updates(msgs, start=2, policy=MemoryPolicy()) == [
        (1, "Mel: Did you go?\nMel: How was it?")
    ]
    assert context_updates(msgs, start=2, policy=MemoryPolicy(context_after=0)) == []


def test_role_is_the_speaker_without_a_name_and_system_is_skipped() -> None:
    drafts = build_memories(
        stored(("system", "be nice", None), ("user", "hi", None)), start=0, policy=MemoryPolicy()
    )
    assert [(d.speaker, d.text) for d in drafts] == [("user", "hi")]
    assert drafts[0].keyword_context == ""  # the system prompt is no context


def test_long_messages_split_on_sentences_within_limit() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(100))
    pieces = split_text(text, 200)
    assert all(len(p) <= 200 for p in pieces)
    assert " ".join(pieces) == text
    assert split_text("word" * 100, 50)[0] == ("word" * 100)[:50]


def test_part_text_joins_the_message() -> None:
    msg = Message(role="user", content=(ContentPart.from_text("look"), ContentPart.image("u")))
    drafts = build_memories(
        [StoredMessage(message=msg, position=0, received_at=T)],
        start=0,
        policy=MemoryPolicy(),
        extra_text={0: "[image: a red bike]"},
    )
    assert drafts[0].text.endswith("look\n[image: a red bike]")
