"""ThreadStore over the SQLite file: chat threads and their messages.

``thread_citations`` indexes each stored annotation by the memory it cites, so
that forgetting a conversation finds the thread messages that quote it without
reading every thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import define

from memoryd.adapters.storage.sqlite import _codec as codec
from memoryd.adapters.storage.sqlite._citations import forget_cited
from memoryd.adapters.storage.sqlite._codec import chunks, marks
from memoryd.adapters.storage.sqlite._db import Database, transaction
from memoryd.core.errors import NotFound
from memoryd.core.model import Thread, ThreadMessage, forget_dead_citations


def _message_rows(thread: int, start: int, messages: Sequence[ThreadMessage]) -> list[Any]:
    return [
        (
            thread,
            start + i,
            m.role,
            m.content,
            codec.annotations_json(m.annotations),
            codec.to_text(m.created_at),
        )
        for i, m in enumerate(messages)
    ]


def _live_memories(conn: sqlite3.Connection, tenant_id: str, ids: Sequence[str]) -> set[str]:
    """Which of these memories the tenant still has."""
    live: set[str] = set()
    for part in chunks(list(dict.fromkeys(ids))):
        # "+tenant_id": look the ids up by their unique index, not the tenant's rows.
        sql = f"SELECT id FROM memories WHERE +tenant_id = ? AND id IN ({marks(len(part))})"  # noqa: S608
        live.update(r[0] for r in conn.execute(sql, (tenant_id, *part)))
    return live


def _store_messages(
    conn: sqlite3.Connection,
    tenant_id: str,
    thread: int,
    start: int,
    messages: Sequence[ThreadMessage],
) -> None:
    """Insert messages from ``start``, with their citations indexed.

    A citation of a memory the tenant no longer has (deleted while the answer
    streamed) is stored forgotten: the delete's ``forget_citations`` has run.
    """
    cited = [a.id for m in messages for a in m.annotations if not a.forgotten]
    live = _live_memories(conn, tenant_id, cited) if cited else set()
    kept = forget_dead_citations(messages, live)
    conn.executemany(_INSERT_MESSAGES, _message_rows(thread, start, kept))
    conn.executemany(
        "INSERT OR IGNORE INTO thread_citations (tenant_id, memory_id, thread, seq)"
        " VALUES (?, ?, ?, ?)",
        (
            (tenant_id, a.id, thread, start + i)
            for i, m in enumerate(kept)
            for a in m.annotations
            if not a.forgotten
        ),
    )


def _utc(value: datetime | None) -> str | None:
    """Thread times are kept in UTC so that the text sorts in time order."""
    return codec.to_text(value.astimezone(UTC) if value is not None else None)


_LIST_THREADS = (
    "SELECT id, title, created_at, updated_at, tags FROM threads WHERE tenant_id = ?"
    # A scope (a JSON array of tags) keeps threads whose tags are not empty and all in it.
    " AND (? IS NULL OR (tags != '[]' AND NOT EXISTS (SELECT 1 FROM json_each(threads.tags)"
    " WHERE value NOT IN (SELECT value FROM json_each(?)))))"
    " ORDER BY coalesce(updated_at, created_at) DESC, rowid DESC LIMIT ? OFFSET ?"
)

_INSERT_MESSAGES = (
    "INSERT INTO thread_messages (thread, seq, role, content, annotations, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


@define
class SqliteThreadStore:
    """Chat threads: their messages and the annotations of each answer."""

    db: Database

    async def create_thread(self, thread: Thread) -> None:
        """Store a new thread with the messages it already has."""

        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                row = conn.execute(
                    "INSERT INTO threads (id, tenant_id, title, tags, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) RETURNING rowid",
                    (
                        thread.id,
                        thread.tenant_id,
                        thread.title,
                        json.dumps(list(thread.container_tags)),
                        _utc(thread.created_at),
                        _utc(thread.updated_at or thread.created_at),
                    ),
                ).fetchone()
                _store_messages(conn, thread.tenant_id, row[0], 0, thread.messages)

        await self.db.write(run)

    async def get_thread(self, tenant_id: str, thread_id: str) -> Thread | None:
        """The thread with its messages in order, or None if the tenant has none by that id."""

        def run(conn: sqlite3.Connection) -> Thread | None:
            with transaction(conn, write=False):
                row = conn.execute(
                    "SELECT rowid, title, created_at, updated_at, tags FROM threads"
                    " WHERE tenant_id = ? AND id = ?",
                    (tenant_id, thread_id),
                ).fetchone()
                if row is None:
                    return None
                messages = conn.execute(
                    "SELECT role, content, annotations, created_at FROM thread_messages"
                    " WHERE thread = ? ORDER BY seq",
                    (row[0],),
                ).fetchall()
            return Thread(
                id=thread_id,
                tenant_id=tenant_id,
                messages=tuple(codec.thread_message_from_row(m) for m in messages),
                title=row[1],
                created_at=codec.from_text(row[2]),
                updated_at=codec.from_text(row[3]),
                container_tags=tuple(json.loads(row[4])),
            )

        return await self.db.read(run)

    async def append_messages(
        self, tenant_id: str, thread_id: str, messages: Sequence[ThreadMessage]
    ) -> None:
        """Append messages durably, in order. Raises ``NotFound`` for an unknown thread."""
        stamps = [m.created_at for m in messages if m.created_at is not None]
        updated = _utc(max(stamps) if stamps else datetime.now(UTC))

        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                row = conn.execute(
                    "SELECT rowid FROM threads WHERE tenant_id = ? AND id = ?",
                    (tenant_id, thread_id),
                ).fetchone()
                if row is None:
                    raise NotFound(f"No thread {thread_id!r}", details={"threadId": thread_id})
                (start,) = conn.execute(
                    "SELECT coalesce(max(seq) + 1, 0) FROM thread_messages WHERE thread = ?",
                    (row[0],),
                ).fetchone()
                _store_messages(conn, tenant_id, row[0], start, messages)
                conn.execute("UPDATE threads SET updated_at = ? WHERE rowid = ?", (updated, row[0]))

        await self.db.write(run)

    async def forget_citations(self, tenant_id: str, memory_ids: Sequence[str]) -> int:
        """Forget the annotations citing these memories; return how many changed.

        The citation index names the thread messages to rewrite; only those are read.
        The thread's ``updated_at`` is left alone (nobody wrote to it). (Deleting a
        conversation in this file already did this, in the delete's transaction.)
        """
        if not memory_ids:
            return 0

        def run(conn: sqlite3.Connection) -> int:
            with transaction(conn, write=True):
                return forget_cited(conn, tenant_id, memory_ids)

        return await self.db.write(run)

    async def list_threads(
        self,
        tenant_id: str,
        *,
        limit: int,
        offset: int,
        within_tags: tuple[str, ...] | None = None,
    ) -> list[Thread]:
        """The tenant's threads, most recently updated first, without their messages.

        With ``within_tags``, only threads whose tags are not empty and all among them.
        """
        scope = json.dumps(list(within_tags)) if within_tags is not None else None

        def run(conn: sqlite3.Connection) -> list[Thread]:
            rows = conn.execute(_LIST_THREADS, (tenant_id, scope, scope, limit, offset)).fetchall()
            return [
                Thread(
                    id=r[0],
                    tenant_id=tenant_id,
                    title=r[1],
                    created_at=codec.from_text(r[2]),
                    updated_at=codec.from_text(r[3]),
                    container_tags=tuple(json.loads(r[4])),
                )
                for r in rows
            ]

        return await self.db.read(run)

    async def delete_thread(self, tenant_id: str, thread_id: str) -> bool:
        """Delete a thread and its messages; False if the tenant has none by that id."""

        def run(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                cur = conn.execute(
                    "DELETE FROM threads WHERE tenant_id = ? AND id = ?", (tenant_id, thread_id)
                )
                return cur.rowcount > 0

        return await self.db.write(run)
