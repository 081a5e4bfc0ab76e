"""Use case: chat with memory. Retrieve, build a prompt that fits, stream, save the thread.

:meth:`ChatService.start` does everything that may fail before an answer
streams (the prompt is invalid, the thread is unknown, the store is down):
it raises, and the HTTP edge answers with a JSON error. It returns a
:class:`ChatReply` whose :meth:`~ChatReply.events` stream the answer as
:data:`ChatEvent` values, which two writers at the edge put on the wire:
:class:`Start`, then :class:`Annotations` (before the model is even asked),
then :class:`TextDelta` as the model writes, then :class:`Finish`. A failure
after the start is an :class:`Error` event, which ends the stream.

The thread is written when the answer is complete: the new messages and the
answer, with its annotations, in one append, before :class:`Finish`. An
answer that fails or that the client abandons appends nothing, so that the
client may send the same message again.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import string
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from attrs import define, field, frozen

from memoryd.core.errors import FieldError, MemorydError, NotFound, ValidationFailed
from memoryd.core.memories import spoken_date
from memoryd.core.model import (
    Caller,
    Citation,
    ContentPart,
    Message,
    Thread,
    ThreadMessage,
)
from memoryd.core.ports import (
    ChatModel,
    Clock,
    Completed,
    FinishReason,
    PartHandler,
    ThreadStore,
    TokenCounter,
    Usage,
)
from memoryd.core.prompt import (
    Budget,
    Prompt,
    build_prompt,
    citations_for,
    gather_context,
    plan_turns,
)
from memoryd.core.reading import PartReader, UrlFetcher
from memoryd.core.retrieval import ContextRule, SearchRequest, SearchService

log = logging.getLogger("memoryd.chat")

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant with a memory of the user's past conversations. "
    "Answer the user's message using the memories below when they are relevant, "
    "and mention when things happened if that helps. If the memories do not hold "
    "the answer, say so briefly instead of guessing. Be concise."
)
UNEXPECTED = "An unexpected error occurred"


# --- events --------------------------------------------------------------------------------------


@frozen
class Start:
    """The answer begins: its message id and the thread it belongs to."""

    message_id: str
    thread_id: str


@frozen
class Annotations:
    """The memories the answer was given, one per document (conversation)."""

    items: tuple[Citation, ...]


@frozen
class TextDelta:
    """A piece of the answer, as the model wrote it."""

    text: str


@frozen
class Finish:
    """The answer is complete (and saved in the thread).

    ``reason`` and ``usage`` are the model's own (its ``Completed``); a model
    that reports no token counts gets them counted with the ``TokenCounter``
    (``usage.estimated``), and one that gives no reason gets ``unknown``.
    """

    reason: FinishReason
    usage: Usage


@frozen
class Error:
    """The answer failed after it started; the stream ends here.

    ``message`` is safe to show anyone; ``details`` says what went wrong, for
    operators (the edge shows it in development mode only).
    """

    message: str
    details: str | None = None


ChatEvent: TypeAlias = Start | Annotations | TextDelta | Finish | Error


# --- requests and settings -----------------------------------------------------------------------


@frozen
class ChatRequest:
    """A chat request: the client's messages, and the thread to continue if any."""

    messages: tuple[Message, ...]
    thread_id: str | None = None
    #: Search only memories with any of these tags (within the key's, and within the
    #: thread's when it continues one), our extension. A new thread keeps them as its scope.
    container_tags: tuple[str, ...] = ()


