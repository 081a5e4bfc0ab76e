"""Single memories read, updated and forgotten (``MemoryStore``) in the conversation documents.

A memory lives in its conversation's document (``state.scopes[].memories``);
an update or a forget rewrites that one document with its outbox entry, as a
commit does (one write, ``if_seq_no``). A memory updated with its own metadata
keeps it in its record (``metadata``) until its conversation is written again.
Listing reads the tenant's live conversation documents (without vectors or
messages), as ``snapshot`` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from memoryd.adapters.storage.elasticsearch import _codec as codec
from memoryd.adapters.storage.elasticsearch import _state as states
from memoryd.adapters.storage.elasticsearch._cluster import Doc, doc_id
from memoryd.adapters.storage.elasticsearch._filters import from_micros
from memoryd.core.model import Memory
from memoryd.core.ports import IndexedMemory, TokenCharge

log = logging.getLogger(__name__)

#: What listing leaves out of each conversation document.
_LIST_EXCLUDES = ["state.outbox", "state.scopes.messages", "state.scopes.memories.vectors"]


def _memory(tenant_id: str, conversation_id: str, entry: Doc, record: Doc) -> Memory:
    return Memory(
        id=record["id"],
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        text=record["text"],
        positions=tuple(record["positions"]),
        said_at=from_micros(record["said_at_us"]),
        container_tags=tuple(entry["tags"]),
        metadata=dict(record["metadata"] if "metadata" in record else entry["metadata"]),
        created_at=codec.from_text(record["created_at"]),
        updated_at=codec.from_text(record["updated_at"]),
        scope=tuple(entry["scope"]),
        speaker=record.get("speaker", ""),
    )


async def list_memories(
    store: Any,
    tenant_id: str,
    *,
    tags: Sequence[str],
    memory_id: str | None,
    text: str | None,
    limit: int,
) -> list[Memory]:
    wanted = set(tags)
    found: list[Memory] = []
    async for source in store._live(tenant_id, source_excludes=_LIST_EXCLUDES):
        for entry in source["state"]["scopes"]:
            if wanted and not wanted & set(entry["tags"]):
                continue
            for record in entry.get("memories", []):
                if memory_id is not None and record["id"] != memory_id:
                    continue
                if text is not None and record["text"] != text:
                    continue
                found.append(_memory(tenant_id, source["conversation_id"], entry, record))
    found.sort(key=lambda m: (m.said_at, m.conversation_id, m.positions, m.id), reverse=True)
    return found[:limit]


def _now_us() -> int:
    return time.time_ns() // 1000


async def update_memory(
    store: Any, item: IndexedMemory, *, charge: TokenCharge | None, dimension: int | None
) -> bool:
    memory = item.memory
    tenant, conversation_id = memory.tenant_id, memory.conversation_id
    new_record = codec.record_doc(item, dimension)

    def write(doc: Doc | None) -> tuple[Doc | None, bool]:
        if doc is None:
            return None, False
        state = states._copy(doc["state"])
        entry = states.find_scope(state, memory.scope)
        records: list[Doc] = entry["memories"] if entry is not None else []
        at = next((i for i, r in enumerate(records) if r["id"] == memory.id), None)
        if entry is None or at is None:
            return None, False
        old = records[at]
        records[at] = {
            **old,
            "text": new_record["text"],
            "dims": new_record["dims"],
            "vectors": new_record["vectors"],
            "updated_at": new_record["updated_at"],
            "metadata": dict(memory.metadata),
        }
        state["outbox"].append(
            {
                "seq": states.next_seq(state, _now_us()),
                "scope": entry["scope"],
                "added": [memory.id],
                "removed": [],
                "tags": None,
                "metadata": None,
                "context": [],
            }
        )
        return states.document(tenant, conversation_id, state, doc.get("updated_at")), True

    if charge is not None:
        await store.keys.charge(charge)
    written = False
    try:
        written = await store.cluster.update(
            "conversations",
            doc_id("conversation", tenant, conversation_id),
            write,
            routing=tenant,
        )
    finally:
        if charge is not None and not written:
            try:
                await asyncio.shield(store.keys.refund(charge))
            except Exception as e:  # the cluster is gone: the key stays over-charged
                log.error("could not refund %d tokens to key %s: %r", charge.tokens,
                          charge.key_id, e)  # fmt: skip
    return bool(written)


async def forget_memories(store: Any, tenant_id: str, memory_ids: Sequence[str]) -> tuple[str, ...]:
    wanted = set(memory_ids)
    where: dict[str, list[str]] = {}
    async for source in store._live(tenant_id, source_excludes=_LIST_EXCLUDES):
        for entry in source["state"]["scopes"]:
            for record in entry.get("memories", []):
                if record["id"] in wanted:
                    where.setdefault(source["conversation_id"], []).append(record["id"])
    removed: list[str] = []
    for conversation_id, ids in where.items():

        def write(
            doc: Doc | None, ids: list[str] = ids, conversation_id: str = conversation_id
        ) -> tuple[Doc | None, list[str]]:
            if doc is None:
                return None, []
            state = states._copy(doc["state"])
            gone: list[str] = []
            for entry in state["scopes"]:
                kept = [r for r in entry["memories"] if r["id"] not in ids]
                gone += [r["id"] for r in entry["memories"] if r["id"] in ids]
                entry["memories"] = kept
            if not gone:
                return None, []
            state["outbox"].append(
                {"seq": states.next_seq(state, _now_us()), "scope": [], "added": [],
                 "removed": gone, "tags": None, "metadata": None, "context": []}
            )  # fmt: skip
            return states.document(tenant_id, conversation_id, state, doc.get("updated_at")), gone

        removed += await store.cluster.update(
            "conversations",
            doc_id("conversation", tenant_id, conversation_id),
            write,
            routing=tenant_id,
        )
    await store.threads.forget_citations(tenant_id, removed)
    order = {mid: i for i, mid in enumerate(dict.fromkeys(memory_ids))}
    return tuple(sorted(removed, key=order.__getitem__))
