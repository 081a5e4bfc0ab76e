"""GET /openapi.json: the OpenAPI 3.1 description of every route.

Each routes module contributes its paths (``PATHS`` below for the memory and
health routes); a test checks the document against the app's real routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from memoryd.adapters.http import _filters_schema as fs
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


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` or ``null`` (the converter reads a ``null`` optional field as absent)."""
    return {"anyOf": [dict(schema), {"type": "null"}]}


def string(lo: int = 0, hi: int | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", **more}
    if lo:
        out["minLength"] = lo
    if hi is not None:
        out["maxLength"] = hi
    return out


#: One container tag: 1 to 255 characters, not only whitespace (it is stored stripped).
TAG = string(1, s.MAX_TAG_CHARS, pattern=s.NOT_BLANK)
TAGS = {"type": "array", "maxItems": s.MAX_TAGS, "items": TAG}
#: ``containerTag``: one tag, as the supermemory SDKs send it.
ONE_TAG = {
    **TAG,
    "description": "One tag, the same as containerTags: [tag]. Not together with containerTags.",
}
#: The body may not have both ``containerTag`` and ``containerTags`` (400 naming both).
NOT_BOTH_TAG_SPELLINGS = {"not": {"required": ["containerTag", "containerTags"]}}
#: A metadata number: within ±2**53 (beyond, integers are not exact in JSON clients).
NUMBER = {"type": "number", "minimum": -fs.MAX_NUMBER, "maximum": fs.MAX_NUMBER}
SCALAR = {
    "anyOf": [
        string(hi=s.MAX_METADATA_VALUE_CHARS),
        NUMBER,
        {"type": "boolean"},
    ]
}
TIME = {"type": "string", "format": "date-time"}
_URL_OBJECT = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {
            "description": (
                f"An absolute URI (https://..., at most {s.MAX_URL_CHARS} characters), or a "
                f"data: URI of the image itself (at most {s.MAX_DATA_CHARS} characters; its "
                "text is read by the part handlers, docs/api.md#file-and-image-parts)."
            ),
            "anyOf": [
                string(1, s.MAX_URL_CHARS, pattern=s.URL_PATTERN),
                # As the edge checks it: a scheme, a colon and then not whitespace.
                string(1, s.MAX_DATA_CHARS, pattern="^[dD][aA][tT][aA]:" + s.NOT_BLANK),
            ],
        }
    },
}
_NUMBER_OPS = dict.fromkeys(("gt", "gte", "lt", "lte"), NUMBER)
_COMPARISON = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "eq": SCALAR,
        "ne": SCALAR,
        **_NUMBER_OPS,
        "in": {"type": "array", "items": SCALAR},
    },
}
_FLAG = {"anyOf": [{"type": "boolean"}, {"enum": ["true", "false"]}]}


def _when(kind: str) -> dict[str, Any]:
    """The condition's filterType is ``kind``."""
    return {"required": ["filterType"], "properties": {"filterType": {"const": kind}}}


def _unless(kind: str, then: Mapping[str, Any]) -> dict[str, Any]:
    """``then`` holds, or the filterType is not ``kind``."""
    return {"anyOf": [{"properties": {"filterType": {"not": {"const": kind}}}}, dict(then)]}


_FILTER_CONDITION = {
    "type": "object",
    "description": (
        "metadata (default) and array_contains: equality (a string also equals the number and "
        "the boolean it spells); numeric: numericOperator (default =) on the number; "
        "string_contains: the value is in a string value (ignoreCase: ignoring case); "
        "negate: the condition does not hold."
    ),
    "required": ["key", "value"],
    "additionalProperties": False,
    "properties": {
        "key": string(1, fs.MAX_METADATA_KEY_CHARS),
        "value": SCALAR,
        "filterType": {"enum": list(fs.FILTER_TYPES), "default": "metadata"},
        "numericOperator": {"enum": list(fs.NUMERIC_OPERATORS), "default": "="},
        "negate": _FLAG,
        "ignoreCase": _FLAG,
    },
    "allOf": [
        _unless(
            "numeric",
            {"properties": {"value": {"anyOf": [NUMBER, string(pattern=fs.NUMBER_PATTERN)]}}},
        ),
        _unless(
            "string_contains",
            {"properties": {"value": string(hi=fs.MAX_CONTAINS_CHARS)}},
        ),
        {"anyOf": [{"not": {"required": ["numericOperator"]}}, _when("numeric")]},
        {
            "anyOf": [
                {"properties": {"ignoreCase": {"enum": [False, "false"]}}},
                _when("string_contains"),
            ]
        },
    ],
}


