"""The outbox: the index changes a commit or a delete records in its own transaction.

An entry keeps ids, tags, metadata and keyword contexts (JSON); the added
memories are read back from the store's ``memories`` when the entry is read,
so a memory deleted since is simply not there (its removal is a later entry).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from memoryd.adapters.storage.sqlite import _codec as codec
from memoryd.adapters.storage.sqlite._db import redoable_transaction, transaction
from memoryd.core.ports import IndexChange, IndexedMemory, PendingChange


def record(conn: sqlite3.Connection, change: IndexChange) -> None:
    """Add the change to the outbox (call inside the commit's transaction)."""
    body = {
        "added": [a.memory.id for a in change.added],
        "removed": list(change.removed_memory_ids),
        "tags": list(change.container_tags) if change.container_tags is not None else None,
        "metadata": dict(change.metadata) if change.metadata is not None else None,
        "context": [[p, c] for p, c in change.context_updates],
    }
    conn.execute(
        "INSERT INTO outbox (tenant_id, conversation_id, scope, change) VALUES (?, ?, ?, ?)",
        (
            change.tenant_id,
            change.conversation_id,
            codec.scope_text(change.scope),
            codec.dumps(body),
        ),
    )


_MEMORY = f"SELECT {codec.MEMORY_COLUMNS}, vector, context FROM memories WHERE id = ?"  # noqa: S608


def pending(
    conn: sqlite3.Connection,
    *,
    tenant_id: str | None,
    conversation_id: str | None,
    limit: int,
    dimension: int | None,
) -> list[PendingChange]:
    """Up to ``limit`` entries, oldest first, with their added memories read back."""
    if tenant_id is not None and conversation_id is not None:
        rows = conn.execute(
            "SELECT seq, tenant_id, conversation_id, scope, change FROM outbox"
            " WHERE tenant_id = ? AND conversation_id = ? ORDER BY seq LIMIT ?",
            (tenant_id, conversation_id, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT seq, tenant_id, conversation_id, scope, change FROM outbox"
            " ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
    found: list[PendingChange] = []
    for seq, tenant, cid, scope, text in rows:
        body = codec.loads(text)
        added = [
            item
            for item in (_indexed(conn, mid, dimension) for mid in body["added"])
            if item is not None
        ]
        tags = body["tags"]
        found.append(
            PendingChange(
                seq=int(seq),
                change=IndexChange(
                    tenant_id=tenant,
                    conversation_id=cid,
                    added=tuple(added),
                    removed_memory_ids=tuple(body["removed"]),
                    container_tags=tuple(tags) if tags is not None else None,
                    metadata=body["metadata"],
                    scope=tuple(codec.loads(scope)) if scope else (),
                    context_updates=tuple((int(p), str(c)) for p, c in body["context"]),
                ),
            )
        )
    return found


def _indexed(conn: sqlite3.Connection, memory_id: str, dimension: int | None) -> Any:
    row = conn.execute(_MEMORY, (memory_id,)).fetchone()
    return None if row is None else _from_row(row, dimension)


def _from_row(row: Sequence[Any], dimension: int | None) -> IndexedMemory:
    *columns, blob, context = row
    vectors = np.frombuffer(blob, np.float32)
    width = dimension or len(vectors)
    return IndexedMemory(
        memory=codec.memory_from_row(columns),
        vectors=vectors.reshape(-1, width).copy(),
        keyword_context=context,
    )


def mark_applied(conn: sqlite3.Connection, seqs: Sequence[int]) -> None:
    """Delete these entries (not fsynced: a lost delete only means one more, idempotent, apply)."""
    if not seqs:
        return
    with redoable_transaction(conn):
        conn.executemany("DELETE FROM outbox WHERE seq = ?", ((s,) for s in seqs))


def max_seq(conn: sqlite3.Connection) -> int:
    """The newest entry's number (0 if none is pending)."""
    (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
    return int(seq)


#: Conversations read per batch of a snapshot.
SNAPSHOT_BATCH = 64


def snapshot_batch(
    conn: sqlite3.Connection, tenant_id: str, after: int, dimension: int | None
) -> tuple[list[IndexChange], int]:
    """The next conversations of the tenant after rowid ``after``, as changes; the last rowid."""
    with transaction(conn, write=False):
        return _snapshot_batch(conn, tenant_id, after, dimension)


def _snapshot_batch(
    conn: sqlite3.Connection, tenant_id: str, after: int, dimension: int | None
) -> tuple[list[IndexChange], int]:
    rows = conn.execute(
        "SELECT rowid, conversation_id, scope, tags, metadata FROM conversations"
        " WHERE tenant_id = ? AND rowid > ? ORDER BY rowid LIMIT ?",
        (tenant_id, after, SNAPSHOT_BATCH),
    ).fetchall()
    changes: list[IndexChange] = []
    for rowid, cid, scope, tags, metadata in rows:
        memories = conn.execute(
            f"SELECT {codec.MEMORY_COLUMNS}, vector, context FROM memories"  # noqa: S608
            " WHERE conversation = ? ORDER BY rowid",
            (rowid,),
        ).fetchall()
        changes.append(
            IndexChange(
                tenant_id=tenant_id,
                conversation_id=cid,
                added=tuple(_from_row(row, dimension) for row in memories),
                container_tags=tuple(codec.loads(tags)),
                metadata=codec.loads(metadata),
                scope=tuple(codec.loads(scope)) if scope else (),
            )
        )
    return changes, int(rows[-1][0]) if rows else after
