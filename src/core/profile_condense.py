"""A chat model condenses a profile's sections into short facts that cite their memories.

With the ``profile_llm`` setting on and a chat model configured, each
section of :func:`memoryd.core.profile.build_profile` (its memories, numbered)
goes to the model, which is asked for one fact a line, each ending with the
numbers of the memories it comes from: ``- Loves hiking in the Alps [1, 3]``.
Only lines that cite at least one of the given numbers (and only those
numbers) are kept; a section whose answer has none such, or a model that
fails twice, keeps the rule's entries (``condensed`` False). So the profile never
holds a fact without a memory behind it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from attrs import frozen

from memoryd.core.errors import MemorydError
from memoryd.core.model import Memory
from memoryd.core.ports import ChatModel, ChatTurn, Completed
from memoryd.core.profile import ProfileEntry

log = logging.getLogger(__name__)

#: Tokens a section's answer may take.
MAX_TOKENS = 256
#: Facts kept per section, at most.
MAX_FACTS = 10
#: Tries of the model per section (a broken connection is retried once); then the rule stands.
ATTEMPTS = 2

SYSTEM = (
    "You condense numbered memories about a user into short facts. Write each fact on "
    "its own line, starting with '- ', and end it with the numbers of the memories it "
    "comes from in square brackets, for example: - Loves hiking in the Alps [1, 3]. "
    "Use only what the memories say. Write nothing else."
)

_LINE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])?\s*(?P<text>.*?\S)\s*\[(?P<refs>[\d,\s]+)\]\W*$")


@frozen
class Fact:
    text: str
    #: The ids of the memories it comes from, in the order cited.
    memory_ids: tuple[str, ...]


@frozen
class Condensed:
    facts: tuple[Fact, ...]
    #: False: the model gave nothing usable; ``facts`` are the rule's entries, one each.
    condensed: bool


#: One worked example before the real request (small models follow an example best).
_EXAMPLE = (
    "[1] I moved to Berlin in May.\n[2] Berlin winters are cold, so I bought a warm coat.\n"
    "[3] Started a new job at a bakery."
)
_EXAMPLE_ANSWER = (
    "- Lives in Berlin since May, bought a warm coat for its cold winters [1, 2]\n"
    "- Works at a bakery [3]"
)


def _ask(listed: str) -> str:
    return f"Memories:\n{listed}\n\nWrite at most {MAX_FACTS} facts, each citing its memories."


def prompt(memories: Sequence[Memory]) -> list[ChatTurn]:
    listed = "\n".join(f"[{i}] {m.text}" for i, m in enumerate(memories, 1))
    return [
        ChatTurn(role="system", content=SYSTEM, memories=tuple(memories)),
        ChatTurn(role="user", content=_ask(_EXAMPLE)),
        ChatTurn(role="assistant", content=_EXAMPLE_ANSWER),
        ChatTurn(role="user", content=_ask(listed)),
    ]


def parse(answer: str, memories: Sequence[Memory]) -> list[Fact]:
    """The facts of ``answer`` that cite only numbers of ``memories`` (at least one)."""
    facts: list[Fact] = []
    for line in answer.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        refs = [int(r) for r in re.findall(r"\d+", match.group("refs"))]
        if not refs or not all(1 <= r <= len(memories) for r in refs):
            continue
        ids = tuple(dict.fromkeys(memories[r - 1].id for r in refs))
        facts.append(Fact(text=match.group("text").rstrip(" .;:,") + ".", memory_ids=ids))
        if len(facts) == MAX_FACTS:
            break
    return facts


async def _answer(model: ChatModel, memories: Sequence[Memory]) -> str:
    chunks: list[str] = []
    async for chunk in model.stream(prompt(memories), max_tokens=MAX_TOKENS):
        if not isinstance(chunk, Completed):
            chunks.append(chunk)
    return "".join(chunks)


async def condense(model: ChatModel, entries: Sequence[ProfileEntry]) -> Condensed:
    """The section's entries condensed by ``model``, or the entries as they are."""
    memories = [e.memory for e in entries]
    as_they_are = Condensed(
        facts=tuple(Fact(text=m.text, memory_ids=(m.id,)) for m in memories), condensed=False
    )
    if not memories:
        return as_they_are
    answer = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = await _answer(model, memories)
            break
        except MemorydError as e:
            log.warning("the profile's model failed (try %d of %d): %s", attempt, ATTEMPTS, e)
    if answer is None:
        return as_they_are
    facts = parse(answer, memories)
    return Condensed(facts=tuple(facts), condensed=True) if facts else as_they_are
