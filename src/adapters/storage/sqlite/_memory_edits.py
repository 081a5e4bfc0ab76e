"""Single memories read, updated and forgotten (``MemoryStore``) in the SQLite file.

Each write records its index change in the outbox in the same transaction,
as a conversation's commit does; the memories' rows are the store's
(``memories``), never the index's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from memoryd.adapters.storage.sqlite import _codec as codec
from memoryd.adapters.storage.sqlite import _outbox as outbox
from memoryd.adapters.storage.sqlite._citations import forget_cited
from memoryd.adapters.storage.sqlite._db import transaction
from memoryd.core.model import Memory
from memoryd.core.ports import IndexChange, IndexedMemory, TokenCharge
from memoryd.core.quota import check_quota


def list_memories(
    conn: sqlite3.Connection,
    tenant_id: str,
    *,
    tags: Sequence[str],
    memory_id: str | None,
    text: str | None,
    limit: int,
) -> list[Memory]:
    """The tenant's memories that pass, newest said first."""
    where = ["tenant_id = ?"]
    params: list[Any] = [tenant_id]
    if memory_id is not None:
        where.append("id = ?")
        params.append(memory_id)
    if text is not None:
        where.append("text = ?")
        params.append(text)
    if tags:
        marks = codec.marks(len(tags))
        where.append(f"EXISTS (SELECT 1 FROM json_each(memories.tags) WHERE value IN ({marks}))")  # noqa: S608
        params.extend(tags)
    params.append(limit)
    with transaction(conn, write=False):
        rows = conn.execute(
            # Only constant clauses and "?" placeholders are formatted in.
            f"SELECT {codec.MEMORY_COLUMNS} FROM memories WHERE {' AND '.join(where)}"  # noqa: S608
            " ORDER BY said_at_us DESC, rowid DESC LIMIT ?",
            params,
        ).fetchall()
    return [codec.memory_from_row(r) for r in rows]


def update_memory(
    conn: sqlite3.Connection,
    item: IndexedMemory,
    *,
    charge: TokenCharge | None,
    dimension: int | None,
) -> bool:
    """Write the memory's new text, vectors, metadata and ``updated_at``; False if it is gone."""
    memory = item.memory
    with transaction(conn, write=True):
        if charge is not None:
            _charge(conn, charge)
        row = conn.execute(
            "UPDATE memories SET text = ?, vector = ?, metadata = ?, updated_at = ?"
            " WHERE +tenant_id = ? AND id = ? RETURNING conversation_id, scope",
            (
                memory.text,
                codec.vectors_blob(item.vectors, dimension),
                codec.metadata_json(memory.metadata),
                codec.to_text(memory.updated_at),
                memory.tenant_id,
                memory.id,
            ),
        ).fetchone()
        if row is None:
            return False
        conversation_id, scope = row
        outbox.record(
            conn,
            IndexChange(
                tenant_id=memory.tenant_id,
                conversation_id=conversation_id,
                added=(item,),
                scope=codec.scope_from_text(scope),
            ),
        )
    return True


def forget_memories(
    conn: sqlite3.Connection, tenant_id: str, memory_ids: Sequence[str]
) -> tuple[str, ...]:
    """Delete the memories and the text threads quote of them; the ids that were there."""
    gone: dict[tuple[str, str], list[str]] = {}
    with transaction(conn, write=True):
        for ids in codec.chunks(list(dict.fromkeys(memory_ids))):
            rows = conn.execute(
                # Only "?" placeholders are formatted in; the ids are bound parameters.
                "DELETE FROM memories WHERE +tenant_id = ?"  # noqa: S608
                f" AND id IN ({codec.marks(len(ids))}) RETURNING id, conversation_id, scope",
                (tenant_id, *ids),
            ).fetchall()
            for mid, conversation_id, scope in rows:
                gone.setdefault((conversation_id, scope), []).append(mid)
        removed = [mid for ids in gone.values() for mid in ids]
        forget_cited(conn, tenant_id, removed)
        for (conversation_id, scope), ids in gone.items():
            outbox.record(
                conn,
                IndexChange(
                    tenant_id=tenant_id,
                    conversation_id=conversation_id,
                    removed_memory_ids=tuple(ids),
                    scope=codec.scope_from_text(scope),
                ),
            )
    return tuple(removed)


def _charge(conn: sqlite3.Connection, charge: TokenCharge) -> None:
    row = conn.execute(
        "SELECT used_tokens, quota_tokens FROM api_keys WHERE id = ?", (charge.key_id,)
    ).fetchone()
    if row is None:
        return
    check_quota(used=int(row[0]), quota=row[1], tokens=charge.tokens)
    if charge.tokens:
        conn.execute(
            "UPDATE api_keys SET used_tokens = used_tokens + ? WHERE id = ?",
            (charge.tokens, charge.key_id),
        )