def _expression(level: int) -> str:
    """The name of the schema of an expression of at most ``level`` levels (the top: 8)."""
    return "FilterExpression" if level == fs.MAX_FILTER_DEPTH else f"FilterExpression{level}"


def _nested(op: str, level: int = fs.MAX_FILTER_DEPTH) -> dict[str, Any]:
    # One schema per level, so that the schema itself bounds the depth (a recursive one
    # would call a too-deep filter valid).
    inner = [_ref("FilterCondition")]
    if level > 1:
        inner.append(_ref(_expression(level - 1)))
    return {
        "type": "object",
        "required": [op],
        "additionalProperties": False,
        "properties": {
            op: {
                "type": "array",
                "maxItems": fs.MAX_FILTER_CONDITIONS,
                "items": {"anyOf": inner},
            }
        },
    }


_TEXT_PART = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": string(hi=s.MAX_TEXT_CHARS)},
}
_IMAGE_PART = {
    "type": "object",
    "required": ["type"],
    "description": "The image URL as imageUrl.url or image_url.url (either).",
    "properties": {
        "type": {"const": "image_url"},
        "imageUrl": nullable(_URL_OBJECT),
        "image_url": nullable(_URL_OBJECT),
    },
    "anyOf": [
        {"required": ["imageUrl"], "properties": {"imageUrl": _URL_OBJECT}},
        {"required": ["image_url"], "properties": {"image_url": _URL_OBJECT}},
    ],
}

_DATA = string(
    1,
    s.MAX_DATA_CHARS,
    description="The file's bytes: base64, or a data: URI (data:application/pdf;base64,...).",
)
_FILE_OBJECT = {
    "type": "object",
    "required": ["file_data"],
    "properties": {
        "file_data": _DATA,
        "filename": nullable(string(hi=s.MAX_NAME_CHARS)),
    },
}
_FILE_PART = {
    "type": "object",
    "required": ["type"],
    "description": (
        "An extension of memoryd's: a file sent inline, in OpenAI's chat shape "
        "(file.file_data, file.filename) or the chat spec's (data, mimeType). Its text "
        "(PDF, DOCX, HTML, CSV, JSON, Markdown, plain text; an image's OCR) joins the "
        "message's memories, prefixed [part N, file NAME]; a part that cannot be read is "
        "skipped and logged (docs/api.md#file-and-image-parts)."
    ),
    "properties": {
        "type": {"const": "file"},
        "file": nullable(_FILE_OBJECT),
        "data": nullable(_DATA),
        "mimeType": nullable(string(1, s.MAX_MIME_CHARS, pattern="/")),
        "filename": nullable(string(hi=s.MAX_NAME_CHARS)),
    },
    "anyOf": [
        {"required": ["file"], "properties": {"file": _FILE_OBJECT}},
        {"required": ["data"], "properties": {"data": _DATA}},
    ],
}

