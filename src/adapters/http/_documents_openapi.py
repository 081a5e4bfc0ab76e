"""The OpenAPI description of /v3/documents and /v3/search (served in /openapi.json)."""

from __future__ import annotations

from typing import Any

from memoryd.adapters.http import _documents_schema as ds
from memoryd.adapters.http import _schema as s
from memoryd.adapters.http.openapi import (
    NOT_BOTH_TAG_SPELLINGS,
    ONE_TAG,
    SCALAR,
    TAG,
    TAGS,
    TIME,
    error_responses,
    nullable,
    string,
)
from memoryd.adapters.http.openapi import SCHEMAS as _V4_SCHEMAS

SEARCH_IN: dict[str, Any] = _V4_SCHEMAS["SearchIn"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


METADATA = {
    "type": "object",
    "maxProperties": s.MAX_METADATA_KEYS,
    "propertyNames": string(1, s.MAX_METADATA_KEY_CHARS),
    "additionalProperties": SCALAR,
}
CONTENT = {
    **string(1, s.MAX_TEXT_CHARS, pattern=s.NOT_BLANK),
    "description": (
        "The text. A content that is one http(s) URL and nothing else is fetched, "
        "through the fetch guard, when the fetch_urls setting is on; else 422."
    ),
}
DATE = {
    "anyOf": [TIME, {"type": "string", "format": "date"}],
    "description": "When the content is from (YYYY-MM-DD or ISO 8601): its memories are said then.",
}
NO_FILEPATH = {"not": {}, "description": "Not supported (no supermemoryfs): 400."}
#: Both forms, exactly as on /v4/search.
FILTERS = SEARCH_IN["properties"]["filters"]
PAGE_SIZE = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": ds.MAX_PAGE_SIZE},
        {"type": "string", "pattern": ds.PAGE_SIZE_PATTERN},
    ],
    "default": 10,
}
PAGE = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": ds.MAX_PAGE},
        {"type": "string", "pattern": ds.PAGE_PATTERN},
    ],
    "default": 1,
}
CUSTOM_ID = {
    **nullable(string(1, s.MAX_ID_CHARS)),
    "description": "Your id for it: adding again with the same customId updates that document.",
}
_NULLABLE_STRING = {"type": ["string", "null"]}

_ADD_PROPERTIES = {
    "content": CONTENT,
    "containerTag": ONE_TAG,
    "containerTags": TAGS,
    "customId": CUSTOM_ID,
    "metadata": nullable(METADATA),
    "documentDate": nullable(DATE),
    "filepath": NO_FILEPATH,
}

_SUMMARY_PROPERTIES = {
    "id": {"type": "string"},
    "customId": _NULLABLE_STRING,
    "connectionId": {"type": "null"},
    "containerTags": {"type": "array", "items": {"type": "string"}},
    "metadata": {"type": "object"},
    "status": {"enum": ["queued", "done", "failed"]},
    "type": {"type": "string"},
    "title": _NULLABLE_STRING,
    "summary": _NULLABLE_STRING,
    "url": _NULLABLE_STRING,
    "content": _NULLABLE_STRING,
    "createdAt": TIME,
    "updatedAt": TIME,
}
_PAGINATION = {
    "type": "object",
    "required": ["currentPage", "totalItems", "totalPages"],
    "properties": {
        "currentPage": {"type": "integer"},
        "limit": {"type": "integer"},
        "totalItems": {"type": "integer"},
        "totalPages": {"type": "integer"},
    },
}

