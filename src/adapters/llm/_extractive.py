"""The extractive chat model: no model at all, the answer quotes the memories.

It needs nothing installed and runs anywhere, so it is the fallback when no
model is available (``llm = "extractive"``). The answer lists the memories
it was given, best first, each with its date and speaker:

    Here is what I remember:
    - On 8 May 2023, Caroline said: "I went to the LGBTQ support group yesterday."

``max_tokens`` is honoured roughly: the answer is cut to ``4 * max_tokens``
characters (about four characters make a token in English), at a word
boundary, and ends with an ellipsis when cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from attrs import define

from memoryd.core.memories import parse_memory_text, spoken_date
from memoryd.core.model import ScoredMemory
from memoryd.core.ports import ChatTurn

#: Characters per token used to honour ``max_tokens``.
CHARS_PER_TOKEN = 4
HEADER = "Here is what I remember:"
NOTHING = "I don't have any memories about that, so I cannot answer it from memory."

_ROLES = {"user": "the user", "assistant": "the assistant"}


@define(kw_only=True)
class ExtractiveChatModel:
    """The ``ChatModel`` port without a model: quotes up to ``max_quotes`` memories."""

    context_window: int = 2048
    max_quotes: int = 5

    @property
    def name(self) -> str:
        return "extractive"

    async def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        max_tokens: int,
        context: Sequence[ScoredMemory] = (),
    ) -> AsyncGenerator[str, None]:
        """Yield the answer line by line (the header, then one quote per chunk)."""
        for chunk in answer_chunks(
            context, max_chars=max_tokens * CHARS_PER_TOKEN, limit=self.max_quotes
        ):
            yield chunk
            await asyncio.sleep(0)  # a stream like any other: let the writer flush


def answer_chunks(context: Sequence[ScoredMemory], *, max_chars: int, limit: int = 5) -> list[str]:
    """The answer's chunks; joined, they are at most ``max_chars`` long (plus an ellipsis)."""
    lines: list[str] = []
    seen: set[str] = set()
    for found in context:
        line = quote(found)
        if line not in seen:
            seen.add(line)
            lines.append(line)
        if len(lines) == limit:
            break
    chunks = [HEADER, *(f"\n{line}" for line in lines)] if lines else [NOTHING]
    return _cut(chunks, max_chars)


def quote(found: ScoredMemory) -> str:
    """One line of the answer: ``- On 8 May 2023, Caroline said: "..."``."""
    memory = found.memory
    when = spoken_date(memory.said_at.date())
    parsed = parse_memory_text(memory.text)
    if parsed:
        who, text = parsed
        return f'- On {when}, {_ROLES.get(who, who)} said: "{_flat(text)}"'
    return f'- On {when}: "{_flat(memory.text)}"'


def _flat(text: str) -> str:
    return " ".join(text.split())


def _cut(chunks: list[str], max_chars: int) -> list[str]:
    kept: list[str] = []
    left = max(max_chars, 1)
    for chunk in chunks:
        if len(chunk) <= left:
            kept.append(chunk)
            left -= len(chunk)
            continue
        part = chunk[:left]
        space = part.rfind(" ")
        part = part[:space] if space > 0 else part
        if part.strip():
            kept.append(part.rstrip() + "…")
        elif kept:
            kept[-1] += "…"
        break
    return kept
