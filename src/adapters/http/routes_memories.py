"""POST /v4/profile, PATCH and DELETE /v4/memories, GET /v3/settings (the SDKs' shapes)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from memoryd.adapters.http import _views
from memoryd.adapters.http import openapi as api
from memoryd.adapters.http._converter import iso, structure
from memoryd.adapters.http._errors import read_json
from memoryd.adapters.http._keys import CONFIG, caller, services
from memoryd.adapters.http._memories_schema import (
    MAX_REASON_CHARS,
    MEMORIES_CONVERTER,
    PROFILE_SECTIONS,
    ForgetIn,
    ProfileIn,
    UpdateIn,
    forget_to_core,
    profile_to_core,
    update_to_core,
)
from memoryd.adapters.http._schema import MAX_ID_CHARS, MAX_QUERY_CHARS, MAX_TEXT_CHARS, NOT_BLANK
from memoryd.core.memory_edits import MemoryEditService
from memoryd.core.profile import Profile, ProfileEntry, ProfileService
from memoryd.core.profile_condense import condense

routes = web.RouteTableDef()


def edit_service(request: web.Request) -> MemoryEditService:
    """The memory editor over the app's services (their store, embedder, indexer, clock)."""
    found = services(request)
    return MemoryEditService(
        store=found.store,
        embedder=found.search.embedder,
        tokens=found.ingest.tokens,
        clock=found.ingest.clock,
        threads=found.conversations.threads,
        indexer=found.conversations.indexer,
        policy=found.ingest.policy,
    )


def _entries(entries: tuple[ProfileEntry, ...]) -> list[str]:
    return [e.memory.text for e in entries]


async def _sections(
    request: web.Request, profile: Profile, sections: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``profile``'s sections as written, and with ``profile_llm`` what the model cited."""
    chat = services(request).chat
    if not request.app[CONFIG].profile_llm or chat is None:
        return {s: _entries(getattr(profile, s)) for s in sections}, None
    made: dict[str, Any] = {}
    cited: dict[str, Any] = {}
    for section in sections:
        result = await condense(chat.model, getattr(profile, section))
        made[section] = [f.text for f in result.facts]
        cited[section] = {
            "condensed": result.condensed,
            "memoryIds": [list(f.memory_ids) for f in result.facts],
        }
    return made, cited


@routes.post("/v4/profile")
async def profile(request: web.Request) -> web.Response:
    started = time.perf_counter()
    body = structure(MEMORIES_CONVERTER, await read_json(request), ProfileIn)
    found = services(request)
    result = await ProfileService(store=found.store, search=found.search).profile(
        caller(request), profile_to_core(body)
    )
    wanted = [s for s in ("static", "dynamic") if s in body.include]
    made, cited = await _sections(request, result.profile, wanted)
    if "buckets" in body.include:
        made["buckets"] = {}
    out: dict[str, Any] = {"profile": made}
    if cited is not None:
        out["condensed"] = cited
    if result.search_results is not None:
        out["searchResults"] = {
            "results": [_views.search_result(r) for r in result.search_results],
            "total": len(result.search_results),
            "timing": round((time.perf_counter() - started) * 1000, 3),
        }
    return web.json_response(out)


@routes.patch("/v4/memories")
async def update_memory(request: web.Request) -> web.Response:
    body = structure(MEMORIES_CONVERTER, await read_json(request), UpdateIn)
    memory = await edit_service(request).update(caller(request), update_to_core(body))
    return web.json_response(
        {
            "id": memory.id,
            "memory": memory.text,
            "createdAt": iso(memory.updated_at),
            "metadata": dict(memory.metadata) or None,
            "version": 1,
            "parentMemoryId": None,
            "rootMemoryId": None,
            "forgetAfter": None,
            "forgetReason": None,
        }
    )


@routes.delete("/v4/memories")
async def forget_memory(request: web.Request) -> web.Response:
    body = structure(MEMORIES_CONVERTER, await read_json(request), ForgetIn)
    removed = await edit_service(request).forget(caller(request), forget_to_core(body))
    return web.json_response({"id": removed[0], "forgotten": True, "forgottenIds": list(removed)})


@routes.get("/v3/settings")
async def get_settings(request: web.Request) -> web.Response:
    caller(request)  # a key is needed, as on every route
    return web.json_response(
        {
            "shouldLLMFilter": False,
            "filterPrompt": None,
            "includeItems": None,
            "excludeItems": None,
            "chunkSize": None,
            "profileBuckets": [],
        }
    )


# --- /openapi.json -------------------------------------------------------------------------------

_MEMORY_TEXT = api.string(1, MAX_TEXT_CHARS, pattern=NOT_BLANK)
_ID = api.string(1, MAX_ID_CHARS)
_FILTERS = api.SCHEMAS["SearchIn"]["properties"]["filters"]
_ID_OR_CONTENT = {
    "oneOf": [
        {"required": ["id"], "not": {"required": ["content"]}},
        {"required": ["content"], "not": {"required": ["id"]}},
    ]
}

SCHEMAS: dict[str, Any] = {
    "ProfileIn": {
        "type": "object",
        "required": ["containerTag"],
        "properties": {
            "containerTag": api.TAG,
            "q": {
                **api.nullable(api.string(1, MAX_QUERY_CHARS, pattern=NOT_BLANK)),
                "description": "A search whose results come back as searchResults.",
            },
            "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
            "filters": _FILTERS,
            "include": {
                "type": "array",
                "items": {"enum": list(PROFILE_SECTIONS)},
                "description": "The sections to return (default static and dynamic); "
                "buckets is always {} (memoryd has no bucket classifier).",
            },
            "buckets": {
                **api.nullable({"type": "array", "items": {"type": "string"}}),
                "description": "Ignored: memoryd has no buckets.",
            },
        },
    },
    "Profile": {
        "type": "object",
        "required": ["profile"],
        "properties": {
            "profile": {
                "type": "object",
                "properties": {
                    "static": {"type": "array", "items": {"type": "string"}},
                    "dynamic": {"type": "array", "items": {"type": "string"}},
                    "buckets": {"type": "object"},
                },
            },
            "condensed": {
                "type": "object",
                "description": "With the profile_llm setting: per section, whether the model "
                "condensed it and the memory ids each entry cites.",
            },
            "searchResults": {
                "type": "object",
                "properties": {
                    "results": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/SearchResult"},
                    },
                    "total": {"type": "integer"},
                    "timing": {"type": "number"},
                },
            },
        },
    },
    "MemoryUpdateIn": {
        "type": "object",
        "required": ["containerTag", "newContent"],
        "properties": {
            "containerTag": api.TAG,
            "newContent": _MEMORY_TEXT,
            "id": _ID,
            "content": {**_MEMORY_TEXT, "description": "The memory's exact text (instead of id)."},
            "metadata": {
                **api.SCHEMAS["ConversationIn"]["properties"]["metadata"],
                "description": "Replaces the memory's metadata (omit: it keeps its own).",
            },
            "forgetAfter": {"type": "null", "description": "Only null: no scheduled forgetting."},
            "forgetReason": api.nullable({"type": "string"}),
            "temporalContext": {"type": "null", "description": "Not supported."},
        },
        **_ID_OR_CONTENT,
    },
    "MemoryForgetIn": {
        "type": "object",
        "required": ["containerTag"],
        "properties": {
            "containerTag": api.TAG,
            "id": _ID,
            "content": {**_MEMORY_TEXT, "description": "Forget every memory of exactly this text."},
            "reason": api.nullable(api.string(hi=MAX_REASON_CHARS)),
        },
        **_ID_OR_CONTENT,
    },
}


