"""The schema: an ordered list of migrations, versioned by ``PRAGMA user_version``.

Migration ``i`` takes the file from version ``i`` to ``i + 1``; each runs in
its own transaction. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from memoryd.adapters.storage.sqlite._switch import switch_refusal
from memoryd.core.errors import ConfigurationError

# Full-text search: ``porter unicode61 remove_diacritics 2``. unicode61 splits
# on Unicode letters and digits (not just ASCII) and folds case; removing
# diacritics lets "cafe" find "café"; the porter stemmer lets "hiking" find
# "hiked", which matters for conversational text where the query and the
# memory rarely use the same word form. The index is external-content (the
# text lives once, in ``memories``) and kept in step by triggers. The
# ``tenant_id`` column is indexed only so that a MATCH can be restricted to
# one tenant before ranking; ``rank`` gives it weight 0 in bm25.
_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    digest       TEXT NOT NULL UNIQUE,
    tags         TEXT NOT NULL,
    quota_tokens INTEGER,
    used_tokens  INTEGER NOT NULL DEFAULT 0,
    label        TEXT,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE conversations (
    rowid           INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    tags            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    created_at      TEXT,
    updated_at      TEXT,
    UNIQUE (tenant_id, conversation_id)
);

CREATE TABLE messages (
    conversation  INTEGER NOT NULL REFERENCES conversations(rowid) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    role          TEXT NOT NULL,
    content       TEXT NOT NULL,
    name          TEXT,
    tool_calls    TEXT,
    tool_call_id  TEXT,
    timestamp     TEXT,
    received_at   TEXT NOT NULL,
    PRIMARY KEY (conversation, position)
) WITHOUT ROWID;

-- The vector comes before the text so that the index rebuild, which reads
-- every vector, stops decoding each record before the text.
CREATE TABLE memories (
    rowid           INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL,
    conversation    INTEGER NOT NULL REFERENCES conversations(rowid) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL,
    said_at_us      INTEGER NOT NULL,
    tags            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    vector          BLOB NOT NULL,
    positions       TEXT NOT NULL,
    created_at      TEXT,
    updated_at      TEXT,
    text            TEXT NOT NULL
);
CREATE INDEX memories_by_conversation ON memories (tenant_id, conversation_id);
CREATE INDEX memories_by_conversation_row ON memories (conversation);

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, tenant_id,
    content = 'memories', content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO memories_fts (memories_fts, rank) VALUES ('rank', 'bm25(1.0, 0.0)');

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text, tenant_id) VALUES (new.rowid, new.text, new.tenant_id);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, tenant_id)
    VALUES ('delete', old.rowid, old.text, old.tenant_id);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF text, tenant_id ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, tenant_id)
    VALUES ('delete', old.rowid, old.text, old.tenant_id);
    INSERT INTO memories_fts (rowid, text, tenant_id) VALUES (new.rowid, new.text, new.tenant_id);
END;

CREATE TABLE threads (
    rowid      INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    title      TEXT NOT NULL,
    tags       TEXT NOT NULL DEFAULT '[]',
    created_at TEXT,
    updated_at TEXT,
    UNIQUE (tenant_id, id)
);
CREATE INDEX threads_by_recency ON threads (tenant_id, updated_at DESC);

CREATE TABLE thread_messages (
    thread      INTEGER NOT NULL REFERENCES threads(rowid) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    role        TEXT NOT NULL,
    content     TEXT NOT NULL,
    annotations TEXT NOT NULL,
    created_at  TEXT,
    PRIMARY KEY (thread, seq)
) WITHOUT ROWID;
"""

