"""A conversation document's state, and the pure functions that change it.

All the scopes of one (tenant, conversationId) live in one document, with
that conversation's pending outbox entries. One document is written
atomically, so a commit (messages, memories, tags, the outbox entry) and a
delete of every scope are each one write, made with ``if_seq_no``: the
equivalent of the embedded store's transaction.

A commit is checked against the state it was computed from. Two servers may
read a conversation, classify their requests and commit: the second commit
finds the first one's state, and

- if the messages it kept (those before its new ones) are still stored as it
  read them, it is applied on top: its messages win, the stored memories of
  the messages it replaces are removed (not only those it knew of), so
  messages and memories stay consistent;
- otherwise (its history was replaced meanwhile) it is refused with
  ``Stale``: the request is answered 503 and, sent again, is classified
  against the new state. Nothing of it is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from memoryd.adapters.storage.elasticsearch import _codec as codec
from memoryd.adapters.storage.elasticsearch._cluster import Doc
from memoryd.core.errors import StoreUnavailable
from memoryd.core.model import Conversation, Scope
from memoryd.core.ports import ConversationChange, IndexChange, PendingChange


class Stale(StoreUnavailable):
    """The conversation changed under a commit in a way it cannot be applied on top of."""


def empty_state() -> Doc:
    return {"scopes": [], "outbox": []}


def document(tenant_id: str, conversation_id: str, state: Doc, updated_at: str | None) -> Doc:
    """The conversation document: indexed fields, and the state as an unindexed payload."""
    return {
        "tenant": tenant_id,
        "conversation_id": conversation_id,
        "live": bool(state["scopes"]),
        "outbox_seqs": [e["seq"] for e in state["outbox"]],
        "updated_at": updated_at,
        "state": state,
    }


def find_scope(state: Doc, scope: Scope) -> Doc | None:
    wanted = codec.scope_list(scope)
    entries: list[Doc] = state["scopes"]
    for entry in entries:
        if entry["scope"] == wanted:
            return entry
    return None


def conversation_of(tenant_id: str, conversation_id: str, entry: Doc) -> Conversation:
    return Conversation(
        id=entry["id"],
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        messages=tuple(codec.message_from_doc(m) for m in entry["messages"]),
        container_tags=tuple(entry["tags"]),
        metadata=dict(entry["metadata"]),
        created_at=codec.from_text(entry["created_at"]),
        updated_at=codec.from_text(entry["updated_at"]),
        scope=tuple(entry["scope"]),
    )


def pick_any_scope(state: Doc) -> Doc | None:
    """``scope=None``: the empty scope's conversation, else the most recently updated."""
    entries: list[Doc] = state["scopes"]
    if not entries:
        return None
    for entry in entries:
        if not entry["scope"]:
            return entry
    return max(
        enumerate(entries),
        key=lambda pair: (codec.from_text(pair[1]["updated_at"]) is not None, _stamp(pair)),
    )[1]


def _stamp(pair: tuple[int, Doc]) -> tuple[float, int]:
    updated = codec.from_text(pair[1]["updated_at"])
    return (updated.timestamp() if updated is not None else 0.0, pair[0])


def next_seq(state: Doc, now_us: int) -> int:
    """An entry number above every pending one of this document, roughly the time."""
    return max([now_us, *(int(e["seq"]) + 1 for e in state["outbox"])])


def commit(state: Doc | None, change: ConversationChange, seq: int, dimension: int | None) -> Doc:
    """The state after ``change``, with its outbox entry (raises ``Stale``)."""
    state = _copy(state)
    conv = change.conversation
    entry = find_scope(state, conv.scope)
    stored: list[Doc] = entry["messages"] if entry is not None else []
    memories: list[Doc] = entry["memories"] if entry is not None else []
    removed = list(change.removed_memory_ids)
    if change.kind == "unchanged":
        if entry is None:
            raise _stale(conv)
        messages = stored  # tags and metadata only: the stored messages stay
        start = len(stored)
    else:
        start = change.new_messages[0].position if change.new_messages else len(conv.messages)
        if change.kind in ("created", "replaced"):
            start = 0
        kept = [codec.message_from_doc(m).message.fingerprint() for m in stored[:start]]
        if len(stored) < start or kept != [m.message.fingerprint() for m in conv.messages[:start]]:
            raise _stale(conv)
        messages = [codec.message_doc(m) for m in conv.messages]
        # Memories of the messages this change replaces go, including ones it did not know of.
        removed += [
            m["id"]
            for m in memories
            if any(p >= start for p in m["positions"]) and m["id"] not in removed
        ]
    gone = set(removed)
    memories = [m for m in memories if m["id"] not in gone]
    contexts = dict(change.context_updates)
    for m in memories:
        m.pop("metadata", None)  # a write of the conversation gives every memory its metadata
        if len(m["positions"]) == 1 and m["positions"][0] in contexts:
            m["context"] = contexts[m["positions"][0]]
    memories += [codec.record_doc(item, dimension) for item in change.added]
    new_entry = {
        "scope": codec.scope_list(conv.scope),
        "id": entry["id"] if entry is not None else conv.id,
        "tags": list(conv.container_tags),
        "metadata": dict(conv.metadata),
        "created_at": entry["created_at"] if entry is not None else codec.to_text(conv.created_at),
        "updated_at": codec.to_text(conv.updated_at),
        "messages": messages,
        "memories": memories,
    }
    state["scopes"] = [e for e in state["scopes"] if e is not entry] + [new_entry]
    state["outbox"].append(
        {
            "seq": seq,
            "scope": codec.scope_list(conv.scope),
            "added": [item.memory.id for item in change.added],
            "removed": removed,
            "tags": list(conv.container_tags),
            "metadata": dict(conv.metadata),
            "context": [[p, c] for p, c in change.context_updates],
        }
    )
    return state