SCHEMAS: dict[str, Any] = {
    "DocumentAddIn": {
        "type": "object",
        "required": ["content"],
        "properties": _ADD_PROPERTIES,
        **NOT_BOTH_TAG_SPELLINGS,
    },
    "DocumentBatchIn": {
        "type": "object",
        "required": ["documents"],
        "properties": {
            "documents": {
                "type": "array",
                "minItems": 1,
                "maxItems": ds.MAX_BATCH,
                "items": {"anyOf": [CONTENT, _ref("DocumentAddIn")]},
            },
            "containerTag": ONE_TAG,
            "containerTags": TAGS,
            "metadata": nullable(METADATA),
            "documentDate": nullable(DATE),
            "filepath": NO_FILEPATH,
        },
        **NOT_BOTH_TAG_SPELLINGS,
    },
    "DocumentPatchIn": {
        "type": "object",
        "properties": {**_ADD_PROPERTIES, "content": nullable(CONTENT)},
        **NOT_BOTH_TAG_SPELLINGS,
    },
    "DocumentListIn": {
        "type": "object",
        "properties": {
            "containerTags": TAGS,
            "containerTag": ONE_TAG,
            "filters": FILTERS,
            "includeContent": {"type": "boolean", "default": False},
            "limit": PAGE_SIZE,
            "page": PAGE,
            "order": {"enum": ["asc", "desc"], "default": "desc"},
            "sort": {"enum": ["createdAt", "updatedAt"], "default": "createdAt"},
            "filepath": NO_FILEPATH,
        },
        **NOT_BOTH_TAG_SPELLINGS,
    },
    "DocumentBulkDeleteIn": {
        "type": "object",
        "properties": {
            "ids": {
                "type": "array",
                "maxItems": ds.MAX_BULK_IDS,
                "items": string(1, s.MAX_ID_CHARS),
            },
            "containerTags": {
                **TAGS,
                "description": "Every document under any of these tags is deleted.",
            },
            "filepath": NO_FILEPATH,
        },
        "anyOf": [
            {"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
            {"required": ["containerTags"], "properties": {"containerTags": {"minItems": 1}}},
        ],
    },
    "DocumentSearchIn": {
        "type": "object",
        "required": ["q"],
        "properties": {
            "q": string(1, s.MAX_QUERY_CHARS, pattern=s.NOT_BLANK),
            "containerTags": TAGS,
            "containerTag": ONE_TAG,
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": s.MAX_LIMIT,
                "default": 10,
                "description": "How many documents.",
            },
            "chunkThreshold": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0,
                "description": "A chunk (memory) matches if its similarity is at least this.",
            },
            "documentThreshold": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0,
                "description": "Documents whose best chunk is less similar than this are left out.",
            },
            "docId": {**nullable(string(1, s.MAX_ID_CHARS)), "description": "Only this document."},
            "filters": FILTERS,
            "includeFullDocs": {"type": "boolean", "default": False},
            "includeSummary": {"type": "boolean", "default": False},
            "onlyMatchingChunks": {"type": "boolean", "default": False},
            "rerank": {"type": "boolean", "default": False},
            "rewriteQuery": {
                "type": "boolean",
                "default": False,
                "description": "Accepted; without a model the query is searched as sent.",
            },
            "filepath": NO_FILEPATH,
        },
        **NOT_BOTH_TAG_SPELLINGS,
    },
    "DocumentAdded": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {"id": {"type": "string"}, "status": {"type": "string"}},
    },
    "DocumentSummary": {"type": "object", "properties": _SUMMARY_PROPERTIES},
    "Document": {
        "type": "object",
        "properties": {
            **_SUMMARY_PROPERTIES,
            "memories": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "memory": {"type": "string"},
                        "createdAt": TIME,
                        "updatedAt": TIME,
                        "metadata": {"type": "object"},
                    },
                },
            },
        },
    },
    "DocumentSearchResult": {
        "type": "object",
        "properties": {
            "documentId": {"type": "string"},
            "customId": _NULLABLE_STRING,
            "title": _NULLABLE_STRING,
            "type": {"type": "string"},
            "score": {"type": "number"},
            "metadata": {"type": "object"},
            "containerTags": {"type": "array", "items": {"type": "string"}},
            "createdAt": TIME,
            "updatedAt": TIME,
            "content": _NULLABLE_STRING,
            "summary": _NULLABLE_STRING,
            "chunks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["content", "position", "score", "isRelevant"],
                    "properties": {
                        "content": {"type": "string"},
                        "position": {"type": "integer"},
                        "score": {"type": "number"},
                        "isRelevant": {"type": "boolean"},
                    },
                },
            },
        },
    },
}


def _DIGITS(pattern: str) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern}


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The document's id, or its customId.",
    "schema": string(1, s.MAX_ID_CHARS),
}
_ADDED = {"200": {"description": "Stored and searchable", **_json(_ref("DocumentAdded"))}}
_WRITE_ERRORS = error_responses(400, 401, 402, 403, 413, 500, 503)
_NOT_FETCHED = {
    "422": {
        "description": "The content is a URL that was not fetched (fetch_urls off, or refused)",
        **_json(_ref("Error")),
    }
}

