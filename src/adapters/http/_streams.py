"""The two wire formats of a chat answer, and the loop that streams one.

The core yields :data:`~memoryd.core.chat.ChatEvent` values; a writer here
puts them on the wire in one of the AI SDK's formats:

- :class:`DataStream`: the *data stream protocol* v1 (the default), one
  ``CODE:JSON\\n`` line per part: ``f`` start, ``8`` annotations, ``0`` text,
  ``e`` and ``d`` finish, ``3`` error.
- :class:`UiMessageStream`: the *UI message stream protocol* v1, server-sent
  events (``data: JSON\\n\\n``) written by aiohttp-sse: ``start``,
  ``data-annotations``, ``text-start``/``text-delta``/``text-end``,
  ``finish`` (with the model's ``finishReason``) or ``error``, then ``data: [DONE]``.

Both write the model's own finish reason (``length`` when ``llm_max_tokens``
cut the answer) and, in the data stream, its own token counts when it
reports them (else the ``TokenCounter``'s).

JSON is written compactly and without ASCII escapes, as ``JSON.stringify``
writes it. :func:`stream_reply` runs the answer; when the client goes away
it stops the answer (which closes the model's stream) and leaves no task behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from memoryd.adapters.http._converter import iso
from memoryd.adapters.http._metrics import METRICS
from memoryd.core.chat import (
    Annotations,
    ChatEvent,
    ChatReply,
    Error,
    Finish,
    Start,
    TextDelta,
)
from memoryd.core.model import Citation

log = logging.getLogger("memoryd.http")

THREAD_HEADER = "Supermemory-Thread-Uuid"
#: How often a streaming answer checks that its client is still there (seconds).
DISCONNECT_POLL = 0.1


def dumps(value: Any) -> str:
    """JSON as ``JSON.stringify`` writes it: compact, non-ASCII characters as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def annotation(c: Citation) -> dict[str, Any]:
    """A citation as the spec's annotation JSON (stream and thread), in its field order.

    Times are written by the API's one formatter (:func:`iso`: UTC, ``Z``).
    """
    return {
        "similarity": round(c.similarity, 6),
        "id": c.id,
        "content": c.content,
        "type": c.type,
        "url": c.url,
        "title": c.title,
        "description": c.description,
        "ogImage": c.og_image,
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
    }


def error_text(event: Error, *, development: bool) -> str:
    """What the client reads of an error: its details too in development mode."""
    if development and event.details:
        return f"{event.message}: {event.details}"
    return event.message


# --- the data stream protocol --------------------------------------------------------------------


def data_stream_lines(event: ChatEvent, *, development: bool = False) -> bytes:
    """The data stream protocol's lines for one event."""
    match event:
        case Start(message_id=message_id):
            parts: list[tuple[str, Any]] = [("f", {"messageId": message_id})]
        case Annotations(items=items):
            parts = [("8", [annotation(a) for a in items])]
        case TextDelta(text=text):
            parts = [("0", text)]
        case Finish(reason=reason, usage=usage):
            counts = {
                "promptTokens": usage.prompt_tokens,
                "completionTokens": usage.completion_tokens,
            }
            parts = [
                ("e", {"finishReason": reason, "usage": counts, "isContinued": False}),
                ("d", {"finishReason": reason, "usage": counts}),
            ]
        case Error():
            parts = [("3", error_text(event, development=development))]
    return "".join(f"{code}:{dumps(value)}\n" for code, value in parts).encode(errors="replace")


class DataStream:
    """Writes an answer in the data stream protocol v1, with the spec's headers."""

    def __init__(self, thread_id: str, *, development: bool = False) -> None:
        self.development = development
        self.response = web.StreamResponse(
            headers={
                THREAD_HEADER: thread_id,
                "Content-Type": "text/x-unknown",
                "content-encoding": "identity",
                "X-Vercel-AI-Data-Stream": "v1",
            }
        )
        self.response.enable_chunked_encoding()

    async def prepare(self, request: web.Request) -> None:
        await self.response.prepare(request)

    async def send(self, event: ChatEvent) -> None:
        await self.response.write(data_stream_lines(event, development=self.development))

    async def end(self) -> None:
        await self.response.write_eof()

    async def release(self) -> None:
        """Nothing to release: the data stream has no task of its own."""


# --- the UI message stream protocol (SSE) --------------------------------------------------------

TEXT_ID = "text-1"
DONE = "[DONE]"


