"""POST /v4/conversations, GET and DELETE /v4/conversations/{id}, POST /v4/search."""

from __future__ import annotations

import time

from aiohttp import web

from memoryd.adapters.http import _views
from memoryd.adapters.http._converter import structure
from memoryd.adapters.http._errors import read_json
from memoryd.adapters.http._keys import caller, services
from memoryd.adapters.http._schema import (
    CONVERTER,
    ConversationIn,
    SearchIn,
    conversation_to_core,
    search_to_core,
)
from memoryd.adapters.http._search_options import search_results

routes = web.RouteTableDef()


@routes.post("/v4/conversations")
async def ingest_conversation(request: web.Request) -> web.Response:
    body = structure(CONVERTER, await read_json(request), ConversationIn)
    result = await services(request).ingest.ingest(caller(request), conversation_to_core(body))
    return web.json_response(_views.ingest_result(result))


@routes.get("/v4/conversations/{conversationId}")
async def get_conversation(request: web.Request) -> web.Response:
    found = await services(request).conversations.get(
        caller(request), request.match_info["conversationId"]
    )
    return web.json_response(_views.conversation(found))


@routes.delete("/v4/conversations/{conversationId}")
async def delete_conversation(request: web.Request) -> web.Response:
    conversation_id = request.match_info["conversationId"]
    removed = await services(request).conversations.forget(caller(request), conversation_id)
    return web.json_response(
        {"deleted": True, "conversationId": conversation_id, "memoriesRemoved": removed}
    )


@routes.post("/v4/search")
async def search(request: web.Request) -> web.Response:
    started = time.perf_counter()
    body = structure(CONVERTER, await read_json(request), SearchIn)
    found = services(request)
    results = await found.search.search(caller(request), search_to_core(body))
    written = await search_results(
        results,
        mode=body.searchMode,
        include=body.include,
        caller=caller(request),
        store=found.store,
        index=found.search.index,
    )
    return web.json_response(
        {
            "results": written,
            "total": len(results),
            "reranked": body.rerank and bool(found.search.rerankers),
            "timing": round((time.perf_counter() - started) * 1000, 3),
        }
    )
