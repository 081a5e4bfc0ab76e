"""How messages become memories.

A memory is what search returns: text that came from one message (or a part
of a long one), with the speaker and the date, so that both a reader and a
model know who said it and when. What gets *embedded* may also carry the
neighbouring turns as context, which helps the many turns ("Yes, last
Tuesday!") that mean little on their own; the memory's positions still name
only the message its text came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from attrs import frozen

from memoryd.core.model import MemoryDraft, StoredMessage

#: Roles whose text becomes memories. System prompts and tool traffic are stored, not recalled.
MEMORY_ROLES = frozenset({"user", "assistant"})


@frozen
class MemoryPolicy:
    """Settings of the memory builder; the defaults suit chat memories in general."""

    #: How many earlier turns the embedded text carries as context.
    context_before: int = 1
    #: How many later turns the embedded text carries as context.
    context_after: int = 0
    #: Context turns are cut to this many characters each.
    context_chars: int = 300
    #: A message longer than this is split into several memories.
    max_chars: int = 1200


def speaker(message: StoredMessage) -> str:
    """Who said it: the message's ``name``, else its role."""
    return message.message.name or message.message.role


def day(message: StoredMessage) -> str:
    """The date it was said, as ``YYYY-MM-DD`` (UTC)."""
    return message.said_at.date().isoformat()


def memory_text(message: StoredMessage, text: str) -> str:
    """The text of a memory: ``[2023-05-08] Caroline: text``."""
    return f"[{day(message)}] {speaker(message)}: {text}"


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
    extra_text = extra_text or {}
    drafts: list[MemoryDraft] = []
    for i in range(start, len(messages)):
        message = messages[i]
        if message.message.role not in MEMORY_ROLES:
            continue
        text = "\n".join(t for t in (message.message.text, extra_text.get(i, "")) if t)
        for piece in split_text(text, policy.max_chars):
            shown = memory_text(message, piece)
            drafts.append(
                MemoryDraft(
                    text=shown,
                    embed_text=_with_context(messages, i, shown, policy, extra_text),
                    positions=(message.position,),
                    said_at=message.said_at,
                )
            )
    return drafts


def _with_context(
    messages: Sequence[StoredMessage],
    i: int,
    shown: str,
    policy: MemoryPolicy,
    extra_text: Mapping[int, str],
) -> str:
    def line(j: int) -> str | None:
        other = messages[j]
        if other.message.role not in MEMORY_ROLES:
            return None
        text = " ".join(t for t in (other.message.text, extra_text.get(j, "")) if t)
        if not text:
            return None
        return f"{speaker(other)}: {text[: policy.context_chars]}"

    before = [line(j) for j in range(max(0, i - policy.context_before), i)]
    after = [line(j) for j in range(i + 1, min(len(messages), i + 1 + policy.context_after))]
    parts = [*(b for b in before if b), shown, *(a for a in after if a)]
    return "\n".join(parts)