@frozen
class ChatPolicy:
    """How chat answers are made; every field is a setting (``chat_*``, ``llm_max_tokens``)."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    rule: ContextRule = field(factory=ContextRule)
    #: Search results considered before the context rule picks documents.
    search_limit: int = 50
    #: Memories of one document that may go into the prompt (the best first).
    memories_per_document: int = 3
    #: The most history messages considered for the prompt (the newest).
    max_history: int = 50
    #: The most tokens an answer may take.
    max_answer_tokens: int = 256
    #: Share of the context window kept free for tokenizer differences.
    token_headroom: float = 0.25
    #: Whether the search runs the rerankers over its candidates (``chat_rerank``).
    rerank: bool = False


def _message_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "msg-" + "".join(secrets.choice(alphabet) for _ in range(24))


def _thread_id() -> str:
    return uuid.uuid4().hex


# --- the use case --------------------------------------------------------------------------------


@define(kw_only=True)
class ChatService:
    """Answers chat messages from the caller's memories and keeps the threads."""

    search: SearchService
    threads: ThreadStore
    model: ChatModel
    tokens: TokenCounter
    clock: Clock
    part_handlers: Sequence[PartHandler] = ()
    #: Fetches the http(s) URLs of image and file parts (setting ``fetch_urls``); None: off.
    fetcher: UrlFetcher | None = None
    policy: ChatPolicy = field(factory=ChatPolicy)
    new_message_id: Callable[[], str] = _message_id
    new_thread_id: Callable[[], str] = _thread_id

    async def start(self, caller: Caller, request: ChatRequest) -> ChatReply:
        """Check the request, find the thread and the memories, build the prompt.

        Raises ``InvalidPrompt`` (no user message with text), ``NotFound`` (an
        unknown thread, or one this key may not use), ``Forbidden`` (tags outside
        the key), ``ValidationFailed`` (tags outside the continued thread's) and
        ``StoreUnavailable``; nothing is streamed or saved then.

        A thread keeps the scope it was started in (``Thread.container_tags``):
        whoever continues it searches only within the thread's tags.
        """
        received_at = self.clock.now()
        plan = plan_turns(request.messages)
        budget = Budget(
            window=self.model.context_window,
            max_answer_tokens=self.policy.max_answer_tokens,
            headroom=self.policy.token_headroom,
        )
        known = (
            await self.get_thread(caller, request.thread_id)
            if request.thread_id is not None
            else None
        )
        requested = tuple(dict.fromkeys(request.container_tags))
        tags = thread_search_tags(known, requested) if known is not None else requested
        results = await self.search.search(
            caller,
            SearchRequest(
                q=plan.query,
                container_tags=tags,
                limit=self.policy.search_limit,
                threshold=self.policy.rule.min_similarity,
                rerank=self.policy.rerank,
            ),
        )
        attachments = await self._attachments(plan.attachments)
        # A new thread is made once the request is known to be good, before the answer
        # streams, so that the id the client gets is real even if the answer fails.
        thread = known or await self._new_thread(caller, plan.title, requested or caller.tags)
        new, history = plan.merge(thread.messages)
        memories = gather_context(
            results, self.policy.rule, per_document=self.policy.memories_per_document
        )
        prompt = build_prompt(
            instructions=self._instructions(plan.instructions),
            memories=memories,
            history=history[-self.policy.max_history :] if self.policy.max_history > 0 else (),
            question=plan.query,
            attachments=attachments,
            budget=budget,
            counter=self.tokens,
        )
        return ChatReply(
            service=self,
            caller=caller,
            thread=thread,
            message_id=self.new_message_id(),
            prompt=prompt,
            annotations=tuple(citations_for(prompt.memories)),
            new_messages=new,
            received_at=received_at,
        )

    async def get_thread(self, caller: Caller, thread_id: str) -> Thread:
        """The thread with its messages; ``NotFound`` if this key may not see it."""
        found = await self.threads.get_thread(caller.tenant_id, thread_id)
        if found is None or not caller.may_use_thread(found.container_tags):
            raise NotFound("Thread not found", details={"threadId": thread_id})
        return found

    async def list_threads(self, caller: Caller, *, limit: int, offset: int) -> list[Thread]:
        """The threads this key may use, most recently updated first, without messages."""
        return await self.threads.list_threads(
            caller.tenant_id,
            limit=limit,
            offset=offset,
            within_tags=caller.tags if caller.tag_limited else None,
        )

    async def delete_thread(self, caller: Caller, thread_id: str) -> None:
        """Delete the thread and its messages; ``NotFound`` if this key may not see it."""
        await self.get_thread(caller, thread_id)
        if not await self.threads.delete_thread(caller.tenant_id, thread_id):
            raise NotFound("Thread not found", details={"threadId": thread_id})

    async def _new_thread(self, caller: Caller, title: str, tags: tuple[str, ...]) -> Thread:
        now = self.clock.now()
        thread = Thread(
            id=self.new_thread_id(),
            tenant_id=caller.tenant_id,
            container_tags=tags,
            title=title,
            created_at=now,
            updated_at=now,
        )
        await self.threads.create_thread(thread)
        return thread

    def _instructions(self, client_system: str) -> str:
        today = spoken_date(self.clock.now().date())
        parts = [self.policy.system_prompt.strip(), f"Today is {today}."]
        if client_system:
            parts.append(f"Instructions from the application:\n{client_system}")
        return "\n\n".join(p for p in parts if p)

    async def _attachments(self, parts: Sequence[ContentPart]) -> str:
        texts: list[str] = []
        reader = PartReader(self.part_handlers, self.fetcher)
        for part in parts:
            text = (await reader.read(part)).text
            if text and text.strip():
                texts.append(text.strip())
        return "\n\n".join(texts)


