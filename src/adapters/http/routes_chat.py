"""POST /api/chat (a streamed answer), GET and DELETE /api/chat/{threadId}, GET /api/threads."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from memoryd.adapters.http._chat_schema import (
    CHAT_CONVERTER,
    PART_TYPES,
    ChatIn,
    chat_to_core,
    wants_sse,
)
from memoryd.adapters.http._converter import iso, structure
from memoryd.adapters.http._errors import read_json
from memoryd.adapters.http._keys import CONFIG, caller, services
from memoryd.adapters.http._schema import (
    MAX_ID_CHARS,
    MAX_MESSAGES,
    MAX_TEXT_CHARS,
    MAX_URL_CHARS,
    URL_PATTERN,
)
from memoryd.adapters.http._streams import DataStream, UiMessageStream, annotation, stream_reply
from memoryd.adapters.http.openapi import (
    NOT_BOTH_TAG_SPELLINGS,
    ONE_TAG,
    TAGS,
    TIME,
    error_responses,
    nullable,
    string,
)
from memoryd.core.chat import ChatService
from memoryd.core.errors import ConfigurationError, FieldError, ValidationFailed
from memoryd.core.model import Thread

routes = web.RouteTableDef()

DEFAULT_PAGE = 20
MAX_PAGE = 100
#: The largest ``offset`` of GET /api/threads (SQLite's integers stop at 2**63 - 1).
MAX_OFFSET = 1_000_000


def chat_service(request: web.Request) -> ChatService:
    found = services(request).chat
    if found is None:
        raise ConfigurationError("Chat is not configured on this server (no chat model)")
    return found


@routes.post("/api/chat")
async def chat(request: web.Request) -> web.StreamResponse:
    body = structure(CHAT_CONVERTER, await read_json(request), ChatIn)
    # Everything that can fail before the answer streams fails here, as JSON.
    reply = await chat_service(request).start(caller(request), chat_to_core(body))
    development = request.app[CONFIG].development
    kind = UiMessageStream if wants_sse(request.headers.get("Accept", ""), body) else DataStream
    stream = kind(reply.thread.id, development=development)
    await stream_reply(request, reply, stream)
    return stream.response


@routes.get("/api/chat/{threadId}")
async def get_thread(request: web.Request) -> web.Response:
    thread = await chat_service(request).get_thread(caller(request), request.match_info["threadId"])
    return web.json_response(thread_view(thread))


@routes.delete("/api/chat/{threadId}")
async def delete_thread(request: web.Request) -> web.Response:
    thread_id = request.match_info["threadId"]
    await chat_service(request).delete_thread(caller(request), thread_id)
    return web.json_response({"deleted": True, "threadId": thread_id})


@routes.get("/api/threads")
async def list_threads(request: web.Request) -> web.Response:
    limit = _query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = _query_int(request, "offset", 0, 0, MAX_OFFSET)
    threads = await chat_service(request).list_threads(caller(request), limit=limit, offset=offset)
    return web.json_response(
        {"threads": [thread_view(t) for t in threads], "limit": limit, "offset": offset}
    )


_DECIMAL = re.compile(r"-?[0-9]{1,20}")


def _query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """The query parameter ``name``: a decimal integer from ``lo`` to ``hi``, else a 400."""
    raw = request.query.get(name)
    if raw is None:
        return default
    # int() would also take " 5", "5_0" and other scripts' digits, and 5000-digit numbers.
    value = int(raw) if _DECIMAL.fullmatch(raw) else None
    if value is None or not lo <= value <= hi:
        message = f"must be an integer from {lo} to {hi}"
        raise ValidationFailed([FieldError(path=name, message=message)])
    return value


def thread_view(thread: Thread) -> dict[str, Any]:
    """A thread as the API writes it; ``messages`` only when the thread was read whole."""
    out: dict[str, Any] = {
        "id": thread.id,
        "title": thread.title,
        "createdAt": iso(thread.created_at),
        "updatedAt": iso(thread.updated_at),
    }
    if thread.messages:
        out["messages"] = [
            {
                "id": f"{thread.id}-{i}",
                "role": m.role,
                "content": m.content,
                "annotations": [
                    annotation(a) | {"forgotten": True} if a.forgotten else annotation(a)
                    for a in m.annotations
                ],
                "createdAt": iso(m.created_at),
            }
            for i, m in enumerate(thread.messages)
        ]
    return out


# --- OpenAPI -------------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_TIME = TIME
_THREAD_PARAM = {
    "name": "threadId",
    "in": "path",
    "required": True,
    "schema": string(1, MAX_ID_CHARS),
}
#: What a part of a type memoryd reads may carry (other part types are ignored whole).
_PART_FIELDS = {
    "text": nullable(string(hi=MAX_TEXT_CHARS)),
    "image": nullable({"type": "string", "description": "A URL, a data URL or base64."}),
    "data": nullable({"type": "string"}),
    "url": nullable(string(1, MAX_URL_CHARS)),
    "mimeType": nullable({"type": "string"}),
    "mediaType": nullable({"type": "string"}),
    "imageUrl": nullable(_ref("UrlObject")),
    "image_url": nullable(_ref("UrlObject")),
}

SCHEMAS: dict[str, Any] = {
    "UrlObject": {
        "type": "object",
        "required": ["url"],
        "properties": {"url": string(1, MAX_URL_CHARS, pattern=URL_PATTERN)},
    },
    "ChatMessage": {
        "type": "object",
        "required": ["role"],
        "description": (
            "`content` (a string or parts), or `parts` (AI SDK v5 UIMessage): at least one "
            "of them, not null."
        ),
        "properties": {
            "role": {"enum": ["user", "assistant", "system"]},
            "content": nullable(
                {
                    "anyOf": [
                        string(hi=MAX_TEXT_CHARS),
                        {"type": "array", "items": _ref("ChatPart")},
                    ]
                }
            ),
            "parts": nullable({"type": "array", "items": _ref("ChatPart")}),
            "annotations": {"description": "Ignored."},
            "experimental_attachments": nullable(
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["url"],
                        "properties": {
                            "url": string(1, MAX_URL_CHARS),
                            "contentType": nullable({"type": "string"}),
                            "name": nullable({"type": "string"}),
                        },
                    },
                }
            ),
        },
        "anyOf": [
            {"required": ["content"], "properties": {"content": {"type": ["string", "array"]}}},
            {"required": ["parts"], "properties": {"parts": {"type": "array"}}},
        ],
    },
    "ChatPart": {
        "description": "text, image, image_url or file; parts of other types are ignored.",
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "text"],
                "properties": {
                    **_PART_FIELDS,
                    "type": {"const": "text"},
                    "text": string(hi=MAX_TEXT_CHARS),
                },
            },
            {
                "type": "object",
                "required": ["type"],
                "properties": {**_PART_FIELDS, "type": {"enum": ["image", "image_url", "file"]}},
            },
            {
                "type": "object",
                "required": ["type"],
                "description": "Reasoning, tool, source, step and data-* parts: ignored.",
                "properties": {"type": {"not": {"enum": list(PART_TYPES)}}},
            },
        ],
    },
    "ChatIn": {
        "type": "object",
        "required": ["messages"],
        "description": (
            'Without a user message with text the answer is 400 "Invalid prompt - please '
            'rephrase your message".'
        ),
        "properties": {
            "messages": {"type": "array", "maxItems": MAX_MESSAGES, "items": _ref("ChatMessage")},
            "threadId": nullable(string(1, MAX_ID_CHARS)),
            "containerTags": TAGS,
            "containerTag": ONE_TAG,
            "trigger": nullable(
                {
                    "type": "string",
                    "description": "Sent by AI SDK v5 clients; it selects the UI message stream.",
                }
            ),
        },
        **NOT_BOTH_TAG_SPELLINGS,
    },
    "Annotation": {
        "type": "object",
        "properties": {
            "similarity": {"type": "number"},
            "id": {"type": "string"},
            "content": {"type": "string"},
            "type": {"type": "string"},
            "url": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "ogImage": {"type": "string"},
            "createdAt": _TIME,
            "updatedAt": _TIME,
            "forgotten": {
                "type": "boolean",
                "description": "In a stored thread only, and only when true: the cited "
                "conversation was deleted, and its text, title, description, url and image "
                "with it; the id, similarity and times stay.",
            },
        },
    },
    "Thread": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "createdAt": _TIME,
            "updatedAt": _TIME,
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "role": {"enum": ["user", "assistant", "system"]},
                        "content": {"type": "string"},
                        "annotations": {"type": "array", "items": _ref("Annotation")},
                        "createdAt": _TIME,
                    },
                },
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/chat": {
        "post": {
            "summary": "Answer from the caller's memories, streamed (AI SDK data or UI stream)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ChatIn")}},
            },
            "responses": {
                "200": {
                    "description": (
                        "The answer. Default: the AI SDK data stream protocol v1 "
                        "(text/x-unknown). With `Accept: text/event-stream` (or a body with "
                        "`trigger`): the UI message stream protocol v1 (SSE). The thread's id "
                        "is in the Supermemory-Thread-Uuid header."
                    ),
                    "headers": {
                        "Supermemory-Thread-Uuid": {"schema": {"type": "string"}},
                    },
                    "content": {
                        "text/x-unknown": {"schema": {"type": "string"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **error_responses(400, 401, 403, 404, 413, 500, 503),
            },
        }
    },
    "/api/chat/{threadId}": {
        "get": {
            "summary": "A chat thread with its messages and their annotations",
            "parameters": [_THREAD_PARAM],
            "responses": {
                "200": {
                    "description": "Found",
                    "content": {"application/json": {"schema": _ref("Thread")}},
                },
                **error_responses(401, 404),
            },
        },
        "delete": {
            "summary": "Delete a chat thread and its messages",
            "parameters": [_THREAD_PARAM],
            "responses": {"200": {"description": "Deleted"}, **error_responses(401, 404)},
        },
    },
    "/api/threads": {
        "get": {
            "summary": "The caller's chat threads, most recently updated first",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                },
                {
                    "name": "offset",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                },
            ],
            "responses": {
                "200": {
                    "description": "Threads without their messages",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "threads": {"type": "array", "items": _ref("Thread")},
                                    "limit": {"type": "integer"},
                                    "offset": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                **error_responses(400, 401),
            },
        }
    },
}