def _stale(conv: Conversation) -> Stale:
    return Stale(
        "The conversation was changed by another request while this one was processed; "
        "send the request again",
        details={"conversationId": conv.conversation_id},
    )


def delete(state: Doc | None, scope: Scope | None, seq: int) -> tuple[Doc | None, list[str]]:
    """The state without the scope's conversation (None: every scope's); the memory ids gone.

    Returns ``(None, [])`` when there is no such conversation.
    """
    if state is None:
        return None, []
    state = _copy(state)
    wanted = None if scope is None else codec.scope_list(scope)
    going = [e for e in state["scopes"] if wanted is None or e["scope"] == wanted]
    if not going:
        return None, []
    ids = [m["id"] for e in going for m in e["memories"]]
    state["scopes"] = [e for e in state["scopes"] if not any(e is g for g in going)]
    state["outbox"].append(
        {"seq": seq, "scope": [], "added": [], "removed": ids, "tags": None, "metadata": None,
         "context": []}
    )  # fmt: skip
    return state, ids


def pending(tenant_id: str, conversation_id: str, state: Doc) -> list[PendingChange]:
    """The document's outbox entries as changes, added memories read from the state as now."""
    out = []
    for entry in state["outbox"]:
        scope = tuple(entry["scope"])
        found = find_scope(state, scope)
        tags = entry["tags"] if entry["tags"] is not None else (found or {}).get("tags", [])
        metadata = entry["metadata"]
        if metadata is None:
            metadata = (found or {}).get("metadata", {})
        by_id = {m["id"]: m for m in (found or {}).get("memories", [])}
        added = tuple(
            codec.record_from_doc(
                by_id[mid], tenant_id=tenant_id, conversation_id=conversation_id, scope=scope,
                tags=tags, metadata=metadata,
            )
            for mid in entry["added"]
            if mid in by_id
        )  # fmt: skip
        out.append(
            PendingChange(
                seq=int(entry["seq"]),
                change=IndexChange(
                    tenant_id=tenant_id,
                    conversation_id=conversation_id,
                    added=added,
                    removed_memory_ids=tuple(entry["removed"]),
                    container_tags=tuple(entry["tags"]) if entry["tags"] is not None else None,
                    metadata=entry["metadata"],
                    scope=scope,
                    context_updates=tuple((int(p), str(c)) for p, c in entry["context"]),
                ),
            )
        )
    return out


def mark_applied(state: Doc, seqs: Sequence[int]) -> Doc:
    state = _copy(state)
    done = set(seqs)
    state["outbox"] = [e for e in state["outbox"] if e["seq"] not in done]
    return state


def snapshot(tenant_id: str, conversation_id: str, state: Doc) -> list[IndexChange]:
    """One change per scope of the conversation, with all its memories."""
    return [
        IndexChange(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            added=tuple(
                codec.record_from_doc(
                    m,
                    tenant_id=tenant_id,
                    conversation_id=conversation_id,
                    scope=tuple(e["scope"]),
                    tags=e["tags"],
                    metadata=e["metadata"],
                )
                for m in e["memories"]
            ),
            container_tags=tuple(e["tags"]),
            metadata=dict(e["metadata"]),
            scope=tuple(e["scope"]),
        )
        for e in state["scopes"]
    ]


def _copy(state: Doc | None) -> Doc:
    """A copy deep enough to change (the lists; memory records are copied when changed)."""
    if state is None:
        return empty_state()
    return {
        "scopes": [{**e, "memories": [dict(m) for m in e["memories"]]} for e in state["scopes"]],
        "outbox": list(state["outbox"]),
    }
