"""Core values as the API writes them (camelCase JSON)."""

from __future__ import annotations

from typing import Any

from memoryd.adapters.http._converter import iso
from memoryd.core.ingest import IngestResult
from memoryd.core.memories import memory_text
from memoryd.core.model import ContentPart, Conversation, ScoredMemory, StoredMessage
from memoryd.core.part_results import PartOutcome


def ingest_result(result: IngestResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": result.id,
        "conversationId": result.conversation_id,
        "status": "queued" if result.queued else "done",
        "action": result.kind,
        "messagesAdded": result.messages_added,
        "memoriesAdded": result.memories_added,
        "memoriesRemoved": result.memories_removed,
    }
    if result.parts:  # an extension: only when the new messages hold image or file parts
        out["parts"] = [part_outcome(p) for p in result.parts]
    return out


def part_outcome(outcome: PartOutcome) -> dict[str, Any]:
    """What became of one image or file part (``parts`` of the ingest response)."""
    out: dict[str, Any] = {
        "message": outcome.message,
        "part": outcome.part,
        "type": outcome.type,
        "status": outcome.status,
    }
    optional = (
        ("filename", outcome.filename),
        ("plugin", outcome.plugin),
        ("reason", outcome.reason),
    )
    out.update((key, value) for key, value in optional if value is not None)
    if outcome.status == "read":
        out["characters"] = outcome.characters
    return out


def part(p: ContentPart) -> dict[str, Any]:
    if p.type == "text":
        return {"type": "text", "text": p.text or ""}
    if p.type == "image_url":
        return {"type": "image_url", "imageUrl": {"url": p.url}}
    out: dict[str, Any] = {"type": p.type}
    fields = (("url", p.url), ("data", p.data), ("mimeType", p.mime_type), ("filename", p.filename))
    for key, value in fields:
        if value is not None:
            out[key] = value
    return out


def message(m: StoredMessage) -> dict[str, Any]:
    content = m.message.content
    single_text = len(content) == 1 and content[0].type == "text"
    out: dict[str, Any] = {
        "position": m.position,
        "role": m.message.role,
        "content": (content[0].text or "") if single_text else [part(p) for p in content],
        "timestamp": iso(m.said_at),
        "receivedAt": iso(m.received_at),
    }
    if m.message.name is not None:
        out["name"] = m.message.name
    if m.message.tool_calls is not None:
        out["tool_calls"] = list(m.message.tool_calls)
    if m.message.tool_call_id is not None:
        out["tool_call_id"] = m.message.tool_call_id
    return out


def conversation(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "conversationId": c.conversation_id,
        "containerTags": list(c.container_tags),
        "metadata": dict(c.metadata),
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "status": "queued" if c.queued else "done",
        "messages": [message(m) for m in c.messages],
    }


def search_result(r: ScoredMemory) -> dict[str, Any]:
    m = r.memory
    return {
        "id": m.id,
        "memory": memory_text(m),
        "similarity": round(r.similarity, 6),
        "score": round(r.score, 6),
        "conversationId": m.conversation_id,
        "positions": list(m.positions),
        "containerTags": list(m.container_tags),
        "metadata": dict(m.metadata),
        "timestamp": iso(m.said_at),
        "createdAt": iso(m.created_at),
        "updatedAt": iso(m.updated_at),
    }
