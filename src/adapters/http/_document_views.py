"""Documents and document search results as /v3 writes them (the supermemory SDKs' shapes)."""

from __future__ import annotations

from typing import Any

from memoryd.adapters.http._converter import iso
from memoryd.core import documents as d
from memoryd.core.document_search import DocumentHit
from memoryd.core.memories import memory_text
from memoryd.core.model import Conversation, Memory


def _content(c: Conversation) -> str | None:
    return d.document_text(c) or d.source_url(c)


def summary_fields(c: Conversation) -> dict[str, Any]:
    """What every listing of a document says of it."""
    return {
        "id": c.id,
        "customId": d.custom_id(c),
        "connectionId": None,
        "containerTags": list(c.container_tags),
        "metadata": dict(c.metadata),
        "status": d.status(c),
        "type": d.document_type(c),
        "title": d.title(c),
        "summary": d.summary(c),
        "url": d.source_url(c),
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
    }


def memory(m: Memory) -> dict[str, Any]:
    return {
        "id": m.id,
        "memory": memory_text(m),
        "metadata": dict(m.metadata),
        "createdAt": iso(m.created_at),
        "updatedAt": iso(m.updated_at),
        "isForgotten": False,
        "isInference": False,
        "isLatest": True,
        "isStatic": False,
        "parentMemoryId": None,
        "rootMemoryId": None,
        "sourceCount": 1,
        "version": 1,
    }


def document(c: Conversation, memories: list[Memory]) -> dict[str, Any]:
    """``GET /v3/documents/{id}``."""
    out = summary_fields(c)
    out.update(
        {
            "content": _content(c),
            "raw": None,
            "ogImage": None,
            "source": "memoryd",
            "filepath": None,
            "taskType": "memory",
            "dreamingStatus": d.status(c),
            "latestRevision": 1,
            "activeContentUpdateId": None,
            "tombstonedAt": None,
        }
    )
    if memories:
        out["memories"] = [memory(m) for m in memories]
    return out


def list_item(c: Conversation, *, include_content: bool) -> dict[str, Any]:
    out = summary_fields(c)
    out["filepath"] = None
    if include_content:
        out["content"] = _content(c)
    return out


def page(result: d.DocumentPage, *, include_content: bool) -> dict[str, Any]:
    return {
        "memories": [list_item(c, include_content=include_content) for c in result.documents],
        "pagination": {
            "currentPage": result.page,
            "limit": result.limit,
            "totalItems": result.total,
            "totalPages": result.pages,
        },
    }


def hit(h: DocumentHit, *, full: bool, summary: bool) -> dict[str, Any]:
    c = h.document
    out: dict[str, Any] = {
        "documentId": c.id,
        "customId": d.custom_id(c),
        "title": d.title(c),
        "type": d.document_type(c),
        "score": h.score,
        "metadata": dict(c.metadata),
        "containerTags": list(c.container_tags),
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "chunks": [
            {
                "content": k.content,
                "position": k.position,
                "score": k.score,
                "isRelevant": k.relevant,
            }
            for k in h.chunks
        ],
    }
    if full:
        out["content"] = _content(c)
    if summary:
        out["summary"] = d.summary(c)
    return out
