"""The chat prompt, built to fit the model's context window, and what an answer cites.

A prompt is a system turn (the instructions, the memories as a context block,
and any text the user's attachments yielded), the thread's history, and the
question. Tokens are counted with the ``TokenCounter`` port. When everything
does not fit, the builder gives up, in this order:

1. the oldest history turns, one at a time;
2. then the least relevant memories, one at a time;
3. then, only if the instructions, the attachments and the question alone do
   not fit, it truncates the attachments' text, then the question, then the
   instructions.

It never returns a prompt over its budget. The budget is the context window
less the tokens kept for the answer, less a share (``headroom``) kept free
because the model's own tokenizer may count more tokens than the counter
does (SmolLM2 counts about 1.2 times as many as cl100k_base on English and
1.5 times on other scripts). Each turn also costs ``TURN_OVERHEAD`` tokens of
chat template, and the answer's priming ``REPLY_OVERHEAD``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import evolve, frozen

from memoryd.core.errors import ConfigurationError, InvalidPrompt
from memoryd.core.memories import memory_text
from memoryd.core.model import (
    Citation,
    ContentPart,
    DocumentKey,
    Memory,
    Message,
    ScoredMemory,
    ThreadMessage,
)
from memoryd.core.ports import ChatTurn, TokenCounter
from memoryd.core.retrieval import ContextRule, select_context

#: Tokens a chat template adds around each turn (``<|im_start|>user\n ... <|im_end|>\n``).
TURN_OVERHEAD = 5
#: Tokens a chat template adds to prime the answer (``<|im_start|>assistant\n``).
REPLY_OVERHEAD = 3
#: The smallest context window a prompt can be built for.
MIN_WINDOW = 64

MEMORIES_HEADER = (
    "Memories (excerpts of the user's past conversations, the most relevant first; "
    "each starts with the date it was said and who said it):"
)
NO_MEMORIES = "No memories matched this message."
ATTACHMENTS_HEADER = "Content the user attached to this message:"


@frozen
class Budget:
    """How many tokens the prompt and the answer may take."""

    #: The model's context window: the prompt and the answer together.
    window: int
    #: The most tokens the answer may take (``llm_max_tokens``).
    max_answer_tokens: int
    #: Share of the rest kept free for tokenizer differences (0 to 0.9).
    headroom: float = 0.25

    def __attrs_post_init__(self) -> None:
        if self.window < MIN_WINDOW:
            raise ConfigurationError(
                f"llm_context_window is {self.window}; a chat needs at least {MIN_WINDOW} tokens",
                details={"setting": "llm_context_window"},
            )
        if not 0.0 <= self.headroom <= 0.9:
            raise ConfigurationError(
                f"chat_token_headroom must be from 0 to 0.9, not {self.headroom}",
                details={"setting": "chat_token_headroom"},
            )

    @property
    def answer_tokens(self) -> int:
        """Tokens the answer may take: ``max_answer_tokens``, but never over half the window."""
        return max(1, min(self.max_answer_tokens, self.window // 2))

    @property
    def prompt_tokens(self) -> int:
        """Tokens the prompt may take, as the counter counts them (overheads included)."""
        usable = int((self.window - self.answer_tokens) * (1.0 - self.headroom))
        return max(0, usable - REPLY_OVERHEAD)


@frozen
class Prompt:
    """A prompt that fits its budget, and what made it in."""

    turns: tuple[ChatTurn, ...]
    #: The memories in the system turn, the most relevant first.
    memories: tuple[ScoredMemory, ...]
    #: How many of the history turns made it (the newest ones).
    history_turns: int
    #: The prompt's tokens as the counter counts them, overheads included.
    tokens: int
    #: The most tokens the answer may take.
    answer_tokens: int
    #: The prompt's budget (``tokens`` is never over it).
    budget: int


@frozen
class _Parts:
    instructions: str
    memories: tuple[ScoredMemory, ...]
    attachments: str
    history: tuple[ChatTurn, ...]
    question: str

    def turns(self) -> tuple[ChatTurn, ...]:
        return (
            system_turn(self.instructions, self.memories, self.attachments),
            *self.history,
            ChatTurn("user", self.question),
        )


def memory_line(memory: ScoredMemory) -> str:
    """How one memory reads in the context block: ``- [8 May 2023] Caroline: ...``."""
    return "- " + " ".join(memory_text(memory.memory).split())


def prompt_memories(turns: Sequence[ChatTurn]) -> tuple[Memory, ...]:
    """The memories a prompt gives the model, in the order its system turn lists them."""
    return next((t.memories for t in turns if t.role == "system"), ())


def system_turn(instructions: str, memories: Sequence[ScoredMemory], attachments: str) -> ChatTurn:
    """The system turn: its text (``system_text``) and the memories it lists, as values."""
    return ChatTurn(
        "system",
        system_text(instructions, memories, attachments),
        memories=tuple(m.memory for m in memories),
    )


def system_text(instructions: str, memories: Sequence[ScoredMemory], attachments: str) -> str:
    """The system turn: instructions, the memories block, and the attachments' text."""
    block = "\n".join([MEMORIES_HEADER, *map(memory_line, memories)]) if memories else NO_MEMORIES
    sections = [s for s in (instructions.strip(), block) if s]
    if attachments.strip():
        sections.append(f"{ATTACHMENTS_HEADER}\n{attachments.strip()}")
    return "\n\n".join(sections)


