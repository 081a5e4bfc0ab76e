"""ConversationStore over the SQLite file: conversations, messages, memories, quota."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any, TypeVar

from attrs import define

from memoryd.adapters.storage.sqlite import _codec as codec
from memoryd.adapters.storage.sqlite import _memory_edits as edits
from memoryd.adapters.storage.sqlite import _outbox as outbox
from memoryd.adapters.storage.sqlite import _queue as queue
from memoryd.adapters.storage.sqlite._citations import forget_cited
from memoryd.adapters.storage.sqlite._codec import chunks, marks, scope_from_text, scope_text
from memoryd.adapters.storage.sqlite._db import Database, transaction
from memoryd.core.indexer import deletion, index_change
from memoryd.core.model import Conversation, Memory, Scope
from memoryd.core.ports import (
    ConversationChange,
    IndexChange,
    IndexedMemory,
    PendingChange,
    QueuedWork,
    TokenCharge,
)
from memoryd.core.quota import check_quota

T = TypeVar("T")

#: A full key's look-up across scopes: the empty scope's, else the newest.
_ANY_SCOPE = " ORDER BY scope != '', updated_at DESC, rowid DESC LIMIT 1"


@define
class SqliteConversationStore:
    """The source of truth for conversations, their messages and their memories."""

    db: Database
    dimension: int | None = None

    async def get_conversation(
        self, tenant_id: str, conversation_id: str, *, scope: Scope | None = ()
    ) -> Conversation | None:
        """The conversation of that id in ``scope`` with its messages in order, or None.

        ``scope=None``: the empty scope's conversation of that id, else the newest.
        """
        where = "tenant_id = ? AND conversation_id = ?"
        params: tuple[str, ...] = (tenant_id, conversation_id)
        if scope is None:
            where += _ANY_SCOPE
        else:
            where += " AND scope = ?"
            params += (scope_text(scope),)

        def run(conn: sqlite3.Connection) -> Conversation | None:
            with transaction(conn, write=False):
                row = conn.execute(
                    # Constant clauses; the tenant, id and scope are bound parameters.
                    "SELECT rowid, id, tags, metadata, created_at, updated_at, scope,"  # noqa: S608
                    f" pending_from FROM conversations WHERE {where}",
                    params,
                ).fetchone()
                if row is None:
                    return None
                rowid, cid, tags, metadata, created, updated, stored_scope, pending = row
                messages = conn.execute(
                    f"SELECT {codec.MESSAGE_COLUMNS} FROM messages"  # noqa: S608 - constant
                    " WHERE conversation = ? ORDER BY position",
                    (rowid,),
                ).fetchall()
            return Conversation(
                id=cid,
                tenant_id=tenant_id,
                conversation_id=conversation_id,
                messages=tuple(codec.message_from_row(m) for m in messages),
                container_tags=tuple(codec.loads(tags)),
                metadata=codec.loads(metadata),
                created_at=codec.from_text(created),
                updated_at=codec.from_text(updated),
                scope=scope_from_text(stored_scope),
                pending_from=pending,
            )

        return await self.db.read(run)

    async def conversation_by_id(self, tenant_id: str, id: str) -> Conversation | None:
        """The tenant's conversation of our id ``id`` (``ConversationsById``), or None."""

        def run(conn: sqlite3.Connection) -> tuple[str, str] | None:
            with transaction(conn, write=False):
                row = conn.execute(
                    "SELECT conversation_id, scope FROM conversations"
                    " WHERE id = ? AND tenant_id = ?",
                    (id, tenant_id),
                ).fetchone()
            return None if row is None else (row[0], row[1])

        found = await self.db.read(run)
        if found is None:
            return None
        return await self.get_conversation(tenant_id, found[0], scope=scope_from_text(found[1]))

    async def memory_ids(
        self, tenant_id: str, conversation_id: str, *, scope: Scope = ()
    ) -> tuple[str, ...]:
        """The ids of every memory made from the conversation in ``scope``, oldest first."""

        def run(conn: sqlite3.Connection) -> tuple[str, ...]:
            rows = conn.execute(
                "SELECT m.id FROM conversations AS c JOIN memories AS m ON m.conversation = c.rowid"
                " WHERE c.tenant_id = ? AND c.conversation_id = ? AND c.scope = ?"
                " ORDER BY m.rowid",
                (tenant_id, conversation_id, scope_text(scope)),
            ).fetchall()
            return tuple(r[0] for r in rows)

        return await self.db.read(run)

    async def commit(self, change: ConversationChange) -> None:
        """Write the change in one transaction, charging its tokens; durable on return.

        Raises ``QuotaExceeded`` and writes nothing if the charge would take the
        key past its quota.
        """
        dimension = self.dimension

        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                if change.charge is not None:
                    _charge(conn, change.charge)
                _write_change(conn, change, dimension)
                outbox.record(conn, index_change(change))

        await self.db.write(run)

    async def delete_conversation(
        self, tenant_id: str, conversation_id: str, *, scope: Scope | None = ()
    ) -> tuple[str, ...] | None:
        """Delete the conversation, its messages and memories; return the memory ids.

        ``scope=None`` deletes the conversations of that id in every scope.
        The text that stored thread annotations quote of them goes too (kept as
        forgotten citations), in the same transaction; the index learns of the
        deletion from the outbox entry recorded with it.
        """
        where = "tenant_id = ? AND conversation_id = ?"
        params: tuple[str, ...] = (tenant_id, conversation_id)
        if scope is not None:
            where += " AND scope = ?"
            params += (scope_text(scope),)

        def run(conn: sqlite3.Connection) -> tuple[str, ...] | None:
            with transaction(conn, write=True):
                rows = conn.execute(
                    f"SELECT rowid FROM conversations WHERE {where}",  # noqa: S608 - constant
                    params,
                ).fetchall()
                if not rows:
                    return None
                ids: list[str] = []
                for (rowid,) in rows:
                    ids.extend(
                        r[0]
                        for r in conn.execute(
                            "SELECT id FROM memories WHERE conversation = ? ORDER BY rowid",
                            (rowid,),
                        )
                    )
                    conn.execute("DELETE FROM memories WHERE conversation = ?", (rowid,))
                    conn.execute("DELETE FROM messages WHERE conversation = ?", (rowid,))
                    conn.execute("DELETE FROM conversations WHERE rowid = ?", (rowid,))
                # The text threads quote of them goes in the same transaction, so that
                # no crash leaves a copy behind (``forget_citations`` then finds none).
                forget_cited(conn, tenant_id, ids)
                outbox.record(conn, deletion(tenant_id, conversation_id, ids))
            return tuple(ids)

        return await self.db.write(run)

    # Single memories (``MemoryStore``): see ``_memory_edits``.

    async def list_memories(
        self,
        tenant_id: str,
        *,
        tags: Sequence[str] = (),
        memory_id: str | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> list[Memory]:
        """The tenant's memories with one of ``tags``, of that id or text, newest said first."""
        return await self.db.read(
            partial(
                edits.list_memories,
                tenant_id=tenant_id,
                tags=tuple(tags),
                memory_id=memory_id,
                text=text,
                limit=limit,
            )
        )

    async def update_memory(
        self, item: IndexedMemory, *, charge: TokenCharge | None = None
    ) -> bool:
        """Replace the memory's text, vectors and metadata, with its outbox entry."""
        return await self.db.write(
            partial(edits.update_memory, item=item, charge=charge, dimension=self.dimension)
        )

    async def forget_memories(self, tenant_id: str, memory_ids: Sequence[str]) -> tuple[str, ...]:
        """Delete the memories and what threads quote of them, with their outbox entries."""
        ids = list(memory_ids)
        return await self.db.write(
            partial(edits.forget_memories, tenant_id=tenant_id, memory_ids=ids)
        )

    # Queued ingest (``IngestQueue``): see ``_queue``.

    async def queued(self, *, tenant_id: str | None = None, limit: int = 100) -> list[QueuedWork]:
        """Conversations whose memories are still to be built, oldest first."""
        return await self.db.read(partial(queue.queued, tenant_id=tenant_id, limit=limit))

    async def complete_queued(self, work: QueuedWork, change: ConversationChange) -> bool:
        """Commit the memories built for ``work`` if the conversation is still at its revision."""
        dimension = self.dimension

        def run(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                if not queue.is_current(conn, work):
                    return False
                _write_change(conn, change, dimension)
                outbox.record(conn, index_change(change))
            return True

        return await self.db.write(run)

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the file can be read and written."""

        def read(conn: sqlite3.Connection) -> None:
            conn.execute("SELECT count(*) FROM meta").fetchone()

        def write(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('checked_at', datetime())"
                )

        self.db.check_file()
        await self.db.read(read)
        await self.db.write(write)

    async def pending_changes(
        self,
        *,
        tenant_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 100,
    ) -> list[PendingChange]:
        """The outbox's entries, oldest first, their added memories read back from the file."""
        dimension = self.dimension

        def run(conn: sqlite3.Connection) -> list[PendingChange]:
            with transaction(conn, write=False):
                return outbox.pending(
                    conn,
                    tenant_id=tenant_id,
                    conversation_id=conversation_id,
                    limit=limit,
                    dimension=dimension,
                )

        return await self.db.read(run)

    async def mark_applied(self, seqs: Sequence[int]) -> None:
        """Delete these outbox entries: the index has them."""
        done = list(seqs)
        await self.db.write(lambda conn: outbox.mark_applied(conn, done))

    async def tenant_ids(self) -> list[str]:
        """Every tenant with a conversation, sorted."""

        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT DISTINCT tenant_id FROM conversations ORDER BY 1")
            return [r[0] for r in rows]

        return await self.db.read(run)

    async def snapshot(self, tenant_id: str) -> AsyncIterator[IndexChange]:
        """Every conversation of the tenant with all its memories, a batch per read."""
        after = 0
        dimension = self.dimension
        while True:
            # Bounded: each batch moves ``after`` past the rowids it read.
            changes, last = await self.db.read(
                partial(
                    outbox.snapshot_batch, tenant_id=tenant_id, after=after, dimension=dimension
                )
            )
            for change in changes:
                yield change
            if last == after:
                return
            after = last

    async def conversations_of(self, tenant_id: str) -> AsyncIterator[Conversation]:
        """Every conversation of the tenant with its messages, a batch per read, by rowid."""
        after = 0
        while True:
            # Bounded: each batch moves ``after`` past the rowids it read.
            batch, last = await self.db.read(
                partial(_conversations_batch, tenant_id=tenant_id, after=after)
            )
            for conversation in batch:
                yield conversation
            if last == after:
                return
            after = last


#: Conversations read per batch by ``conversations_of``.
CONVERSATIONS_BATCH = 50


def _conversations_batch(
    conn: sqlite3.Connection, *, tenant_id: str, after: int
) -> tuple[list[Conversation], int]:
    with transaction(conn, write=False):
        rows = conn.execute(
            "SELECT rowid, id, conversation_id, tags, metadata, created_at, updated_at, scope,"
            " pending_from FROM conversations WHERE tenant_id = ? AND rowid > ?"
            " ORDER BY rowid LIMIT ?",
            (tenant_id, after, CONVERSATIONS_BATCH),
        ).fetchall()
        found: list[Conversation] = []
        for rowid, cid, conversation_id, tags, metadata, created, updated, scope, pending in rows:
            messages = conn.execute(
                f"SELECT {codec.MESSAGE_COLUMNS} FROM messages"  # noqa: S608 - constant
                " WHERE conversation = ? ORDER BY position",
                (rowid,),
            ).fetchall()
            found.append(
                Conversation(
                    id=cid,
                    tenant_id=tenant_id,
                    conversation_id=conversation_id,
                    messages=tuple(codec.message_from_row(m) for m in messages),
                    container_tags=tuple(codec.loads(tags)),
                    metadata=codec.loads(metadata),
                    created_at=codec.from_text(created),
                    updated_at=codec.from_text(updated),
                    scope=scope_from_text(scope),
                    pending_from=pending,
                )
            )
    return found, int(rows[-1][0]) if rows else after


def _charge(conn: sqlite3.Connection, charge: TokenCharge) -> None:
    row = conn.execute(
        "SELECT used_tokens, quota_tokens FROM api_keys WHERE id = ?", (charge.key_id,)
    ).fetchone()
    if row is None:
        return  # no such key (e.g. a key-less import): nothing to charge
    check_quota(used=int(row[0]), quota=row[1], tokens=charge.tokens)
    if charge.tokens:
        conn.execute(
            "UPDATE api_keys SET used_tokens = used_tokens + ? WHERE id = ?",
            (charge.tokens, charge.key_id),
        )


def _write_change(conn: sqlite3.Connection, change: ConversationChange, dim: int | None) -> None:
    conv = change.conversation
    tags = codec.tags_json(conv.container_tags)
    metadata = codec.metadata_json(conv.metadata)
    updated = codec.to_text(conv.updated_at)
    scope = scope_text(conv.scope)
    row = conn.execute(
        "INSERT INTO conversations (id, tenant_id, conversation_id, scope, tags, metadata,"
        " created_at, updated_at, pending_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (tenant_id, conversation_id, scope) DO UPDATE SET"
        " tags = excluded.tags, metadata = excluded.metadata, updated_at = excluded.updated_at,"
        " pending_from = excluded.pending_from, revision = revision + 1"
        " RETURNING rowid",
        (
            conv.id,
            conv.tenant_id,
            conv.conversation_id,
            scope,
            tags,
            metadata,
            codec.to_text(conv.created_at),
            updated,
            conv.pending_from,
        ),
    ).fetchone()
    rowid = int(row[0])

    if change.kind in ("created", "replaced"):
        conn.execute("DELETE FROM messages WHERE conversation = ?", (rowid,))
    if change.kind != "unchanged":
        conn.executemany(
            "INSERT INTO messages (conversation, position, role, content, name, tool_calls,"
            " tool_call_id, timestamp, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (codec.message_row(rowid, m) for m in change.new_messages),
        )

    # A replacing edit forgets what threads quote of the memories it removes, as a delete does.
    forget_cited(conn, conv.tenant_id, change.removed_memory_ids)
    for ids in chunks(change.removed_memory_ids):
        conn.execute(
            # Only "?" placeholders are formatted in; the ids are bound parameters.
            # "+tenant_id": look the ids up by their unique index, not the tenant's rows.
            f"DELETE FROM memories WHERE +tenant_id = ? AND id IN ({marks(len(ids))})",  # noqa: S608
            (conv.tenant_id, *ids),
        )
    # Every memory of the conversation takes on its tags and metadata.
    conn.execute(
        "UPDATE memories SET tags = ?, metadata = ?, updated_at = ?"
        " WHERE conversation = ? AND (tags IS NOT ? OR metadata IS NOT ?)",
        (tags, metadata, updated, rowid, tags, metadata),
    )
    # Appended turns are the following context of the turns before them.
    conn.executemany(
        "UPDATE memories SET context = ? WHERE conversation = ? AND positions = ?",
        ((context, rowid, codec.dumps([position])) for position, context in change.context_updates),
    )
    conn.executemany(
        "INSERT INTO memories (id, tenant_id, conversation, conversation_id, said_at_us, tags,"
        " metadata, vector, positions, created_at, updated_at, text, context, scope, speaker)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            _memory_row(rowid, item, tags=tags, metadata=metadata, scope=scope, dim=dim)
            for item in change.added
        ),
    )


def _memory_row(
    conversation: int,
    item: IndexedMemory,
    *,
    tags: str,
    metadata: str,
    scope: str,
    dim: int | None,
) -> tuple[Any, ...]:
    memory = item.memory
    return (
        memory.id,
        memory.tenant_id,
        conversation,
        memory.conversation_id,
        codec.to_micros(memory.said_at),
        tags,
        metadata,
        codec.vectors_blob(item.vectors, dim),
        codec.dumps(list(memory.positions)),
        codec.to_text(memory.created_at),
        codec.to_text(memory.updated_at),
        memory.text,
        item.keyword_context,
        scope,
        memory.speaker,
    )