def thread_search_tags(thread: Thread, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The tags a continued thread searches: its own, or the requested ones within them.

    A thread with no tags was started by a key limited to no tags (only such
    keys may continue it), and its scope is the whole tenant.
    """
    scope = thread.container_tags
    if not requested:
        return scope
    outside = sorted(set(requested) - set(scope)) if scope else []
    if outside:
        raise ValidationFailed(
            [
                FieldError(
                    path="containerTags",
                    message=f"must be within the thread's container tags {list(scope)}; "
                    f"{outside} are not (start a new thread to search them)",
                )
            ]
        )
    return requested


@define(kw_only=True)
class ChatReply:
    """An answer ready to stream; :meth:`events` streams it once."""

    service: ChatService
    caller: Caller
    thread: Thread
    message_id: str
    prompt: Prompt
    annotations: tuple[Citation, ...]
    #: The client's messages that the thread does not have yet (saved with the answer).
    new_messages: tuple[ThreadMessage, ...]
    #: When the request came in (the new messages' time in the thread).
    received_at: datetime

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        """Start, Annotations, the answer's TextDeltas, then Finish (or Error).

        Closing the iterator early (the client went away) closes the model's
        stream, which stops the generation, and saves nothing.
        """
        yield Start(message_id=self.message_id, thread_id=self.thread.id)
        yield Annotations(self.annotations)
        service = self.service
        pieces: list[str] = []
        completed = Completed("unknown")
        try:
            stream = service.model.stream(self.prompt.turns, max_tokens=self.prompt.answer_tokens)
            try:
                async for piece in stream:
                    if isinstance(piece, Completed):
                        completed = piece
                        break  # the port's last value: nothing after it counts
                    if piece:
                        pieces.append(piece)
                        yield TextDelta(piece)
            finally:
                await _close(stream)
            answer = "".join(pieces)
            await self._save(answer)
        except MemorydError as exc:
            log.warning("chat answer failed in thread %s: %s", self.thread.id, exc.message)
            yield Error(exc.default_message, details=exc.message)
            return
        except Exception as exc:
            log.exception("chat answer failed in thread %s", self.thread.id)
            yield Error(UNEXPECTED, details=f"{type(exc).__name__}: {exc}")
            return
        usage = completed.usage or Usage(
            prompt_tokens=self.prompt.tokens,
            completion_tokens=service.tokens.count(answer),
            estimated=True,
        )
        yield Finish(reason=completed.finish_reason, usage=usage)

    async def _save(self, answer: str) -> None:
        messages = [
            *(
                ThreadMessage(m.role, m.content, created_at=self.received_at)
                for m in self.new_messages
            ),
            ThreadMessage(
                "assistant",
                answer,
                annotations=self.annotations,
                created_at=self.service.clock.now(),
            ),
        ]
        await self.service.threads.append_messages(self.caller.tenant_id, self.thread.id, messages)


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