def count_turns(turns: Sequence[ChatTurn], counter: TokenCounter) -> int:
    """The tokens a prompt takes: each turn's text and template, and the answer's priming."""
    return sum(counter.count(t.content) + TURN_OVERHEAD for t in turns) + REPLY_OVERHEAD


def build_prompt(
    *,
    instructions: str,
    memories: Sequence[ScoredMemory],
    history: Sequence[ChatTurn],
    question: str,
    budget: Budget,
    counter: TokenCounter,
    attachments: str = "",
) -> Prompt:
    """The largest prompt that fits ``budget``: see the module's docstring for the order.

    ``memories`` come the most relevant first; ``history`` the oldest first.
    """
    limit = budget.prompt_tokens
    parts = _fit_fixed(
        _Parts(instructions, (), attachments, (), question), limit=limit, counter=counter
    )
    left = limit - count_turns(parts.turns(), counter)
    # Memories before history: history is what goes first when there is no room.
    kept: list[ScoredMemory] = []
    for memory in memories:
        cost = counter.count(memory_line(memory)) + 1
        if cost > left:
            break
        kept.append(memory)
        left -= cost
    recent: list[ChatTurn] = []
    for turn in reversed(history):
        cost = counter.count(turn.content) + TURN_OVERHEAD
        if cost > left:
            break
        recent.append(turn)
        left -= cost
    recent.reverse()
    parts = evolve(parts, memories=tuple(kept), history=tuple(recent))
    # Token counts of joined texts are not quite additive: check the real total and
    # give up more, in the same order, until it fits.
    tokens = count_turns(parts.turns(), counter)
    while tokens > limit:
        if parts.history:
            parts = evolve(parts, history=parts.history[1:])
        elif parts.memories:
            parts = evolve(parts, memories=parts.memories[:-1])
        else:
            parts = _shrink(parts, tokens - limit, counter)
        tokens = count_turns(parts.turns(), counter)
    return Prompt(
        turns=parts.turns(),
        memories=parts.memories,
        history_turns=len(parts.history),
        tokens=tokens,
        answer_tokens=budget.answer_tokens,
        budget=limit,
    )


def _fit_fixed(parts: _Parts, *, limit: int, counter: TokenCounter) -> _Parts:
    """Truncate the attachments, the question, then the instructions until they fit alone."""
    tokens = count_turns(parts.turns(), counter)
    while tokens > limit:
        parts = _shrink(parts, tokens - limit, counter)
        tokens = count_turns(parts.turns(), counter)
    return parts


def _shrink(parts: _Parts, excess: int, counter: TokenCounter) -> _Parts:
    """``parts`` with ``excess`` tokens fewer in the attachments, question or instructions."""
    for name in ("attachments", "question", "instructions"):
        text: str = getattr(parts, name)
        if not text:
            continue
        size = counter.count(text)
        shorter = counter.truncate(text, max(0, size - excess)) if size > excess else ""
        if shorter == text:  # the counter could not cut it: drop it whole
            shorter = ""
        changes: dict[str, Any] = {name: shorter}
        return evolve(parts, **changes)
    # Only the fixed scaffolding is left, and a window of MIN_WINDOW tokens always holds it.
    raise ConfigurationError(
        "The context window is too small for a chat prompt: raise llm_context_window "
        "or lower llm_max_tokens or chat_token_headroom",
        details={"setting": "llm_context_window"},
    )


# --- what goes in: the memories and the client's messages ----------------------------------------


