"""GET /openapi.json: the OpenAPI 3.1 description of every route.

Each routes module contributes its paths (``PATHS`` below for the memory and
health routes); a test checks the document against the app's real routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from memoryd.adapters.http import _schema as s
from memoryd.adapters.http._keys import CONFIG

OPENAPI_PATHS = web.AppKey("memoryd.openapi_paths", dict[str, Any])
OPENAPI_SCHEMAS = web.AppKey("memoryd.openapi_schemas", dict[str, Any])

routes = web.RouteTableDef()


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def error_responses(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid request: `details` lists each bad field with its path",
        401: "Missing, unknown or revoked API key",
        402: "The write would pass the key's token quota; nothing was stored",
        403: "The key may not use these container tags",
        404: "Not found (also what another tenant's data looks like)",
        413: "Request body over the limit (setting max_body_bytes)",
        500: "An unexpected error occurred",
        503: "The store cannot be reached",
    }
    return {str(c): {"description": text[c], **_json(_ref("Error"))} for c in codes}


_TAGS = {
    "type": "array",
    "maxItems": s.MAX_TAGS,
    "items": {"type": "string", "minLength": 1, "maxLength": s.MAX_TAG_CHARS},
}
_SCALAR = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
_TIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "details": {
                "description": "For 400: a list of {path, message}; otherwise context.",
            },
        },
    },
    "ContentPart": {
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "text"],
                "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
            },
            {
                "type": "object",
                "required": ["type"],
                "description": "The image URL as imageUrl.url or image_url.url (either).",
                "properties": {
                    "type": {"const": "image_url"},
                    "imageUrl": {"type": "object", "properties": {"url": {"type": "string"}}},
                    "image_url": {"type": "object", "properties": {"url": {"type": "string"}}},
                },
            },
        ]
    },
    "Message": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"enum": ["user", "assistant", "system", "tool"]},
            "content": {
                "anyOf": [
                    {"type": "string", "maxLength": s.MAX_TEXT_CHARS},
                    {"type": "array", "items": _ref("ContentPart")},
                ]
            },
            "name": {"type": "string", "maxLength": s.MAX_NAME_CHARS},
            "tool_calls": {"type": "array", "items": {}},
            "tool_call_id": {"type": "string"},
            "timestamp": {**_TIME, "description": "When it was said (default: when received)."},
        },
    },
    "ConversationIn": {
        "type": "object",
        "required": ["conversationId", "messages"],
        "properties": {
            "conversationId": {"type": "string", "minLength": 1, "maxLength": s.MAX_ID_CHARS},
            "messages": {
                "type": "array",
                "minItems": 1,
                "maxItems": s.MAX_MESSAGES,
                "items": _ref("Message"),
            },
            "containerTags": _TAGS,
            "metadata": {
                "type": "object",
                "maxProperties": s.MAX_METADATA_KEYS,
                "additionalProperties": _SCALAR,
            },
        },
    },
    "IngestResult": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "conversationId": {"type": "string"},
            "status": {"const": "done"},
            "action": {"enum": ["created", "unchanged", "appended", "replaced"]},
            "messagesAdded": {"type": "integer"},
            "memoriesAdded": {"type": "integer"},
            "memoriesRemoved": {"type": "integer"},
        },
    },
    "Conversation": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "conversationId": {"type": "string"},
            "containerTags": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object"},
            "createdAt": _TIME,
            "updatedAt": _TIME,
            "messages": {"type": "array", "items": _ref("Message")},
        },
    },
    "SearchIn": {
        "type": "object",
        "required": ["q"],
        "properties": {
            "q": {"type": "string", "minLength": 1, "maxLength": s.MAX_QUERY_CHARS},
            "containerTags": _TAGS,
            "limit": {"type": "integer", "minimum": 1, "maximum": s.MAX_LIMIT, "default": 10},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
            "filters": {
                "type": "object",
                "description": (
                    'Metadata conditions, all of which must hold: {"key": value} for '
                    'equality, {"key": {"gt"|"gte"|"lt"|"lte": number, "ne": value, '
                    '"in": [values], "eq": value}} for comparisons.'
                ),
            },
            "after": {**_TIME, "description": "Only memories said at or after this time."},
            "before": {**_TIME, "description": "Only memories said before this time."},
        },
    },
    "SearchResult": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "memory": {"type": "string"},
            "similarity": {"type": "number"},
            "score": {"type": "number"},
            "conversationId": {"type": "string"},
            "positions": {"type": "array", "items": {"type": "integer"}},
            "containerTags": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object"},
            "timestamp": _TIME,
            "createdAt": _TIME,
            "updatedAt": _TIME,
        },
    },
}

_ID_PARAM = {"name": "conversationId", "in": "path", "required": True, "schema": {"type": "string"}}

PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "summary": "The process is up",
            "security": [],
            "responses": {"200": {"description": "OK"}},
        }
    },
    "/ready": {
        "get": {
            "summary": "The process and its store are up",
            "security": [],
            "responses": {"200": {"description": "Ready"}, **error_responses(503)},
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1"}},
        }
    },
    "/v4/conversations": {
        "post": {
            "summary": "Ingest or update a conversation",
            "requestBody": {"required": True, **_json(_ref("ConversationIn"))},
            "responses": {
                "200": {"description": "Stored durably", **_json(_ref("IngestResult"))},
                **error_responses(400, 401, 402, 403, 413, 500, 503),
            },
        }
    },
    "/v4/conversations/{conversationId}": {
        "get": {
            "summary": "The stored conversation",
            "parameters": [_ID_PARAM],
            "responses": {
                "200": {"description": "Found", **_json(_ref("Conversation"))},
                **error_responses(401, 404),
            },
        },
        "delete": {
            "summary": "Forget a conversation: its messages, memories and vectors",
            "parameters": [_ID_PARAM],
            "responses": {"200": {"description": "Deleted"}, **error_responses(401, 403, 404)},
        },
    },
    "/v4/search": {
        "post": {
            "summary": "Search memories, best first",
            "requestBody": {"required": True, **_json(_ref("SearchIn"))},
            "responses": {
                "200": {
                    "description": "Matching memories",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "results": {"type": "array", "items": _ref("SearchResult")},
                                "total": {"type": "integer"},
                                "timing": {"type": "number", "description": "milliseconds"},
                            },
                        }
                    ),
                },
                **error_responses(400, 401, 403, 413),
            },
        }
    },
}


def document(version: str, paths: Mapping[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "memoryd", "version": version},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(paths),
        "components": {
            "schemas": dict(schemas),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    paths: dict[str, Any] = request.app[OPENAPI_PATHS]
    schemas: dict[str, Any] = request.app[OPENAPI_SCHEMAS]
    return web.json_response(document(request.app[CONFIG].version, paths, schemas))
