"""One middleware maps every error to one JSON shape: ``{"error": ..., "details": ...}``."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from memoryd.adapters.http._body import BodyTimeout, UnsupportedEncoding, read_body
from memoryd.adapters.http._keys import CONFIG
from memoryd.core import errors
from memoryd.core.errors import FieldError, MemorydError, PayloadTooLarge, ValidationFailed

log = logging.getLogger("memoryd.http")

UNEXPECTED = "An unexpected error occurred"


def error_response(status: int, message: str, details: Any = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=status)


#: The status each core error answers with; a subclass not listed takes its base's.
STATUS: dict[type, int] = {
    errors.MemorydError: 500,
    errors.ValidationFailed: 400,
    errors.InvalidPrompt: 400,
    errors.Unauthorized: 401,
    errors.QuotaExceeded: 402,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.PayloadTooLarge: 413,
    errors.StoreUnavailable: 503,
    errors.ModelUnavailable: 503,
    errors.ConfigurationError: 500,
    BodyTimeout: 408,
    UnsupportedEncoding: 415,
}


def status_of(exc: MemorydError) -> int:
    """The HTTP status for a core error: its class's entry in :data:`STATUS`, else its base's."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def from_error(exc: MemorydError) -> web.Response:
    return error_response(status_of(exc), exc.message, exc.details)


_HTTP_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MemorydError as exc:
        status = status_of(exc)
        if status >= 500:
            log.warning("%s %s -> %d %s", request.method, request.path, status, exc.message)
        return from_error(exc)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG].max_body_bytes
        return from_error(
            PayloadTooLarge(
                f"Request body too large: the limit is {limit} bytes (setting max_body_bytes)",
                details={"limitBytes": limit},
            )
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status, exc.reason)
        response = error_response(exc.status, message)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        log.exception("unhandled error on %s %s", request.method, request.path)
        details = f"{type(exc).__name__}: {exc}" if request.app[CONFIG].development else None
        return error_response(500, UNEXPECTED, details)


#: Bodies larger than this are parsed on a worker thread, so the loop never stalls on them.
PARSE_IN_THREAD_BYTES = 256 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: A lone surrogate's traces in the bytes: an escape (``\\ud800``) or its raw UTF-8 form
#: (two patterns, each with a literal prefix, scan several times faster than one alternation).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE_BYTES = re.compile(rb"\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Bad strings named in one answer at most.
MAX_SURROGATE_PATHS = 20
_SURROGATE_MESSAGE = (
    "contains an unpaired surrogate (U+D800 to U+DFFF, escaped or as raw bytes), which is "
    "not valid Unicode; send UTF-8 text"
)


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _NAME.fullmatch(key):
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def _surrogate_paths(data: Any) -> list[FieldError]:
    """Each string (or key) of ``data`` holding a lone surrogate, by its path, in body order."""
    found: list[FieldError] = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack and len(found) < MAX_SURROGATE_PATHS:
        path, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                found.append(FieldError(path=path, message=_SURROGATE_MESSAGE))
        elif isinstance(value, dict):
            children: list[tuple[str, Any]] = []
            for key, item in value.items():
                if _SURROGATE.search(key):
                    message = "has a key that " + _SURROGATE_MESSAGE
                    found.append(FieldError(path=path, message=message))
                    continue
                children.append((_child(path, key), item))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend((_child(path, i), v) for i, v in reversed(list(enumerate(value))))
    return found[:MAX_SURROGATE_PATHS]


def parse_json(raw: bytes) -> Any:
    """Parse strict JSON (no NaN, no Infinity, no lone surrogates); errors become a 400.

    ``json.loads`` decodes bytes with ``surrogatepass``, so a lone surrogate, raw
    (``\\xed\\xa0\\x80``) or escaped (``\\ud800``), would reach the store and fail there.
    Such a string is a 400 naming its path (``messages[0].content``). Clean bodies
    pay a scan of the bytes for a trace of one; only a body with such a trace is walked.
    """
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ValidationFailed([FieldError(path="", message="the body is not UTF-8")]) from None
    except json.JSONDecodeError as exc:
        message = f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ValidationFailed([FieldError(path="", message=message)], "Invalid JSON") from None
    except RecursionError:
        message = "malformed JSON: nested too deeply"
        raise ValidationFailed([FieldError(path="", message=message)], "Invalid JSON") from None
    except ValueError as exc:
        raise ValidationFailed([FieldError(path="", message=str(exc))], "Invalid JSON") from None
    # A UTF-16 or UTF-32 body (json.loads detects them) hides its surrogates from the scan.
    if (
        json.detect_encoding(raw) not in {"utf-8", "utf-8-sig"}
        or _SURROGATE_ESCAPE.search(raw)
        or _SURROGATE_BYTES.search(raw)
    ):
        bad = _surrogate_paths(data)
        if bad:
            raise ValidationFailed(bad)
    return data


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; a malformed body is a 400 that says where it broke.

    The body is read within ``body_timeout`` (408) and ``max_body_bytes`` (413, also once
    decompressed), gzip or deflate (else 415): see :func:`_body.read_body`.
    """
    config = request.app[CONFIG]
    raw = await read_body(request, max_bytes=config.max_body_bytes, time_limit=config.body_timeout)
    if not raw:
        raise ValidationFailed([FieldError(path="", message="the body is empty; send JSON")])
    if len(raw) > PARSE_IN_THREAD_BYTES:
        return await asyncio.to_thread(parse_json, raw)
    return parse_json(raw)
