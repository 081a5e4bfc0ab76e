"""POST /api/chat (a streamed answer), GET and DELETE /api/chat/{threadId}, GET /api/threads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from memoryd.adapters.http._chat_schema import CHAT_CONVERTER, ChatIn, chat_to_core, wants_sse
from memoryd.adapters.http._converter import iso, structure
from memoryd.adapters.http._errors import read_json
from memoryd.adapters.http._keys import CONFIG, caller, services
from memoryd.adapters.http._streams import DataStream, UiMessageStream, annotation, stream_reply
from memoryd.adapters.http.openapi import error_responses
from memoryd.core.chat import ChatService
from memoryd.core.errors import ConfigurationError, FieldError, ValidationFailed
from memoryd.core.model import Thread

routes = web.RouteTableDef()

DEFAULT_PAGE = 20
MAX_PAGE = 100


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
    offset = _query_int(request, "offset", 0, 0, None)
    threads = await chat_service(request).list_threads(caller(request), limit=limit, offset=offset)
    return web.json_response(
        {"threads": [thread_view(t) for t in threads], "limit": limit, "offset": offset}
    )


def _query_int(request: web.Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    bounds = f"from {lo} to {hi}" if hi is not None else f"{lo} or more"
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < lo or (hi is not None and value > hi):
        raise ValidationFailed([FieldError(path=name, message=f"must be an integer {bounds}")])
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
                "annotations": [annotation(a) for a in m.annotations],
                "createdAt": iso(m.created_at),
            }
            for i, m in enumerate(thread.messages)
        ]
    return out


# --- OpenAPI -------------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_TIME = {"type": "string", "format": "date-time"}
_THREAD_PARAM = {"name": "threadId", "in": "path", "required": True, "schema": {"type": "string"}}

SCHEMAS: dict[str, Any] = {
    "ChatMessage": {
        "type": "object",
        "required": ["role"],
        "description": "`content` (a string or parts), or `parts` (AI SDK v5 UIMessage).",
        "properties": {
            "role": {"enum": ["user", "assistant", "system"]},
            "content": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": _ref("ChatPart")},
                ]
            },
            "parts": {"type": "array", "items": _ref("ChatPart")},
            "annotations": {"type": "array", "description": "Ignored."},
            "experimental_attachments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["url"],
                    "properties": {
                        "url": {"type": "string"},
                        "contentType": {"type": "string"},
                        "name": {"type": "string"},
                    },
                },
            },
        },
    },
    "ChatPart": {
        "type": "object",
        "required": ["type"],
        "description": "text, image, image_url or file; other part types are ignored.",
        "properties": {
            "type": {"type": "string"},
            "text": {"type": "string"},
            "image": {"type": "string", "description": "A URL, a data URL or base64."},
            "data": {"type": "string"},
            "url": {"type": "string"},
            "mimeType": {"type": "string"},
            "mediaType": {"type": "string"},
        },
    },
    "ChatIn": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "messages": {"type": "array", "items": _ref("ChatMessage")},
            "threadId": {"type": "string", "minLength": 1, "maxLength": 255},
            "containerTags": {"type": "array", "items": {"type": "string"}},
            "trigger": {
                "type": "string",
                "description": "Sent by AI SDK v5 clients; it selects the UI message stream.",
            },
        },
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
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
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
