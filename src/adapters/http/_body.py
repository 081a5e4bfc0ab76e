"""Reading a request body: within a time limit, and within ``max_body_bytes`` before and after
decompression, with big inflations off the event loop.

The runner memoryd serves with (``_server.make_runner``) does not decompress, so a body is
inflated here, after the auth middleware let the request through, never for a stranger. Under
a runner that does decompress (aiohttp's default, as in the tests' ``aiohttp_client``), the
body arrives inflated and only the limits on the bytes read apply.
"""

from __future__ import annotations

import asyncio
import logging
import zlib

from aiohttp import web

from memoryd.core.errors import FieldError, MemorydError, PayloadTooLarge, ValidationFailed

log = logging.getLogger("memoryd.http")

#: The request content codings a body may have, as ``Content-Encoding`` names them.
ACCEPTED_ENCODINGS = ("gzip", "deflate", "identity")
_ALIASES = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}

#: Bodies inflate on the event loop only while both their compressed size and what has come
#: out are within this; the rest inflates on a worker thread.
INFLATE_ON_LOOP_BYTES = 256 * 1024
#: Output bytes one ``decompress`` call may return (the steps between limit checks).
_STEP_BYTES = 64 * 1024
#: Gzip members one body may concatenate (clients send one).
MAX_GZIP_MEMBERS = 16


class BodyTimeout(MemorydError):
    """The body did not arrive within ``body_timeout`` (408)."""

    default_message = "Request body not received in time"


class UnsupportedEncoding(MemorydError):
    """The body has a ``Content-Encoding`` memoryd does not decode (415)."""

    default_message = "Unsupported Content-Encoding"


def too_large(limit: int, *, inflated: bool = False) -> PayloadTooLarge:
    where = " once decompressed" if inflated else ""
    return PayloadTooLarge(
        f"Request body too large{where}: the limit is {limit} bytes (setting max_body_bytes)",
        details={"limitBytes": limit},
    )


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(path="", message=message)])


def content_coding(request: web.Request) -> str:
    """``gzip``, ``deflate`` or ``identity`` (also for a body the server already inflated)."""
    if getattr(request.content, "total_compressed_bytes", None) is not None:
        return "identity"  # the runner decompressed it (aiohttp's auto_decompress)
    header = request.headers.get("Content-Encoding", "")
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in _ALIASES:
        return _ALIASES[codings[0]]
    raise UnsupportedEncoding(
        f"Unsupported Content-Encoding {header[:100]!r}: send the body as one of "
        + ", ".join(ACCEPTED_ENCODINGS),
        details={"accepted": list(ACCEPTED_ENCODINGS)},
    )


async def read_body(request: web.Request, *, max_bytes: int, time_limit: float) -> bytes:
    """The body, decompressed; 408 after ``time_limit`` s, 413 past ``max_bytes``, 415, 400."""
    coding = content_coding(request)
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise too_large(max_bytes)
    raw = await _read_raw(request, max_bytes, time_limit)
    if coding == "identity" or not raw:
        return raw
    inflater = _Inflater(raw, coding, max_bytes)
    # A little on the loop (input and output both bounded), the rest on a thread.
    if len(raw) <= INFLATE_ON_LOOP_BYTES and inflater.run(INFLATE_ON_LOOP_BYTES):
        return inflater.result()
    await asyncio.to_thread(inflater.run, None)
    return inflater.result()


async def _read_raw(request: web.Request, max_bytes: int, time_limit: float) -> bytes:
    body = bytearray()
    try:
        async with asyncio.timeout(time_limit):
            while chunk := await request.content.readany():
                body += chunk
                if len(body) > max_bytes:
                    raise too_large(max_bytes)
    except TimeoutError:
        raise BodyTimeout(
            f"Request body not received within {time_limit:g} s (setting body_timeout)",
            details={"timeoutSeconds": time_limit, "receivedBytes": len(body)},
        ) from None
    except ConnectionError:
        log.debug("client %s left after %d bytes of its request body", request.remote, len(body))
        raise _invalid("the connection closed before the body was complete") from None
    except web.RequestPayloadError as exc:
        log.debug("malformed request body from %s: %s", request.remote, exc)
        raise _invalid(f"malformed body framing: {exc}") from None
    return bytes(body)


class _Inflater:
    """Resumable gzip/deflate decompression that never holds more than ``limit + 1`` bytes out.

    ``run(budget)`` inflates until the body is done (True) or ``budget`` more output bytes have
    come out (False; call ``run`` again, e.g. on a thread). Errors are 413 or 400.
    """

    def __init__(self, raw: bytes, coding: str, limit: int) -> None:
        self._coding = coding
        self._limit = limit
        self._out = bytearray()
        self._members = 1
        if coding == "gzip":
            self._wbits = 16 + zlib.MAX_WBITS
        else:  # "deflate" is zlib-wrapped (RFC 9110); some clients send raw deflate
            self._wbits = zlib.MAX_WBITS if raw[0] & 0x0F == 8 else -zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(self._wbits)
        self._input = raw
        self._done = False

    def result(self) -> bytes:
        """The inflated body, once ``run`` returned True."""
        return bytes(self._out)

    def run(self, budget: int | None) -> bool:
        produced = 0
        while not self._done:
            if budget is not None and produced >= budget:
                return False
            room = min(self._limit - len(self._out) + 1, _STEP_BYTES)
            try:
                piece = self._zlib.decompress(self._input, room)
            except zlib.error as exc:
                raise _invalid(f"the body is not valid {self._coding} data ({exc})") from None
            self._out += piece
            produced += len(piece)
            if len(self._out) > self._limit:
                raise too_large(self._limit, inflated=True)
            self._input = self._zlib.unconsumed_tail
            if self._zlib.eof:
                self._next_member()
            elif not self._input and len(piece) < room:
                raise _invalid(f"the {self._coding} body is truncated")
        return True

    def _next_member(self) -> None:
        rest = self._zlib.unused_data
        if not rest:
            self._done = True
        elif self._coding != "gzip":
            raise _invalid("the body has data after the end of its deflate stream")
        elif self._members >= MAX_GZIP_MEMBERS:
            raise _invalid(f"the body has more than {MAX_GZIP_MEMBERS} gzip members")
        else:
            self._members += 1
            self._zlib = zlib.decompressobj(self._wbits)
            self._input = rest
