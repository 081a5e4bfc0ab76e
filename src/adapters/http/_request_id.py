"""Request ids: each request gets one, its log records carry it, its answer names it.

A client's own ``X-Request-Id`` is kept when it is a plain token (letters,
digits, ``._-``, at most 128), so that a proxy's id joins the logs; any other
value is replaced by a new id, never echoed.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from memoryd.adapters.logs import REQUEST_ID

HEADER = "X-Request-Id"
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ID = web.RequestKey("memoryd.request_id", str)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get(HEADER, "")
    request_id = given if _TOKEN.fullmatch(given) else uuid.uuid4().hex
    request[_ID] = request_id
    token = REQUEST_ID.set(request_id)
    try:
        return await handler(request)
    finally:
        REQUEST_ID.reset(token)


async def name_the_request(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer, streams and errors included, names its id."""
    request_id = request.get(_ID)
    if request_id is not None:
        response.headers[HEADER] = request_id