# Version 2: the keyword side also searches a memory's neighbouring turns
# (``context``, weight 0.35: they say what a short turn is about, but are not
# the turn) and can be restricted to container tags inside the MATCH (``tags``,
# weight 0, like ``tenant_id``). FTS5 cannot add columns, so the index is
# made anew and rebuilt from ``memories``. Memories written before have an
# empty context; their vectors (one per memory) are the one-piece case of
# the blob, which now holds one vector per embedded piece.
_V2 = """
ALTER TABLE memories ADD COLUMN context TEXT NOT NULL DEFAULT '';
DROP TRIGGER memories_fts_insert;
DROP TRIGGER memories_fts_delete;
DROP TRIGGER memories_fts_update;
DROP TABLE memories_fts;
CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, context, tags, tenant_id,
    content = 'memories', content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO memories_fts (memories_fts, rank) VALUES ('rank', 'bm25(1.0, 0.35, 0.0, 0.0)');
INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text, context, tags, tenant_id)
    VALUES (new.rowid, new.text, new.context, new.tags, new.tenant_id);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, context, tags, tenant_id)
    VALUES ('delete', old.rowid, old.text, old.context, old.tags, old.tenant_id);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF text, context, tags, tenant_id ON memories
BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, context, tags, tenant_id)
    VALUES ('delete', old.rowid, old.text, old.context, old.tags, old.tenant_id);
    INSERT INTO memories_fts (rowid, text, context, tags, tenant_id)
    VALUES (new.rowid, new.text, new.context, new.tags, new.tenant_id);
END;
"""

# Version 3: conversation ids are namespaced by scope (the sorted tags of the key
# that wrote the conversation, as JSON; '' for a key limited to no tags), so the
# unique key becomes (tenant_id, conversation_id, scope): in that order it also
# serves a full key's look-up of an id across scopes. SQLite cannot change a
# table's constraints, so the table is made anew with the same rowids (the
# messages and memories that reference it keep pointing at their rows; the
# migration runs with foreign keys off and checks them before it commits).
# Existing conversations and memories get scope ''. ``thread_citations`` is the
# index from a cited memory to the thread messages whose annotations cite it,
# which forgetting a conversation uses to remove the quoted text; it is filled
# from the annotations already stored.
_V3 = """
CREATE TABLE conversations_v3 (
    rowid           INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    scope           TEXT NOT NULL DEFAULT '',
    tags            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    created_at      TEXT,
    updated_at      TEXT,
    UNIQUE (tenant_id, conversation_id, scope)
);
INSERT INTO conversations_v3
    (rowid, id, tenant_id, conversation_id, scope, tags, metadata, created_at, updated_at)
SELECT rowid, id, tenant_id, conversation_id, '', tags, metadata, created_at, updated_at
FROM conversations;
DROP TABLE conversations;
ALTER TABLE conversations_v3 RENAME TO conversations;
ALTER TABLE memories ADD COLUMN scope TEXT NOT NULL DEFAULT '';
CREATE TABLE thread_citations (
    tenant_id TEXT NOT NULL,
    memory_id TEXT NOT NULL,
    thread    INTEGER NOT NULL REFERENCES threads(rowid) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, memory_id, thread, seq)
) WITHOUT ROWID;
CREATE INDEX thread_citations_by_thread ON thread_citations (thread);
INSERT OR IGNORE INTO thread_citations (tenant_id, memory_id, thread, seq)
SELECT t.tenant_id, json_extract(a.value, '$.id'), m.thread, m.seq
FROM thread_messages AS m
JOIN threads AS t ON t.rowid = m.thread, json_each(m.annotations) AS a
WHERE json_extract(a.value, '$.id') IS NOT NULL;
"""

# Version 4: the outbox. Every commit and delete records, in its own transaction,
# what the search index must learn (``memoryd.core.indexer``); the indexer deletes
# an entry once the index has it. ``change`` is JSON: the ids of the added and of
# the removed memories, the conversation's tags and metadata (null: unchanged) and
# the new keyword contexts of earlier turns. The added memories themselves are
# read back from ``memories`` (those deleted since are gone, as they should be), so
# no text or vector is kept twice. AUTOINCREMENT: a number is never used again.
_V4 = """
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    scope           TEXT NOT NULL,
    change          TEXT NOT NULL
);
CREATE INDEX outbox_by_conversation ON outbox (tenant_id, conversation_id, seq);
"""