class UiMessageEncoder:
    """Turns events into UI message stream chunks (it tracks whether text has started)."""

    def __init__(self, *, development: bool = False) -> None:
        self.development = development
        self.text_open = False

    def chunks(self, event: ChatEvent) -> list[dict[str, Any]]:
        match event:
            case Start(message_id=message_id, thread_id=thread_id):
                return [
                    {
                        "type": "start",
                        "messageId": message_id,
                        "messageMetadata": {"threadId": thread_id},
                    }
                ]
            case Annotations(items=items):
                return [{"type": "data-annotations", "data": [annotation(a) for a in items]}]
            case TextDelta(text=text):
                opening = [] if self.text_open else [{"type": "text-start", "id": TEXT_ID}]
                self.text_open = True
                return [*opening, {"type": "text-delta", "id": TEXT_ID, "delta": text}]
            case Finish(reason=reason):
                closing = [{"type": "text-end", "id": TEXT_ID}] if self.text_open else []
                self.text_open = False
                return [*closing, {"type": "finish", "finishReason": reason}]
            case Error():
                text = error_text(event, development=self.development)
                return [{"type": "error", "errorText": text}]


def ui_message_stream_data(event: ChatEvent, encoder: UiMessageEncoder) -> list[str]:
    """The ``data:`` payloads of one event (one per SSE event)."""
    return [dumps(chunk) for chunk in encoder.chunks(event)]


class UiMessageStream:
    """Writes an answer in the UI message stream protocol v1 (SSE), ending with ``[DONE]``."""

    def __init__(self, thread_id: str, *, development: bool = False) -> None:
        self.encoder = UiMessageEncoder(development=development)
        self.response = EventSourceResponse(
            headers={THREAD_HEADER: thread_id, "x-vercel-ai-ui-message-stream": "v1"},
            sep="\n",
            allow_all_methods=True,
        )

    async def prepare(self, request: web.Request) -> None:
        await self.response.prepare(request)

    async def send(self, event: ChatEvent) -> None:
        for data in ui_message_stream_data(event, self.encoder):
            await self.response.send(data)

    async def end(self) -> None:
        await self.response.send(DONE)
        await self.response.write_eof()

    async def release(self) -> None:
        """Stop the keep-alive pings' task (and wait until it has stopped)."""
        if self.response.prepared:
            self.response.stop_streaming()
            await self.response.wait()


# --- running an answer ---------------------------------------------------------------------------


ChatStream = DataStream | UiMessageStream


async def stream_reply(request: web.Request, reply: ChatReply, stream: ChatStream) -> None:
    """Send the headers, then every event of ``reply``, then end the stream.

    If the client goes away (seen within ``DISCONNECT_POLL`` seconds, or when a
    write fails) the answer stops: the wait for its next event is cancelled,
    which closes the model's stream and so stops the generation; the thread
    is left as it was. Each event is awaited in a task of its own, raced
    against the watch on the client, and every task is gone on return.
    """
    events = reply.events()
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    watcher: asyncio.Task[None] | None = None
    step: asyncio.Task[ChatEvent] | None = None
    gone = False
    try:
        await stream.prepare(request)
        watcher = asyncio.create_task(_client_gone(request))
        while True:
            step = asyncio.create_task(_next(events))
            await asyncio.wait({step, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                gone = True
                break
            try:
                event = step.result()
            except StopAsyncIteration:
                break
            if first is None and isinstance(event, TextDelta):
                first = time.perf_counter()
            elif isinstance(event, Finish):
                tokens = event.usage.completion_tokens
            await stream.send(event)
        if not gone:
            await stream.end()
    except (ConnectionResetError, TimeoutError):
        gone = True  # a write failed (the client left) or timed out (a stalled client)
    except Exception:
        # The headers are out: there is no JSON error to send any more, only an end.
        log.exception("the answer in thread %s broke off", reply.thread.id)
    finally:
        pending = [t for t in (step, watcher) if t is not None]
        for task in pending:
            task.cancel()  # a cancelled wait for an event closes the model's stream
        await asyncio.gather(*pending, return_exceptions=True)
        await events.aclose()
        await stream.release()
    if gone:
        log.info("client left; the answer in thread %s was stopped", reply.thread.id)
    metrics = request.app.get(METRICS)
    if metrics is not None and not gone:
        metrics.answered(reply.service.model.name, started, first, tokens)


async def _next(events: AsyncGenerator[ChatEvent, None]) -> ChatEvent:
    return await anext(events)


async def _client_gone(request: web.Request) -> None:
    """Return once the client's connection is closed."""
    while True:
        await asyncio.sleep(DISCONNECT_POLL)
        transport = request.transport
        if transport is None or transport.is_closing():
            return
