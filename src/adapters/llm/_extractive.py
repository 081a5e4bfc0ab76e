"""The extractive chat model: no model at all, the answer quotes the memories.

It needs nothing installed and runs anywhere, so it is the fallback when no
model is available (``llm = "extractive"``). The answer lists the memories
of the prompt's system turn (``ChatTurn.memories``), in their order, each with
its date and speaker:

    Here is what I remember:
    - On 8 May 2023, Caroline said: "I went to the LGBTQ support group yesterday."

``max_tokens`` is honoured roughly: the answer is cut to ``4 * max_tokens``
characters (about four characters make a token in English), at a word
boundary, and ends with an ellipsis when cut; it then finishes with
``length``, else with ``stop``. It counts no tokens (the chat counts them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from attrs import define

from memoryd.core.memories import spoken_date
from memoryd.core.model import Memory
from memoryd.core.ports import ChatTurn, Completed
from memoryd.core.prompt import prompt_memories

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
        self, turns: Sequence[ChatTurn], *, max_tokens: int
    ) -> AsyncGenerator[str | Completed, None]:
        """Yield the answer line by line (the header, then one quote per chunk), then Completed."""
        chunks, cut = answer_chunks(
            prompt_memories(turns), max_chars=max_tokens * CHARS_PER_TOKEN, limit=self.max_quotes
        )
        for chunk in chunks:
            yield chunk
            await asyncio.sleep(0)  # a stream like any other: let the writer flush
        yield Completed("length" if cut else "stop")


def answer_chunks(
    memories: Sequence[Memory], *, max_chars: int, limit: int = 5
) -> tuple[list[str], bool]:
    """The answer's chunks, and whether they were cut to ``max_chars`` (plus an ellipsis).

    ``memories`` are the prompt's memories (``prompt_memories``), in its order.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for memory in memories:
        line = quote(memory)
        if line not in seen:
            seen.add(line)
            lines.append(line)
        if len(lines) == limit:
            break
    chunks = [HEADER, *(f"\n{line}" for line in lines)] if lines else [NOTHING]
    kept = _cut(chunks, max_chars)
    return kept, kept != chunks


def quote(memory: Memory) -> str:
    """One line of the answer: ``- On 8 May 2023, Caroline said: "..."``."""
    when = spoken_date(memory.said_at.date())
    if memory.speaker:
        who = _ROLES.get(memory.speaker, memory.speaker)
        return f'- On {when}, {who} said: "{_flat(memory.text)}"'
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