def _body(name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
    }


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


PATHS: dict[str, Any] = {
    "/v4/profile": {
        "post": {
            "summary": "A container tag's profile: lasting (static) and recent (dynamic) memories",
            "requestBody": _body("ProfileIn"),
            "responses": {
                "200": _answer("The profile", {"$ref": "#/components/schemas/Profile"}),
                **api.error_responses(400, 401, 403, 413, 500),
            },
        }
    },
    "/v4/memories": {
        "patch": {
            "summary": "Replace a memory's text (re-embedded) and optionally its metadata",
            "requestBody": _body("MemoryUpdateIn"),
            "responses": {
                "200": _answer(
                    "The memory as now stored (same id)",
                    {
                        "type": "object",
                        "required": ["id", "memory", "createdAt", "version"],
                        "properties": {
                            "id": {"type": "string"},
                            "memory": {"type": "string"},
                            "createdAt": {"type": "string", "format": "date-time"},
                            "version": {"type": "number"},
                        },
                    },
                ),
                **api.error_responses(400, 401, 402, 403, 404, 413, 500),
            },
        },
        "delete": {
            "summary": "Forget a memory by id, or every memory of exactly that content",
            "requestBody": _body("MemoryForgetIn"),
            "responses": {
                "200": _answer(
                    "Forgotten",
                    {
                        "type": "object",
                        "required": ["id", "forgotten"],
                        "properties": {
                            "id": {"type": "string"},
                            "forgotten": {"type": "boolean"},
                            "forgottenIds": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                **api.error_responses(400, 401, 403, 404, 413, 500),
            },
        },
    },
    "/v3/settings": {
        "get": {
            "summary": "The organisation settings hosted supermemory keeps (memoryd: none)",
            "responses": {
                "200": _answer(
                    "Defaults: memoryd is configured by its settings file", {"type": "object"}
                ),
                **api.error_responses(401),
            },
        }
    },
}