SCHEMAS: dict[str, Any] = {
    "FilterCondition": _FILTER_CONDITION,
    "FilterExpression": {
        "description": (
            f"supermemory's nested filters: AND (all hold; [] matches everything) or OR (one "
            f"holds; [] matches nothing) of conditions and expressions, at most "
            f"{fs.MAX_FILTER_DEPTH} levels and {fs.MAX_FILTER_CONDITIONS} conditions in all."
        ),
        "oneOf": [_nested("AND"), _nested("OR")],
    },
    **{
        _expression(level): {"oneOf": [_nested("AND", level), _nested("OR", level)]}
        for level in range(1, fs.MAX_FILTER_DEPTH)
    },
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
    "ContentPart": {"oneOf": [_TEXT_PART, _IMAGE_PART, _FILE_PART]},
    "Message": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"enum": ["user", "assistant", "system", "tool"]},
            "content": {
                "anyOf": [
                    string(hi=s.MAX_TEXT_CHARS),
                    {"type": "array", "items": _ref("ContentPart")},
                ]
            },
            "name": nullable(string(hi=s.MAX_NAME_CHARS)),
            "tool_calls": nullable({"type": "array", "items": {}}),
            "tool_call_id": nullable(string(hi=s.MAX_ID_CHARS)),
            "timestamp": {
                **nullable(TIME),
                "description": "When it was said (default, or null: when received).",
            },
        },
    },
    "ConversationIn": {
        "type": "object",
        "required": ["conversationId", "messages"],
        "properties": {
            "conversationId": string(1, s.MAX_ID_CHARS),
            "messages": {
                "type": "array",
                "minItems": 1,
                "maxItems": s.MAX_MESSAGES,
                "items": _ref("Message"),
            },
            "containerTags": TAGS,
            "containerTag": ONE_TAG,
            "metadata": {
                "type": "object",
                "maxProperties": s.MAX_METADATA_KEYS,
                "propertyNames": string(1, s.MAX_METADATA_KEY_CHARS),
                "additionalProperties": SCALAR,
            },
        },
        **NOT_BOTH_TAG_SPELLINGS,
    },
    "IngestResult": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "conversationId": {"type": "string"},
            "status": {
                "enum": ["queued", "done"],
                "description": "queued: the memories are built in the background (queued_ingest)",
            },
            "action": {"enum": ["created", "unchanged", "appended", "replaced"]},
            "messagesAdded": {"type": "integer"},
            "memoriesAdded": {"type": "integer"},
            "memoriesRemoved": {"type": "integer"},
            "parts": {
                "description": (
                    "memoryd's extension, present when the new messages hold image or file "
                    "parts: what became of each (read, or why not: which limit or setting)"
                ),
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["message", "part", "type", "status"],
                    "properties": {
                        "message": {"type": "integer", "description": "index in messages"},
                        "part": {"type": "integer", "description": "index in its content"},
                        "type": {"type": "string"},
                        "status": {"enum": ["read", "skipped", "failed", "unsupported", "refused"]},
                        "filename": {"type": "string"},
                        "plugin": {"type": "string"},
                        "reason": {"type": "string"},
                        "characters": {"type": "integer"},
                    },
                },
            },
        },
    },
    "Conversation": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "conversationId": {"type": "string"},
            "containerTags": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object"},
            "createdAt": TIME,
            "updatedAt": TIME,
            "status": {"enum": ["queued", "done"]},
            "messages": {"type": "array", "items": _ref("Message")},
        },
    },
    "SearchIn": {
        "type": "object",
        "required": ["q"],
        "properties": {
            "q": string(1, s.MAX_QUERY_CHARS, pattern=s.NOT_BLANK),
            "containerTags": TAGS,
            "containerTag": ONE_TAG,
            "limit": {"type": "integer", "minimum": 1, "maximum": s.MAX_LIMIT, "default": 10},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
            "filters": {
                "anyOf": [
                    {
                        "type": "object",
                        "maxProperties": s.MAX_FILTERS,
                        "description": (
                            'Metadata conditions, all of which must hold: {"key": value} for '
                            'equality, {"key": {"gt"|"gte"|"lt"|"lte": number, "ne": value, '
                            '"in": [values], "eq": value}} for comparisons. An array is not a '
                            'value: use {"in": [...]}.'
                        ),
                        "additionalProperties": {"anyOf": [SCALAR, _COMPARISON]},
                    },
                    _ref("FilterExpression"),
                ]
            },
            "after": {**nullable(TIME), "description": "Only memories said at or after this time."},
            "before": {**nullable(TIME), "description": "Only memories said before this time."},
            "rerank": {
                "type": "boolean",
                "default": False,
                "description": (
                    "Run the server's rerankers (its `rerankers` setting, in order) over the "
                    "candidates above the threshold, before they are cut to `limit`."
                ),
            },
            "searchMode": {
                "enum": ["memories", "hybrid", "documents"],
                "default": "memories",
                "description": (
                    "memories and hybrid return memory results (every chunk is a memory); "
                    "documents returns the same hits as chunk results (chunk, documentId)."
                ),
            },
            "include": {
                "type": "object",
                "properties": {
                    name: {"type": "boolean", "default": False}
                    for name in (
                        "documents",
                        "summaries",
                        "relatedMemories",
                        "forgottenMemories",
                        "chunks",
                    )
                },
                "description": "What each result carries besides the memory (docs/api.md).",
            },
            "rewriteQuery": {"type": "boolean", "description": "Accepted; a no-op."},
            "aggregate": {"type": "boolean", "description": "Accepted; a no-op."},
        },
        **NOT_BOTH_TAG_SPELLINGS,
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
            "timestamp": TIME,
            "createdAt": TIME,
            "updatedAt": TIME,
            "chunk": {"type": "string", "description": "searchMode documents: the text"},
            "documentId": nullable({"type": "string"}),
            "chunks": {"type": "array", "items": {"type": "object"}},
            "documents": {"type": "array", "items": {"type": "object"}},
            "context": {"type": "object"},
        },
    },
}

_ID_PARAM = {
    "name": "conversationId",
    "in": "path",
    "required": True,
    "schema": string(1, s.MAX_ID_CHARS),
}

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
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (who may read them: the metrics setting)",
            "security": [{}, {"bearerAuth": []}],
            "responses": {
                "200": {
                    "description": "The Prometheus text exposition",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **error_responses(401, 403, 404),
            },
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
                                "reranked": {
                                    "type": "boolean",
                                    "description": "Whether rerankers ran (rerank and the "
                                    "rerankers setting)",
                                },
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
