"""How messages become memories."""

from __future__ import annotations

from datetime import UTC, datetime

from memoryd.core.memories import MemoryPolicy, build_memories, split_text
from memoryd.core.model import ContentPart, Message, StoredMessage

T = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def stored(*items: tuple[str, str, str | None]) -> list[StoredMessage]:
    return [
        StoredMessage(message=Message.from_text(role, text, name=name), position=i, received_at=T)  # type: ignore[arg-type]
        for i, (role, text, name) in enumerate(items)
    ]


def test_memory_text_has_date_and_speaker() -> None:
    drafts = build_memories(
        stored(("user", "I went hiking", "Caroline")), start=0, policy=MemoryPolicy()
    )
    assert drafts[0].text == "[2023-05-08] Caroline: I went hiking"
    assert drafts[0].positions == (0,)


def test_embed_text_carries_previous_turn_but_positions_do_not() -> None:
    msgs = stored(("user", "Did you go?", "Mel"), ("assistant", "Yes, last Tuesday!", "Caro"))
    drafts = build_memories(msgs, start=1, policy=MemoryPolicy(context_before=1))
    assert len(drafts) == 1
    assert drafts[0].positions == (1,)
    assert drafts[0].embed_text == "Mel: Did you go?\n[2023-05-08] Caro: Yes, last Tuesday!"
    assert "Did you go" not in drafts[0].text


def test_role_is_the_speaker_without_a_name_and_system_is_skipped() -> None:
    drafts = build_memories(
        stored(("system", "be nice", None), ("user", "hi", None)), start=0, policy=MemoryPolicy()
    )
    assert [d.text for d in drafts] == ["[2023-05-08] user: hi"]


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
