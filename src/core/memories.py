"""How messages become memories.

A memory is what search returns: the text of one message (or of a part of a
long one) with who said it and when, which search and the prompt show as
``[8 May 2023] Caroline: ...`` (:func:`memory_text`), so that both a reader and
a model know. Two more things are made for search, neither
shown to anyone:

- the pieces that are embedded: ``Name: text`` without the date, split at
  sentence boundaries into pieces of at least ``piece_words`` words (a long
  message's embedding is a blur of its topics; its best piece is sharper);
- the keyword context: the neighbouring turns, which the keyword side
  searches with a lower weight. Many turns mean little on their own ("Yes,
  last Tuesday!"); their neighbours say what they are about.

docs/retrieval.md has the measurements behind these choices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date

from attrs import frozen

from memoryd.core.model import Memory, MemoryDraft, StoredMessage

#: Roles whose text becomes memories. System prompts and tool traffic are stored, not recalled.
MEMORY_ROLES = frozenset({"user", "assistant"})

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@frozen
class MemoryPolicy:
    """Settings of the memory builder; the defaults suit chat memories in general."""

    #: Earlier turns in a memory's keyword context.
    context_before: int = 3
    #: Later turns in a memory's keyword context.
    context_after: int = 1
    #: Each context turn is cut to this many characters.
    context_chars: int = 1000
    #: Embedded pieces have at least this many words (shorter sentences are merged).
    piece_words: int = 12
    #: A message longer than this is split into several memories.
    max_chars: int = 1200


def speaker(message: StoredMessage) -> str:
    """Who said it: the message's ``name``, else its role."""
    return message.message.name or message.message.role


MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def spoken_date(day: date) -> str:
    """``8 May 2023``: English month names, whatever the locale."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def memory_text(memory: Memory) -> str:
    """A memory as search returns it and the model reads it: ``[8 May 2023] Caroline: text``.

    The date is the day it was said, in UTC; without a speaker, ``[8 May 2023] text``.
    """
    said = f"[{spoken_date(memory.said_at.date())}]"
    return f"{said} {memory.speaker}: {memory.text}" if memory.speaker else f"{said} {memory.text}"


def split_text(text: str, max_chars: int) -> list[str]:
    """Split long text at paragraph, then sentence, then word boundaries."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for unit in _units(text, max_chars):
        if current and len(current) + 1 + len(unit) > max_chars:
            pieces.append(current)
            current = unit
        else:
            current = f"{current} {unit}" if current else unit
    if current:
        pieces.append(current)
    return pieces


def _units(text: str, max_chars: int) -> list[str]:
    units: list[str] = []
    for raw in re.split(r"(?<=[.!?])\s+|\n+", text):
        rest = raw.strip()
        while len(rest) > max_chars:
            cut = rest.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            units.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            units.append(rest)
    return units


def embed_pieces(text: str, min_words: int) -> list[str]:
    """Sentences merged into pieces of at least ``min_words`` words.

    Sentences of fewer than three words ("Wow!") are dropped; a short tail
    joins the piece before it. Text that makes one piece is kept whole.
    """
    sentences = [
        s for s in (p.strip() for p in _SENTENCE_END.split(text.strip())) if len(s.split()) >= 3
    ]
    pieces: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        current.append(sentence)
        if sum(len(s.split()) for s in current) >= min_words:
            pieces.append(" ".join(current))
            current = []
    if current:
        if pieces:
            pieces[-1] = f"{pieces[-1]} {' '.join(current)}"
        else:
            pieces.append(" ".join(current))
    return pieces if len(pieces) > 1 else [text.strip()]


def _texts(messages: Sequence[StoredMessage], extra_text: Mapping[int, str]) -> list[str]:
    """Each message's text with what content-part handlers made of its other parts."""
    return [
        "\n".join(t for t in (m.message.text, extra_text.get(i, "")) if t)
        if m.message.role in MEMORY_ROLES
        else ""
        for i, m in enumerate(messages)
    ]


def build_memories(
    messages: Sequence[StoredMessage],
    *,
    start: int,
    policy: MemoryPolicy,
    extra_text: Mapping[int, str] | None = None,
) -> list[MemoryDraft]:
    """Memories for ``messages[start:]``; earlier messages serve as context only.

    ``extra_text`` maps a position to text that content-part handlers made of
    its images or files; it joins the message's own text.
    """
    texts = _texts(messages, extra_text or {})
    drafts: list[MemoryDraft] = []
    for i in range(start, len(messages)):
        message = messages[i]
        if message.message.role not in MEMORY_ROLES:
            continue
        context = keyword_context(messages, texts, i, policy)
        for part in split_text(texts[i], policy.max_chars):
            drafts.append(
                MemoryDraft(
                    text=part,
                    speaker=speaker(message),
                    embed_texts=tuple(
                        f"{speaker(message)}: {piece}"
                        for piece in embed_pieces(part, policy.piece_words)
                    ),
                    positions=(message.position,),
                    said_at=message.said_at,
                    keyword_context=context,
                )
            )
    return drafts


def context_updates(
    messages: Sequence[StoredMessage],
    *,
    start: int,
    policy: MemoryPolicy,
    extra_text: Mapping[int, str] | None = None,
) -> list[tuple[int, str]]:
    """New keyword contexts of the memories before ``start`` that see the new messages.

    When messages are appended, the last ``context_after`` earlier turns gain
    them as their following context.
    """
    texts = _texts(messages, extra_text or {})
    first = max(0, start - policy.context_after)
    return [
        (messages[i].position, keyword_context(messages, texts, i, policy))
        for i in range(first, start)
        if texts[i]
    ]


def keyword_context(
    messages: Sequence[StoredMessage], texts: Sequence[str], i: int, policy: MemoryPolicy
) -> str:
    """The turns around message ``i``, one ``Name: text`` line each."""
    around = [
        *range(max(0, i - policy.context_before), i),
        *range(i + 1, min(len(messages), i + 1 + policy.context_after)),
    ]
    return "\n".join(
        f"{speaker(messages[j])}: {texts[j][: policy.context_chars]}" for j in around if texts[j]
    )
