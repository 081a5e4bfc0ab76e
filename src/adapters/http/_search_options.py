"""``searchMode`` and ``include`` of POST /v4/search, and how the results are written for them.

memoryd has one kind of searchable unit: the memory, which is also the
chunk of its document (a conversation, or a document's piece). So:

- ``memories`` (the default) and ``hybrid`` return memory results (``memory``);
  ``hybrid`` finds no more, since every chunk is a memory.
- ``documents`` returns the same hits as chunk results (``chunk`` instead of
  ``memory``, with ``documentId``).
- ``include.chunks`` (deprecated in the SDK) adds each memory's own chunk as
  ``chunks``; ``include.documents`` adds the document it came from;
  ``include.summaries`` adds its ``summary`` (null: no summaries are made);
  ``include.relatedMemories`` adds the turns before and after it in its
  document as ``context.related``; ``include.forgottenMemories`` adds
  nothing: forgotten memories are deleted, not kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

from attrs import frozen

from memoryd.adapters.http import _views
from memoryd.adapters.http._converter import iso
from memoryd.core.model import Caller, Conversation, Memory, ScoredMemory
from memoryd.core.ports import ConversationStore, MemoryIndex

SearchMode: TypeAlias = Literal["memories", "hybrid", "documents"]
SEARCH_MODES: tuple[SearchMode, ...] = ("memories", "hybrid", "documents")


@frozen
class IncludeIn:
    """``include`` of POST /v4/search (the SDK's ``Include``)."""

    documents: bool = False
    summaries: bool = False
    relatedMemories: bool = False
    forgottenMemories: bool = False
    #: Deprecated in the SDK: the memory's own chunk, as ``chunks``.
    chunks: bool = False


def _title(metadata: Any) -> str | None:
    title = metadata.get("title")
    return title if isinstance(title, str) else None


def document_view(c: Conversation, *, summaries: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "customId": c.conversation_id,
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "metadata": dict(c.metadata),
        "title": _title(c.metadata),
        "type": "conversation",
    }
    if summaries:
        out["summary"] = None
    return out


async def _documents(
    store: ConversationStore, caller: Caller, results: Sequence[ScoredMemory]
) -> dict[tuple[tuple[str, ...], str], Conversation]:
    found: dict[tuple[tuple[str, ...], str], Conversation] = {}
    for r in results:
        key = r.memory.document
        if key in found:
            continue
        conversation = await store.get_conversation(
            caller.tenant_id, r.memory.conversation_id, scope=r.memory.scope
        )
        if conversation is not None:
            found[key] = conversation
    return found


async def _neighbours(
    store: ConversationStore, index: MemoryIndex, caller: Caller, memory: Memory
) -> list[Memory]:
    """The memories just before and after ``memory`` in its document."""
    ids = await store.memory_ids(caller.tenant_id, memory.conversation_id, scope=memory.scope)
    if memory.id not in ids:
        return []
    at = ids.index(memory.id)
    near = [ids[i] for i in (at - 1, at + 1) if 0 <= i < len(ids)]
    return await index.fetch(caller.tenant_id, near)


def _related(m: Memory) -> dict[str, Any]:
    return {
        "memory": m.text,
        "relation": "extends",
        "updatedAt": iso(m.updated_at or m.created_at),
        "metadata": dict(m.metadata),
    }


async def search_results(
    results: Sequence[ScoredMemory],
    *,
    mode: SearchMode,
    include: IncludeIn,
    caller: Caller,
    store: ConversationStore,
    index: MemoryIndex,
) -> list[dict[str, Any]]:
    """The results as POST /v4/search writes them for ``mode`` and ``include``."""
    documents = (
        await _documents(store, caller, results)
        if include.documents or include.summaries or mode == "documents" or include.chunks
        else {}
    )
    out: list[dict[str, Any]] = []
    for r in results:
        view = _views.search_result(r)
        view["updatedAt"] = view["updatedAt"] or view["createdAt"]
        document = documents.get(r.memory.document)
        document_id = document.id if document is not None else None
        if mode == "documents":
            view["chunk"] = view.pop("memory")
            view["documentId"] = document_id
        if include.chunks:
            position = r.memory.positions[0] if r.memory.positions else 0
            view["chunks"] = [
                {"content": r.memory.text, "documentId": document_id, "position": position}
            ]
        if (include.documents or include.summaries) and document is not None:
            view["documents"] = [document_view(document, summaries=include.summaries)]
        if include.relatedMemories:
            near = await _neighbours(store, index, caller, r.memory)
            view["context"] = {"related": [_related(m) for m in near]}
        out.append(view)
    return out
