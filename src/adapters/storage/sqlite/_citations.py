"""Forgetting the text that chat threads quote of deleted memories.

``thread_citations`` indexes each stored annotation by the memory it cites, so
that forgetting finds the thread messages to rewrite without reading every
thread. Both stores use :func:`forget_cited`: the conversation store inside the
transaction that deletes a conversation (a crash cannot leave the quoted text
behind), the thread store for ``ThreadStore.forget_citations``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from memoryd.adapters.storage.sqlite import _codec as codec

#: Host parameters per statement, well under SQLite's limit.
_CHUNK = 500


def forget_cited(conn: sqlite3.Connection, tenant_id: str, memory_ids: Sequence[str]) -> int:
    """Forget the tenant's stored annotations citing these memories; return how many changed.

    Run it inside a write transaction. The threads' ``updated_at`` is left
    alone (nobody wrote to them); the citations' index rows go.
    """
    gone = list(dict.fromkeys(memory_ids))
    forgotten = set(gone)
    changed = 0
    for start in range(0, len(gone), _CHUNK):
        part = gone[start : start + _CHUNK]
        # Only "?" placeholders are formatted in; the ids are bound parameters.
        where = f"tenant_id = ? AND memory_id IN ({','.join('?' * len(part))})"
        params = (tenant_id, *part)
        cited = conn.execute(
            f"SELECT DISTINCT thread, seq FROM thread_citations WHERE {where}",  # noqa: S608
            params,
        ).fetchall()
        for thread, seq in cited:
            changed += _forget_in_message(conn, thread, seq, forgotten)
        conn.execute(f"DELETE FROM thread_citations WHERE {where}", params)  # noqa: S608
    return changed


def _forget_in_message(conn: sqlite3.Connection, thread: int, seq: int, gone: set[str]) -> int:
    """Rewrite one thread message's annotations with those citing ``gone`` forgotten."""
    row = conn.execute(
        "SELECT annotations FROM thread_messages WHERE thread = ? AND seq = ?", (thread, seq)
    ).fetchone()
    if row is None:
        return 0
    citations = [codec.citation_from_json(a) for a in codec.loads(row[0])]
    changed = sum(1 for c in citations if c.id in gone and not c.forgotten)
    if changed:
        kept = [c.forget() if c.id in gone and not c.forgotten else c for c in citations]
        conn.execute(
            "UPDATE thread_messages SET annotations = ? WHERE thread = ? AND seq = ?",
            (codec.annotations_json(kept), thread, seq),
        )
    return changed
