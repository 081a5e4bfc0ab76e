"""The embedded backend: one SQLite file behind every storage port."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from attrs import define, field

from memoryd.adapters.storage.sqlite._conversations import SqliteConversationStore
from memoryd.adapters.storage.sqlite._db import Database, make_private_dir
from memoryd.adapters.storage.sqlite._fts import KEYWORD_BUDGET
from memoryd.adapters.storage.sqlite._index import SqliteMemoryIndex
from memoryd.adapters.storage.sqlite._keys import SqliteKeyStore
from memoryd.adapters.storage.sqlite._schema import check_embedding, migrate, stored_dimension
from memoryd.adapters.storage.sqlite._switch import (
    begin_switch,
    finish_switch,
    lock_file,
    unlock_file,
)
from memoryd.adapters.storage.sqlite._tenant import DEFAULT_TUNING, ScanTuning
from memoryd.adapters.storage.sqlite._threads import SqliteThreadStore
from memoryd.core.errors import ConfigurationError


@define
class SqliteBackend:
    """The stores and the index over one SQLite file. Close it when done."""

    path: Path
    conversations: SqliteConversationStore
    keys: SqliteKeyStore
    threads: SqliteThreadStore
    index: SqliteMemoryIndex
    _db: Database = field(alias="db")
    #: The ``flock`` held on the file (``_switch``): shared by a server, exclusive by a switch.
    _lock: int | None = field(default=None, alias="lock")

    async def close(self) -> None:
        """Finish queued writes, stop the threads, close the connections."""
        try:
            await self.index.close()
            await self._db.close()
        finally:
            unlock_file(self._lock)
            self._lock = None

    async def finish_model_switch(self) -> None:
        """After ``open_for_model_switch`` and the loop: the file is now of the new model."""
        await self._db.write(finish_switch)


async def open_sqlite(
    path: Path,
    *,
    model_name: str | None,
    dimension: int | None,
    readers: int = 2,
    load_index: bool = True,
    tuning: ScanTuning = DEFAULT_TUNING,
    scan_threads: int = 2,
    keyword_budget: int = KEYWORD_BUDGET,
) -> SqliteBackend:
    """Open (creating if missing) the database file and rebuild the search index.

    ``model_name`` and ``dimension`` name the embedding model: the first open
    records them, and a file built with another model is refused with a
    ``ConfigurationError``. Tools that never touch vectors (``memoryd keys``)
    pass None for both and ``load_index=False``: they may open the file while a
    server has it open (WAL makes that safe), and skip the index rebuild.

    ``tuning`` says how the dense side scans (see :class:`ScanTuning`), and
    ``scan_threads`` threads share a large scan. The keyword side ranks only
    the rarest query words that match at most ``keyword_budget`` rows together
    (bm25 cost grows with matched rows).
    """
    path = Path(path)
    try:
        make_private_dir(path.parent)
    except OSError as e:
        raise ConfigurationError(
            f"Cannot create the data directory {path.parent}: {e.strerror}. "
            "Set data_dir to a directory memoryd may write to.",
            details={"path": str(path.parent)},
        ) from e
    db = Database(path, readers=readers)
    found: list[int | None] = []
    locks: list[int] = []

    def setup(conn: sqlite3.Connection) -> None:
        if load_index:  # a process that uses the vectors: no switch may run meanwhile
            locks.append(lock_file(path, exclusive=False))
        migrate(conn, path)
        check_embedding(conn, path, model_name, dimension)
        found.append(stored_dimension(conn))

    try:
        await asyncio.get_running_loop().run_in_executor(None, db.open, setup)
    except BaseException:
        unlock_file(locks[0] if locks else None)
        raise
    dim = dimension if dimension is not None else found[0]
    index = SqliteMemoryIndex(
        db,
        dimension=dim or 0,
        tuning=tuning,
        scan_threads=scan_threads,
        keyword_budget=keyword_budget,
    )
    backend = SqliteBackend(
        path=path,
        conversations=SqliteConversationStore(db, dimension=dim),
        keys=SqliteKeyStore(db),
        threads=SqliteThreadStore(db),
        index=index,
        db=db,
        lock=locks[0] if locks else None,
    )
    if load_index:
        if dim is None:
            await backend.close()
            raise ConfigurationError(
                "The search index needs the embedding dimension: pass the embedding model's "
                "name and dimension when opening the database.",
            )
        try:
            await index.load()
        except BaseException:
            await backend.close()
            raise
    return backend


@define
class ModelSwitch:
    """A file opened to be re-embedded: its stores (no index) and what it was."""

    backend: SqliteBackend
    #: The model the file recorded before (None: a new file).
    previous_model: str | None
    #: How many conversations the file holds (for a progress bar).
    conversations: int


async def open_for_model_switch(
    path: Path, *, embedder: str, model_name: str, dimension: int
) -> ModelSwitch:
    """Open the file alone (an exclusive lock) and mark it as switching to ``model_name``.

    Refuses (``ConfigurationError``) while another process has it open. The
    conversation store writes vectors of ``dimension``; the index is not
    loaded. Call ``backend.finish_model_switch()`` after the loop, then close.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigurationError(
            f"There is no database at {path}: nothing to re-embed. Check data_dir.",
            details={"path": str(path)},
        )
    db = Database(path, readers=1)
    locks: list[int] = []
    began: list[tuple[str | None, int]] = []

    def setup(conn: sqlite3.Connection) -> None:
        locks.append(lock_file(path, exclusive=True))
        migrate(conn, path)
        began.append(
            begin_switch(conn, embedder=embedder, model_name=model_name, dimension=dimension)
        )

    try:
        await asyncio.get_running_loop().run_in_executor(None, db.open, setup)
    except BaseException:
        unlock_file(locks[0] if locks else None)
        raise
    backend = SqliteBackend(
        path=path,
        conversations=SqliteConversationStore(db, dimension=dimension),
        keys=SqliteKeyStore(db),
        threads=SqliteThreadStore(db),
        index=SqliteMemoryIndex(db, dimension=dimension),
        db=db,
        lock=locks[0],
    )
    previous, count = began[0]
    return ModelSwitch(backend=backend, previous_model=previous, conversations=count)
