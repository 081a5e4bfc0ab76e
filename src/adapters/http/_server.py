"""The HTTP server memoryd runs: aiohttp's, with limits on what a stranger's connection may hold.

``make_runner(app, limits)`` is a ``web.AppRunner`` whose connections

- never decompress a body (``auto_decompress=False``): ``_body.read_body`` inflates it, within
  ``max_body_bytes``, and only after the auth middleware let the request through;
- are closed when a complete request head has not arrived ``header_timeout`` s after the
  connection opened, or after the first byte of a later request on a kept-alive connection
  (with a 408 when part of a head came);
- are closed after ``keepalive_timeout`` s idle between requests;
- read and drop an unread body (a 401's, say) for ``lingering_time`` s at most after the
  answer, so that the client reads the answer rather than a reset, and then close;
- are answered 503 and closed at once, unread, while ``max_connections`` others are open;
- log what a client does wrong (malformed HTTP, leaving mid-request, a timeout) once per
  connection, at DEBUG, without a traceback: strangers cannot flood the log.

aiohttp has no public knob for a head timeout, a connection cap or how client errors are
logged, so the classes below subclass its ``RequestHandler``, ``Server`` and ``AppRunner``
(overriding ``connection_made``, ``connection_lost``, ``data_received``, ``finish_response``,
``handle_error``, ``log_exception``, ``Server.__call__`` and ``AppRunner._make_server``, and
reading ``Server._kwargs``). setup.cfg pins the aiohttp minor version they were written for;
tests/integration/http/test_http_hostile.py checks each behaviour on a real socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from attrs import field, frozen

from memoryd.adapters.http._keys import positive

log = logging.getLogger("memoryd.http")

#: What a client's own mistakes raise: logged once per connection at DEBUG, no traceback.
CLIENT_ERRORS = (HttpProcessingError, web.RequestPayloadError, ConnectionError)
#: Seconds between two warnings that connections are being refused (with how many).
REFUSAL_REPORT_SECONDS = 60.0

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@frozen(kw_only=True)
class ServerLimits:
    """Connection-level limits (the body-level ones are in ``HttpConfig``)."""

    #: Seconds to send a complete request head, from connecting or from a later head's first byte.
    header_timeout: float = field(default=10.0, validator=positive)
    #: Seconds an idle kept-alive connection stays open.
    keepalive_timeout: float = field(default=75.0, validator=positive)
    #: Open connections at most; past it a new one gets 503 and is closed.
    max_connections: int = field(default=512, validator=positive)
    #: Seconds an unread request body is read and dropped after the answer, then the
    #: connection closes (so that the client gets the answer, not a reset).
    lingering_time: float = field(default=2.0, validator=positive)


def make_runner(app: web.Application, limits: ServerLimits) -> web.AppRunner:
    """A runner for ``app`` that holds its connections to ``limits``; no access log."""
    return _Runner(
        app,
        limits=limits,
        access_log=None,
        auto_decompress=False,
        keepalive_timeout=limits.keepalive_timeout,
        lingering_time=limits.lingering_time,
    )


def canned_response(status: int, message: str, details: Any, *, retry_after: int = 0) -> bytes:
    """A whole JSON error answer on the wire, with ``Connection: close``."""
    body = json.dumps({"error": message, "details": details}).encode()
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if retry_after:
        head.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


def _first_line(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    return (text.strip().splitlines() or [""])[0][:200]


class _Runner(web.AppRunner):
    __slots__ = ("_limits",)

    def __init__(self, app: web.Application, *, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits

    async def _make_server(self) -> web.Server:
        # Override: aiohttp's AppRunner starts the app and makes a plain Server; serve the
        # same handler, request factory and settings through ours.
        plain = await super()._make_server()
        return _Server(
            plain.request_handler,
            limits=self._limits,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            **plain._kwargs,
        )


class _Server(web.Server):
    """Makes a ``_Connection`` per connection and counts the open ones."""

    def __init__(
        self,
        handler: _Handler,
        *,
        limits: ServerLimits,
        request_factory: Callable[..., web.BaseRequest],
        **kwargs: Any,
    ) -> None:
        def on_head(
            message: Any, payload: Any, protocol: web.RequestHandler, writer: Any, task: Any
        ) -> web.BaseRequest:
            # aiohttp calls the request factory once a request head is complete.
            if isinstance(protocol, _Connection):
                protocol.head_received()
            return request_factory(message, payload, protocol, writer, task)

        super().__init__(handler, request_factory=on_head, **kwargs)
        self.limits = limits
        self.open_connections = 0
        self._refused = 0
        self._next_report = 0.0

    def __call__(self) -> web.RequestHandler:
        # Override: aiohttp's makes a plain RequestHandler.
        return _Connection(self, loop=self._loop, **self._kwargs)

    def admit(self) -> bool:
        """Count a new connection in, or False (and a warning at most once a minute)."""
        if self.open_connections < self.limits.max_connections:
            self.open_connections += 1
            return True
        self._refused += 1
        now = time.monotonic()
        if now >= self._next_report:
            log.warning(
                "%d connections are open (setting max_connections): refused %d with 503",
                self.limits.max_connections,
                self._refused,
            )
            self._refused = 0
            self._next_report = now + REFUSAL_REPORT_SECONDS
        return False

    def release(self) -> None:
        self.open_connections -= 1


class _Connection(web.RequestHandler):
    """One client connection: aiohttp's, plus the head timeout, the cap and quiet client errors."""

    __slots__ = (
        "_admitted",
        "_awaiting_head",
        "_head_bytes",
        "_head_timer",
        "_owner",
        "_peer",
        "_reported",
    )

    def __init__(self, manager: _Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._owner = manager
        self._admitted = False
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._peer: Any = None
        self._reported = False

    # --- the cap and the head timeout ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._peer = transport.get_extra_info("peername")
        if not self._owner.admit():
            limit = self._owner.limits.max_connections
            message = (
                f"Too many open connections: the limit is {limit} (setting max_connections); "
                "retry later"
            )
            refusal = canned_response(503, message, {"limit": limit}, retry_after=1)
            writer = cast(asyncio.Transport, transport)
            writer.write(refusal)
            writer.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return  # refused: aiohttp never saw this connection
        self._admitted = False
        self._owner.release()
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._awaiting_head and data:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._arm_head_timer()
        super().data_received(data)

    def head_received(self) -> None:
        """A request head is complete: its handler runs with no head timeout."""
        self._awaiting_head = False
        self._head_bytes = 0
        self._cancel_head_timer()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        # Override: once an answer is out, the next bytes begin the next request's head.
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._awaiting_head = True

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        timeout = self._owner.limits.header_timeout
        self._head_timer = self._loop.call_later(timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport is None:
            return
        timeout = self._owner.limits.header_timeout
        if self._head_bytes:  # a head began: say why it is cut off
            message = f"No complete request head within {timeout:g} s (setting header_timeout)"
            self.transport.write(canned_response(408, message, {"timeoutSeconds": timeout}))
        self._report(f"no complete request head within {timeout:g} s (setting header_timeout)")
        self.force_close()

    # --- client errors: once per connection, at DEBUG, no traceback ----------------------------

    def _report(self, what: str) -> None:
        if not self._reported:
            self._reported = True
            log.debug("connection from %s closed: %s", self._peer, what)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # Override: aiohttp logs these at ERROR with a traceback.
        exc = kw.get("exc_info")
        if isinstance(exc, CLIENT_ERRORS):
            self._report(f"{type(exc).__name__}: {_first_line(exc)!r}")
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # Override: malformed HTTP gets the JSON error shape, and one quiet log line.
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        self._report(f"malformed HTTP: {type(exc).__name__}: {_first_line(exc)!r}")
        response = web.json_response(
            {"error": "Malformed HTTP request", "details": {"reason": _first_line(exc)}},
            status=status,
        )
        response.force_close()
        return response
