"""Switching a file to another embedding model (``memoryd reindex --embedder``), and the file lock.

The ``meta`` table records the model the vectors are of (``embedding_model``,
``embedding_dimension``). A switch runs in three steps:

1. :func:`begin_switch`, one transaction: the target model is recorded beside
   the current one (``embedding_switch_*``). From then on memoryd refuses to
   open the file with any model (``_schema.check_embedding``), since its
   memories are of two models while the loop runs.
2. The loop (``memoryd.core.reembed``) commits each conversation's new
   memories, each commit with its outbox entry (removed old ids, added new ones).
3. :func:`finish_switch`, one transaction: the target becomes the recorded
   model, the marks go, and the index's own tables (the old model's vectors)
   are emptied. The outbox still holds every loop commit's entry, so a crash
   right after this loses nothing: the next start replays them into the empty
   index (``memoryd reindex`` after the switch rebuilds it at once anyway).

A crash before step 3 leaves the file refused (naming both models) until
``memoryd reindex --embedder`` runs again: it does every conversation again
and finishes. It never leaves vectors of two models that memoryd would search.

The lock: every process that opens the file with its vectors (a server, a
plain ``memoryd reindex``) holds a shared ``flock`` on it; a switch takes it
exclusively, so it refuses to start while a server has the file open, and a
server refuses to start while a switch runs. (``flock`` locks are apart from
SQLite's own POSIX locks; the descriptor is closed only after the database.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path

from memoryd.core.errors import ConfigurationError

SWITCH_MODEL = "embedding_switch_model"
SWITCH_DIMENSION = "embedding_switch_dimension"
#: The embedder setting's name of the target (what ``--embedder`` was given).
SWITCH_EMBEDDER = "embedding_switch_embedder"


def lock_file(path: Path, *, exclusive: bool) -> int:
    """Hold an ``flock`` on the database file (shared, or exclusive); the descriptor."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        if exclusive:
            raise ConfigurationError(
                f"The database {path} is open in another memoryd process (a server, or "
                "memoryd reindex): stop it before re-embedding with memoryd reindex --embedder.",
                details={"path": str(path)},
            ) from None
        raise ConfigurationError(
            f"The database {path} is being re-embedded by memoryd reindex --embedder in "
            "another process: wait for it to finish, then start memoryd with the new embedder.",
            details={"path": str(path)},
        ) from None
    return fd


def unlock_file(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def switch_refusal(path: Path, rows: dict[str, str]) -> ConfigurationError | None:
    """The error that refuses a file midway through a switch; None if none is under way."""
    target = rows.get(SWITCH_MODEL)
    if target is None:
        return None
    current = rows.get("embedding_model")
    name = rows.get(SWITCH_EMBEDDER, target)
    return ConfigurationError(
        f"The database {path} is being re-embedded from {current!r} to {target!r}: "
        f"memoryd reindex --embedder {name} did not finish, so its memories are of both "
        f"models. Run memoryd reindex --embedder {name} again to finish it (or name the "
        "old embedder to go back); memoryd will not use the file until then.",
        details={"path": str(path), "storedModel": current, "targetModel": target},
    )


def begin_switch(
    conn: sqlite3.Connection, *, embedder: str, model_name: str, dimension: int
) -> tuple[str | None, int]:
    """Mark the switch to ``model_name`` (over an unfinished one); (old model, conversations)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = meta(conn).get("embedding_model")
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                (SWITCH_MODEL, model_name),
                (SWITCH_DIMENSION, str(dimension)),
                (SWITCH_EMBEDDER, embedder),
            ],
        )
        count = int(conn.execute("SELECT count(*) FROM conversations").fetchone()[0])
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return current, count


def finish_switch(conn: sqlite3.Connection) -> None:
    """Record the target as the file's model and empty the index's tables, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = meta(conn)
        if SWITCH_MODEL not in rows:
            raise ConfigurationError("No switch of the embedding model is under way")
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                ("embedding_model", rows[SWITCH_MODEL]),
                ("embedding_dimension", rows[SWITCH_DIMENSION]),
            ],
        )
        conn.execute(
            "DELETE FROM meta WHERE key IN (?, ?, ?)",
            (SWITCH_MODEL, SWITCH_DIMENSION, SWITCH_EMBEDDER),
        )
        conn.execute("DELETE FROM index_memories")
        conn.execute("INSERT INTO index_fts (index_fts) VALUES ('rebuild')")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
