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

    async def close(self) -> None:
        """Finish queued writes, stop the threads, close the connections."""
        await self.index.close()
        await self._db.close()


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

    def setup(conn: sqlite3.Connection) -> None:
        migrate(conn, path)
        check_embedding(conn, path, model_name, dimension)
        found.append(stored_dimension(conn))

    await asyncio.get_running_loop().run_in_executor(None, db.open, setup)
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