PATHS: dict[str, Any] = {
    "/v3/documents": {
        "post": {
            "summary": "Add a document (or update the one of its customId)",
            "requestBody": {"required": True, **_json(_ref("DocumentAddIn"))},
            "responses": {**_ADDED, **_WRITE_ERRORS, **_NOT_FETCHED},
        }
    },
    "/v3/documents/batch": {
        "post": {
            "summary": "Add several documents; each result says done or error",
            "requestBody": {"required": True, **_json(_ref("DocumentBatchIn"))},
            "responses": {
                "200": {
                    "description": "One result per document, in order",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "results": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "id": {"type": "string"},
                                            "status": {"enum": ["done", "error"]},
                                            "error": {"type": "string"},
                                            "details": _NULLABLE_STRING,
                                            "url": {"type": "string"},
                                        },
                                    },
                                },
                                "success": {"type": "integer"},
                                "failed": {"type": "integer"},
                            },
                        }
                    ),
                },
                **error_responses(400, 401, 413, 500, 503),
            },
        }
    },
    "/v3/documents/file": {
        "post": {
            "summary": "Upload a file: its text comes from the part handlers (PDF, DOCX, CSV ...)",
            "description": (
                "Also takes the form fields containerTags (a JSON array, or one tag), "
                "metadata (a JSON object) and customId."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "containerTag": TAG,
                                "customId": string(1, s.MAX_ID_CHARS),
                                "mimeType": string(1, s.MAX_MIME_CHARS, pattern="/"),
                            },
                        }
                    }
                },
            },
            "responses": {**_ADDED, **_WRITE_ERRORS},
        }
    },
    "/v3/documents/list": {
        "post": {
            "summary": "A page of documents, filtered and sorted",
            "requestBody": {"required": False, **_json(_ref("DocumentListIn"))},
            "responses": {
                "200": {
                    "description": "The page",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "memories": {"type": "array", "items": _ref("DocumentSummary")},
                                "pagination": _PAGINATION,
                            },
                        }
                    ),
                },
                **error_responses(400, 401, 403, 413),
            },
        }
    },
    "/v3/documents/bulk": {
        "delete": {
            "summary": "Delete documents by id, or every document under some tags",
            "requestBody": {"required": True, **_json(_ref("DocumentBulkDeleteIn"))},
            "responses": {
                "200": {
                    "description": "What was deleted",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "success": {"type": "boolean"},
                                "deletedCount": {"type": "integer"},
                                "containerTags": {"type": "array", "items": {"type": "string"}},
                                "errors": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "id": {"type": "string"},
                                            "error": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        }
                    ),
                },
                **error_responses(400, 401, 403, 413),
            },
        }
    },
    "/v3/documents/processing": {
        "get": {
            "summary": "Documents being processed: those queued (queued_ingest), oldest first",
            "parameters": [
                {"name": "view", "in": "query", "schema": {"enum": ["active", "pending", "all"]}},
                {"name": "containerTags", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "string", "pattern": ds.PAGE_SIZE_PATTERN},
                },
                {
                    "name": "page",
                    "in": "query",
                    "schema": {"type": "string", "pattern": ds.PAGE_PATTERN},
                },
            ],
            "responses": {
                "200": {
                    "description": "The queued documents (none with queued_ingest off)",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "documents": {"type": "array", "items": _ref("DocumentSummary")},
                                "totalCount": {"type": "integer"},
                                "pagination": _PAGINATION,
                            },
                        }
                    ),
                },
                **error_responses(400, 401),
            },
        }
    },
    "/v3/documents/{id}": {
        "get": {
            "summary": "A document with its memories",
            "parameters": [_ID],
            "responses": {
                "200": {"description": "Found", **_json(_ref("Document"))},
                **error_responses(401, 404),
            },
        },
        "patch": {
            "summary": "Change a document's content, tags or metadata",
            "parameters": [_ID],
            "requestBody": {"required": True, **_json(_ref("DocumentPatchIn"))},
            "responses": {**_ADDED, **_WRITE_ERRORS, **error_responses(404), **_NOT_FETCHED},
        },
        "delete": {
            "summary": "Forget a document: its messages, memories and vectors",
            "parameters": [_ID],
            "responses": {"204": {"description": "Deleted"}, **error_responses(401, 403, 404)},
        },
    },
    "/v3/search": {
        "post": {
            "summary": "Search documents: each with its matching chunks (memories)",
            "requestBody": {"required": True, **_json(_ref("DocumentSearchIn"))},
            "responses": {
                "200": {
                    "description": "Matching documents, best first",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "results": {
                                    "type": "array",
                                    "items": _ref("DocumentSearchResult"),
                                },
                                "total": {"type": "integer"},
                                "timing": {"type": "number", "description": "milliseconds"},
                            },
                        }
                    ),
                },
                **error_responses(400, 401, 403, 404, 413),
            },
        }
    },
}