# Version 5: the search index keeps its own tables, and a memory its speaker.
#
# - ``memories`` (the store's) gains ``speaker``, and ``text`` keeps only the words:
#   ``[8 May 2023] Caroline: words`` becomes speaker ``Caroline`` and text ``words``
#   (the one place that reads that form back: ``_split_speakers``, for rows written
#   before; a text not in that form is kept whole, with no speaker).
# - ``index_memories`` is the index's copy of what it searches and returns, written
#   only from the ``IndexChange`` values it is given (``SqliteMemoryIndex.apply``):
#   the memory, its piece vectors, its keyword context, and ``searched``, the text
#   the keyword side matches (as search shows it, speaker and date included). The
#   store's triggers and its FTS5 table go; ``index_fts`` indexes ``index_memories``.
#   Rows keep their rowids, which the keyword index returns.
_V5_BEFORE = """
ALTER TABLE memories ADD COLUMN speaker TEXT NOT NULL DEFAULT '';
DROP TRIGGER memories_fts_insert;
DROP TRIGGER memories_fts_delete;
DROP TRIGGER memories_fts_update;
DROP TABLE memories_fts;
CREATE TABLE index_memories (
    rowid           INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    scope           TEXT NOT NULL,
    said_at_us      INTEGER NOT NULL,
    tags            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    vector          BLOB NOT NULL,
    positions       TEXT NOT NULL,
    created_at      TEXT,
    updated_at      TEXT,
    speaker         TEXT NOT NULL,
    text            TEXT NOT NULL,
    searched        TEXT NOT NULL,
    context         TEXT NOT NULL
);
CREATE INDEX index_memories_by_conversation
    ON index_memories (tenant_id, conversation_id, scope);
INSERT INTO index_memories
    (rowid, id, tenant_id, conversation_id, scope, said_at_us, tags, metadata, vector,
     positions, created_at, updated_at, speaker, text, searched, context)
SELECT rowid, id, tenant_id, conversation_id, scope, said_at_us, tags, metadata, vector,
    positions, created_at, updated_at, '', text, text, context
FROM memories;
"""

_V5_AFTER = """
UPDATE index_memories SET
    speaker = (SELECT m.speaker FROM memories AS m WHERE m.rowid = index_memories.rowid),
    text = (SELECT m.text FROM memories AS m WHERE m.rowid = index_memories.rowid);
CREATE VIRTUAL TABLE index_fts USING fts5 (
    searched, context, tags, tenant_id,
    content = 'index_memories', content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO index_fts (index_fts, rank) VALUES ('rank', 'bm25(1.0, 0.35, 0.0, 0.0)');
INSERT INTO index_fts (index_fts) VALUES ('rebuild');
CREATE TRIGGER index_fts_insert AFTER INSERT ON index_memories BEGIN
    INSERT INTO index_fts (rowid, searched, context, tags, tenant_id)
    VALUES (new.rowid, new.searched, new.context, new.tags, new.tenant_id);
END;
CREATE TRIGGER index_fts_delete AFTER DELETE ON index_memories BEGIN
    INSERT INTO index_fts (index_fts, rowid, searched, context, tags, tenant_id)
    VALUES ('delete', old.rowid, old.searched, old.context, old.tags, old.tenant_id);
END;
CREATE TRIGGER index_fts_update
AFTER UPDATE OF searched, context, tags, tenant_id ON index_memories BEGIN
    INSERT INTO index_fts (index_fts, rowid, searched, context, tags, tenant_id)
    VALUES ('delete', old.rowid, old.searched, old.context, old.tags, old.tenant_id);
    INSERT INTO index_fts (rowid, searched, context, tags, tenant_id)
    VALUES (new.rowid, new.searched, new.context, new.tags, new.tenant_id);
END;
"""

# Version 6: queued ingest (setting ``queued_ingest``). ``pending_from`` is the
# position of the first message whose memories are still to be built (NULL: all
# are built), written in the same transaction as the messages; ``revision`` goes
# up with every commit of the conversation, so that memories built in the
# background for one revision are committed only while it is current
# (``SqliteConversationStore.complete_queued``). The partial index finds the queue.
_V6 = """
ALTER TABLE conversations ADD COLUMN pending_from INTEGER;
ALTER TABLE conversations ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
CREATE INDEX conversations_queued ON conversations (tenant_id) WHERE pending_from IS NOT NULL;
"""