def gather_context(
    results: Sequence[ScoredMemory], rule: ContextRule, *, per_document: int = 1
) -> list[ScoredMemory]:
    """The memories an answer is given, in the order of ``results`` (best first).

    The context rule (``select_context``) picks the documents; each brings its
    best memory and up to ``per_document - 1`` more of its memories that also
    pass the rule's similarity threshold. A long conversation often holds
    several facts that one question needs, and one memory per conversation
    would give a user with a single long conversation a single memory. The
    order is the search's (fused, or the rerankers'), never re-sorted by cosine.
    """
    chosen = select_context(results, rule)
    best = {r.memory.document: r.memory.id for r in chosen}
    extra: dict[DocumentKey, list[ScoredMemory]] = {}
    for found in results:
        conversation = found.memory.document
        if conversation not in best or found.memory.id == best[conversation]:
            continue
        if found.similarity <= rule.min_similarity:
            continue
        group = extra.setdefault(conversation, [])
        if len(group) < per_document - 1 and all(g.memory.id != found.memory.id for g in group):
            group.append(found)
    position = {r.memory.id: i for i, r in reversed(list(enumerate(results)))}
    merged = [*chosen, *(found for group in extra.values() for found in group)]
    merged.sort(key=lambda r: position[r.memory.id])
    return merged


@frozen
class TurnPlan:
    """What the client's messages ask: the question, its context, and the conversation."""

    #: The last user message's text: the search query and the prompt's question.
    query: str
    #: The title a new thread gets (the first user message, shortened).
    title: str
    #: The client's system messages, joined (they join the system turn).
    instructions: str
    #: The non-text parts of the current user turn (they go to the part handlers).
    attachments: tuple[ContentPart, ...]
    #: The user and assistant messages with text, up to and including the question.
    conversation: tuple[ThreadMessage, ...]

    def merge(
        self, stored: Sequence[ThreadMessage]
    ) -> tuple[tuple[ThreadMessage, ...], tuple[ChatTurn, ...]]:
        """The messages the thread does not have yet, and the history before the question.

        A client may send the whole conversation (it repeats what the thread
        holds, then adds to it) or only its newest message; when what it sends
        does not start with the stored history, only the question is new.
        """
        held = [(m.role, m.content) for m in stored if m.role != "system"]
        sent = [(m.role, m.content) for m in self.conversation]
        if len(sent) > len(held) and sent[: len(held)] == held:
            new = self.conversation[len(held) :]
        else:
            new = self.conversation[-1:]
        history = [ChatTurn(m.role, m.content) for m in (*stored, *new[:-1]) if m.content]
        return new, tuple(history)


def plan_turns(messages: Sequence[Message]) -> TurnPlan:
    """Read the client's messages; ``InvalidPrompt`` if no user message has text.

    Empty messages (no text, no other parts) are left out.
    """
    kept = [m for m in messages if m.text.strip() or any(p.type != "text" for p in m.content)]
    last = max((i for i, m in enumerate(kept) if m.role == "user" and m.text.strip()), default=-1)
    if last < 0:
        raise InvalidPrompt()
    conversation = tuple(
        ThreadMessage(role=m.role, content=m.text)
        for m in kept[: last + 1]
        if m.role in ("user", "assistant") and m.text.strip()
    )
    turn_start = max((i for i, m in enumerate(kept[:last]) if m.role == "assistant"), default=-1)
    attachments = tuple(
        p
        for m in kept[turn_start + 1 : last + 1]
        if m.role == "user"
        for p in m.content
        if p.type != "text"
    )
    first_user = next(m.content for m in conversation if m.role == "user")
    return TurnPlan(
        query=kept[last].text,
        title=_title(first_user),
        instructions="\n\n".join(m.text.strip() for m in kept if m.role == "system" and m.text),
        attachments=attachments,
        conversation=conversation,
    )


def _title(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# --- what the answer cites ----------------------------------------------------------------------


def citations_for(memories: Sequence[ScoredMemory]) -> list[Citation]:
    """One citation per document (conversation) of ``memories``, the most relevant first.

    ``content`` is that document's memories in the prompt, one per line; ``id``
    and ``similarity`` are its best memory's. The conversation's metadata may
    give ``url``, ``title`` (default: the conversationId), ``description`` and
    ``ogImage``. ``created_at`` is the memory's (else when it was said),
    ``updated_at`` its last change (else ``created_at``).
    """
    groups: dict[DocumentKey, list[ScoredMemory]] = {}
    for found in memories:
        groups.setdefault(found.memory.document, []).append(found)
    return [_citation(group) for group in groups.values()]


def _citation(group: Sequence[ScoredMemory]) -> Citation:
    best = group[0].memory
    meta = best.metadata

    def text(key: str, default: str = "") -> str:
        value = meta.get(key)
        return value if isinstance(value, str) else default

    created = best.created_at or best.said_at
    return Citation(
        similarity=group[0].similarity,
        id=best.id,
        content="\n".join(memory_text(found.memory) for found in group),
        type="conversation",
        url=text("url"),
        title=text("title", best.conversation_id),
        description=text("description"),
        og_image=text("ogImage"),
        created_at=created,
        updated_at=best.updated_at or created,
    )
