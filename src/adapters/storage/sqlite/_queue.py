"""Queued ingest over the SQLite file: the conversations whose memories are still to be built.

A conversation's ``pending_from`` (NULL: every memory built) is written by the
commit that stores its messages; ``revision`` goes up with every commit of it
(``_conversations._write_change``), so the background work is committed only
while the conversation is as it was read.
"""

from __future__ import annotations

import sqlite3

from memoryd.adapters.storage.sqlite._codec import scope_from_text
from memoryd.adapters.storage.sqlite._db import transaction
from memoryd.core.ports import QueuedWork

_COLUMNS = "tenant_id, conversation_id, scope, id, pending_from, revision"


def queued(conn: sqlite3.Connection, *, tenant_id: str | None, limit: int) -> list[QueuedWork]:
    """Up to ``limit`` queued conversations (of one tenant), oldest written first."""
    with transaction(conn, write=False):
        if tenant_id is None:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM conversations"  # noqa: S608 - constant
                " WHERE pending_from IS NOT NULL ORDER BY rowid LIMIT ?",
                (limit,),
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM conversations"  # noqa: S608 - constant
                " WHERE tenant_id = ? AND pending_from IS NOT NULL ORDER BY rowid LIMIT ?",
                (tenant_id, limit),
            ).fetchall()
    return [
        QueuedWork(
            tenant_id=tenant,
            conversation_id=cid,
            scope=scope_from_text(scope),
            id=id_,
            pending_from=int(pending),
            revision=int(revision),
        )
        for tenant, cid, scope, id_, pending, revision in rows
    ]


def is_current(conn: sqlite3.Connection, work: QueuedWork) -> bool:
    """Whether the conversation of ``work`` is still queued at its revision (in a transaction)."""
    row = conn.execute(
        "SELECT revision, pending_from FROM conversations WHERE id = ? AND tenant_id = ?",
        (work.id, work.tenant_id),
    ).fetchone()
    return row is not None and row[1] is not None and int(row[0]) == work.revision