_SPOKEN = re.compile(r"\[(\d{1,2} [A-Z][a-z]+ \d{4})\] ([^:\n]{1,255}): (.*)", re.DOTALL)


def _split_speakers(conn: sqlite3.Connection) -> None:
    """Rows written before version 5: ``[date] Speaker: words`` into speaker and words."""
    cursor = conn.execute("SELECT rowid, text FROM memories")
    while rows := cursor.fetchmany(2048):
        updates = [
            (match.group(2).strip(), match.group(3), rowid)
            for rowid, text in rows
            if (match := _SPOKEN.fullmatch(text.strip())) is not None
        ]
        conn.executemany("UPDATE memories SET speaker = ?, text = ? WHERE rowid = ?", updates)


#: One step of a migration: SQL statements, or a function run in the migration's transaction.
Step: TypeAlias = str | Callable[[sqlite3.Connection], None]

#: Every migration, in order, each a sequence of steps. ``user_version`` is how many have run.
MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (_V1,),
    (_V2,),
    (_V3,),
    (_V4,),
    (_V5_BEFORE, _split_speakers, _V5_AFTER),
    (_V6,),
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file up to :data:`SCHEMA_VERSION`, one transaction per migration.

    Foreign keys are off while migrations run (a migration may make a table
    anew, and dropping the old one must not cascade to the rows that reference
    it); each migration checks them before it commits.
    """
    conn.execute("PRAGMA foreign_keys = OFF")  # no effect inside a transaction: set first
    try:
        _migrate(conn, path)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    while True:
        # The version is read under the write lock: two processes opening a new
        # file at once (a server and ``memoryd keys``) must not both migrate.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"The database {path} has schema version {version}, newer than this "
                    f"memoryd understands ({SCHEMA_VERSION}). Upgrade memoryd, or set "
                    "data_dir to another directory.",
                    details={"path": str(path), "schemaVersion": version},
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            run_steps(conn, MIGRATIONS[version])
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise ConfigurationError(
                    f"The database {path} has rows whose references are broken "
                    f"(migrating to schema version {version + 1}): {broken[:5]}. "
                    "Restore it from a backup or set data_dir to a new directory.",
                    details={"path": str(path), "schemaVersion": version},
                )
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def run_steps(conn: sqlite3.Connection, steps: Sequence[Step]) -> None:
    """Run a migration's steps in order (inside the caller's transaction)."""
    for step in steps:
        if isinstance(step, str):
            for statement in _statements(step):
                conn.execute(statement)
        else:
            step(conn)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers contain ``;`` inside BEGIN...END)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def check_embedding(
    conn: sqlite3.Connection, path: Path, model_name: str | None, dimension: int | None
) -> None:
    """Record the embedding model on first use; refuse a file built with another one."""
    rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    refusal = switch_refusal(path, rows) if model_name is not None else None
    if refusal is not None:
        raise refusal
    stored_model = rows.get("embedding_model")
    stored_dim = int(rows["embedding_dimension"]) if "embedding_dimension" in rows else None
    if stored_model is not None and stored_dim is not None and model_name is not None:
        if (stored_model, stored_dim) != (model_name, dimension):
            raise ConfigurationError(
                f"The database {path} holds memories embedded with {stored_model!r} "
                f"({stored_dim} dimensions), but memoryd is configured to embed with "
                f"{model_name!r} ({dimension} dimensions). Vectors of different models "
                "cannot be searched together: set the embedder settings back to "
                f"{stored_model!r}, re-embed the memories with the new model (memoryd "
                "reindex --embedder NAME, with the server stopped), or set data_dir to a new "
                "directory to start a new database with the new model.",
                details={
                    "path": str(path),
                    "storedModel": stored_model,
                    "storedDimension": stored_dim,
                    "configuredModel": model_name,
                    "configuredDimension": dimension,
                },
            )
        return
    if model_name is None or dimension is None:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("embedding_model", model_name), ("embedding_dimension", str(dimension))],
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def stored_dimension(conn: sqlite3.Connection) -> int | None:
    """The embedding dimension the file was built with, if recorded."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'embedding_dimension'").fetchone()
    return int(row[0]) if row else None
