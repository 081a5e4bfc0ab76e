"""/v3/documents (add, batch, file, get, update, delete, list, bulk delete, processing), /v3/search.

The supermemory SDKs' document API over memoryd's conversations
(``memoryd.core.documents``). A content that is one http(s) URL is fetched
through the fetch guard when the ``fetch_urls`` setting is on (``app[FETCH]``);
otherwise it is refused with 422, naming the setting. The OpenAPI description
is :mod:`._documents_openapi`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from memoryd.adapters._fetch_guard import Fetched, FetchRefused
from memoryd.adapters.http import _document_views as views
from memoryd.adapters.http import _documents_schema as ds
from memoryd.adapters.http._converter import structure
from memoryd.adapters.http._documents_openapi import PATHS, SCHEMAS
from memoryd.adapters.http._errors import error_response, from_error, read_json
from memoryd.adapters.http._keys import CONFIG, caller, services
from memoryd.adapters.http._multipart import FormPart, read_form
from memoryd.core.document_search import DocumentSearch
from memoryd.core.documents import DocumentIn, DocumentService
from memoryd.core.errors import FieldError, MemorydError, ValidationFailed
from memoryd.core.ingest import IngestResult
from memoryd.core.model import ContentPart

__all__ = ["FETCH", "PATHS", "SCHEMAS", "routes"]

#: ``await fetch(url)`` through the fetch guard; absent or None: fetching URLs is off.
FETCH: web.AppKey[Callable[[str], Awaitable[Fetched]] | None] = web.AppKey("memoryd.fetch")

routes = web.RouteTableDef()


class NotFetched(MemorydError):
    """A URL document whose URL could not be (or may not be) fetched: 422."""

    default_message = "The URL was not fetched"


FETCH_OFF = (
    "This content is a URL, and fetching URLs is off: turn on the fetch_urls setting "
    "(docs/security.md, 'Fetching URLs'), or send the text itself"
)


def _documents(request: web.Request) -> DocumentService:
    svc = services(request)
    return DocumentService(
        ingest=svc.ingest, conversations=svc.conversations, store=svc.store, index=svc.search.index
    )


def _status(exc: MemorydError) -> web.Response:
    if isinstance(exc, NotFetched):
        return error_response(422, exc.message, exc.details)
    return from_error(exc)


async def _parts(request: web.Request, content: str) -> tuple[ContentPart, ...]:
    """The content as one message's parts: its text, or the fetched URL's body as a file."""
    if not ds.URL_CONTENT.match(content):
        return (ContentPart.from_text(content),)
    fetch = request.app.get(FETCH)
    if fetch is None:
        raise NotFetched(FETCH_OFF, details={"field": "content", "setting": "fetch_urls"})
    try:
        got = await fetch(content)
    except FetchRefused as exc:
        raise NotFetched(exc.message, details={"field": "content", **(exc.details or {})}) from None
    return (
        ContentPart(
            type="file",
            url=content,
            data=base64.b64encode(got.data).decode("ascii"),
            mime_type=got.content_type or None,
        ),
    )


def _added(result: IngestResult) -> dict[str, Any]:
    return {"id": result.id, "status": "queued" if result.queued else "done"}


@routes.post("/v3/documents")
async def add_document(request: web.Request) -> web.Response:
    body = structure(ds.CONVERTER, await read_json(request), ds.DocumentAddIn)
    try:
        parts = await _parts(request, body.content)
    except NotFetched as exc:
        return _status(exc)
    result = await _documents(request).add(
        caller(request),
        DocumentIn(
            content=parts,
            custom_id=body.customId,
            container_tags=body.tags,
            metadata=body.metadata,
            said_at=body.documentDate,
        ),
    )
    return web.json_response(_added(result))


@routes.post("/v3/documents/batch")
async def add_documents(request: web.Request) -> web.Response:
    body = structure(ds.CONVERTER, await read_json(request), ds.DocumentBatchIn)
    service = _documents(request)
    results: list[dict[str, Any]] = []
    for item in body.documents:
        try:
            parts = await _parts(request, item.content)
            result = await service.add(
                caller(request),
                DocumentIn(
                    content=parts,
                    custom_id=item.customId,
                    container_tags=item.tags or body.tags,
                    metadata=item.metadata if item.metadata is not None else body.metadata,
                    said_at=item.documentDate or body.documentDate,
                ),
            )
        except MemorydError as exc:
            failed: dict[str, Any] = {"id": item.customId or "", "status": "error"}
            failed["error"] = exc.message
            failed["details"] = json.dumps(exc.details) if exc.details is not None else None
            if ds.URL_CONTENT.match(item.content):
                failed["url"] = item.content
            results.append(failed)
        else:
            results.append(_added(result))
    failures = sum(1 for r in results if r["status"] == "error")
    return web.json_response(
        {"results": results, "success": len(results) - failures, "failed": failures}
    )


def _form_text(form: dict[str, FormPart], name: str) -> Any:
    part = form.get(name)
    return None if part is None else part.text()


def _json_field(form: dict[str, FormPart], name: str, *, array_or_text: bool = False) -> Any:
    text = _form_text(form, name)
    if text is None:
        return None
    if array_or_text and not text.lstrip().startswith("["):
        return [text]
    try:
        return json.loads(text)
    except ValueError:
        what = "a JSON array or one tag" if array_or_text else "a JSON object"
        raise ValidationFailed([FieldError(path=name, message=f"must be {what}")]) from None


@routes.post("/v3/documents/file")
async def upload_file(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    form = await read_form(request, max_bytes=config.max_body_bytes, time_limit=config.body_timeout)
    upload = form.get("file")
    if upload is None or (upload.filename is None and not upload.data):
        raise ValidationFailed([FieldError(path="file", message="is required: send the file")])
    fields: dict[str, Any] = {}
    for name in ("containerTag", "customId", "filepath", "mimeType"):
        if name in form:
            fields[name] = _form_text(form, name)
    tags = _json_field(form, "containerTags", array_or_text=True)
    if tags is not None:
        fields["containerTags"] = tags
    metadata = _json_field(form, "metadata")
    if metadata is not None:
        fields["metadata"] = metadata
    body = structure(ds.CONVERTER, fields, ds.FileUploadIn)
    mime = body.mimeType or upload.content_type
    part = ContentPart(
        type="file",
        data=base64.b64encode(upload.data).decode("ascii"),
        mime_type=mime if mime and mime != "application/octet-stream" else None,
        filename=upload.filename,
    )
    result = await _documents(request).add(
        caller(request),
        DocumentIn(
            content=(part,),
            custom_id=body.customId,
            container_tags=body.tags,
            metadata=body.metadata,
        ),
    )
    return web.json_response(_added(result))


@routes.get("/v3/documents/processing")
async def list_processing(request: web.Request) -> web.Response:
    view = ds.processing_query(request.query)
    found = await _documents(request).processing(caller(request))
    out: dict[str, Any] = {
        "documents": [views.summary_fields(c) for c in found],
        "totalCount": len(found),
    }
    if view == "all":
        total = len(found)
        out["pagination"] = {
            "currentPage": 1,
            "limit": max(total, 10),
            "totalItems": total,
            "totalPages": 1 if total else 0,
        }
    return web.json_response(out)


@routes.post("/v3/documents/list")
async def list_documents(request: web.Request) -> web.Response:
    raw = await read_json(request) if request.body_exists else {}
    body = structure(ds.CONVERTER, raw if raw is not None else {}, ds.DocumentListIn)
    result = await _documents(request).list(caller(request), ds.list_to_core(body))
    return web.json_response(views.page(result, include_content=body.includeContent))


@routes.delete("/v3/documents/bulk")
async def delete_bulk(request: web.Request) -> web.Response:
    body = structure(ds.CONVERTER, await read_json(request), ds.DocumentBulkDeleteIn)
    if not body.ids and not body.containerTags:
        raise ValidationFailed(
            [FieldError(path="ids", message="send ids or containerTags: which documents to delete")]
        )
    result = await _documents(request).delete_bulk(
        caller(request), ids=body.ids, container_tags=body.containerTags
    )
    out: dict[str, Any] = {"success": not result.errors, "deletedCount": result.deleted}
    if body.ids:
        out["errors"] = [{"id": i, "error": why} for i, why in result.errors]
    if body.containerTags:
        out["containerTags"] = list(body.containerTags)
    return web.json_response(out)


@routes.get("/v3/documents/{id}")
async def get_document(request: web.Request) -> web.Response:
    service = _documents(request)
    who = caller(request)
    found = await service.get(who, request.match_info["id"])
    return web.json_response(views.document(found, await service.memories(who, found)))


@routes.patch("/v3/documents/{id}")
async def update_document(request: web.Request) -> web.Response:
    body = structure(ds.CONVERTER, await read_json(request), ds.DocumentPatchIn)
    try:
        parts = await _parts(request, body.content) if body.content is not None else None
    except NotFetched as exc:
        return _status(exc)
    result = await _documents(request).update(
        caller(request), request.match_info["id"], ds.patch_to_core(body, parts)
    )
    return web.json_response(_added(result))


@routes.delete("/v3/documents/{id}")
async def delete_document(request: web.Request) -> web.Response:
    await _documents(request).delete(caller(request), request.match_info["id"])
    return web.Response(status=204)


@routes.post("/v3/search")
async def search_documents(request: web.Request) -> web.Response:
    started = time.perf_counter()
    body = structure(ds.CONVERTER, await read_json(request), ds.DocumentSearchIn)
    svc = services(request)
    hits = await DocumentSearch(search=svc.search, documents=_documents(request)).run(
        caller(request), ds.search_to_core(body)
    )
    return web.json_response(
        {
            "results": [
                views.hit(h, full=body.includeFullDocs, summary=body.includeSummary) for h in hits
            ],
            "total": len(hits),
            "timing": round((time.perf_counter() - started) * 1000, 3),
        }
    )
