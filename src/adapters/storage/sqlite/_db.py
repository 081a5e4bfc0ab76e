"""The SQLite file's connections: one writer thread, a small pool of readers.

Every operation is one function over a connection, run in a thread: the
writer's single thread for writes (so writes are serialised without any
Python lock), one of the readers' threads for reads. WAL lets the readers run
beside the writer. sqlite3 errors that mean the file is unreachable or broken
become :class:`~memoryd.core.errors.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from memoryd.core.errors import MemorydError, StoreUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How long a statement waits for another connection's lock (another process's
#: write, a checkpoint) before it fails with SQLITE_BUSY.
BUSY_TIMEOUT_MS = 10_000

#: Page cache per connection, KiB.
CACHE_KIB = 16 * 1024

#: Primary result codes that mean "the database cannot be used": answered with 503.
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_NOTADB,
    }
)


def translate(error: BaseException) -> BaseException:
    """The error to raise for ``error``: StoreUnavailable when the DB cannot be used."""
    if isinstance(error, MemorydError):
        return error
    if isinstance(error, sqlite3.ProgrammingError) and "closed" in str(error):
        return StoreUnavailable()
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None and (code & 0xFF) in _UNAVAILABLE_CODES:
            return StoreUnavailable()
        if code is None and isinstance(error, sqlite3.OperationalError):
            return StoreUnavailable()
    return error


#: The data directory's mode when memoryd creates it: the owner's alone.
DIR_MODE = 0o700
#: The SQLite file's mode when memoryd creates it. SQLite gives its ``-wal`` and
#: ``-shm`` files the main file's mode, so they are the owner's alone too.
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create the data directory ``path`` (and its parents) if missing; ``path`` itself 0700.

    Parents are made as ``mkdir -p`` makes them; an existing directory is left as it is.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    os.chmod(path, DIR_MODE)  # exact, whatever the umask


def create_private_file(path: Path) -> None:
    """Create the database file 0600 if it does not exist (an empty file is an empty database).

    ``sqlite3.connect`` would create it 0644 under umask 022, and its ``-wal`` and
    ``-shm`` files with it. An existing file keeps its mode (the deployer's choice);
    a warning names it if others may read it.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode & 0o777
            if mode & 0o077:
                log.warning(
                    "the database %s is readable by others (mode %o); run chmod 600 on it "
                    "and chmod 700 on its directory",
                    path,
                    mode,
                )
        return
    try:
        os.fchmod(fd, FILE_MODE)  # exact, whatever the umask
    finally:
        os.close(fd)


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), with our pragmas.

    ``synchronous=FULL`` in WAL mode fsyncs the log on every commit, so a write
    that returned survives a crash or a kill -9, not just a clean exit.
    """
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
        cached_statements=256,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # A delete overwrites the freed content with zeros, whatever the build's
        # default (docs/security.md, what a delete removes).
        conn.execute("PRAGMA secure_delete = ON")
        # 16 MiB of page cache per connection (SQLite's default is 2 MiB): the
        # keyword side's joins and FTS doclists stay in it (p95 8.3 -> 5.0 ms at
        # 100k memories); three connections cost at most 48 MiB.
        conn.execute(f"PRAGMA cache_size = {-CACHE_KIB}")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    """One transaction: ``BEGIN IMMEDIATE`` for writes (no lock upgrade deadlocks)."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def redoable_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that commits without an fsync of its own (``synchronous = NORMAL``).

    In WAL mode it survives a crash of the process, and the next ``FULL``
    commit syncs it with the log; a power loss may lose it, and nothing
    written after it. Only for writes that are redone if lost: the index's
    (from the outbox) and the marks of outbox entries applied.
    """
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        with transaction(conn, write=True):
            yield conn
    finally:
        conn.execute("PRAGMA synchronous = FULL")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Database:
    """The writer thread and the reader pool over one SQLite file."""

    def __init__(self, path: Path, *, readers: int) -> None:
        self.path = path
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="memoryd-sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(
            max(1, readers), thread_name_prefix="memoryd-sqlite-reader"
        )
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._writer: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._reader_count = max(1, readers)
        self._closed = False

    def open(self, setup: Callable[[sqlite3.Connection], None]) -> None:
        """Open the writer, run ``setup`` on it (migrations), then open the readers.

        Blocking: the caller runs it in a thread.
        """
        try:
            create_private_file(self.path)
            self._writer = connect(self.path)
            self._all.append(self._writer)
            setup(self._writer)
            for _ in range(self._reader_count):
                conn = connect(self.path)
                conn.execute("PRAGMA query_only = ON")
                self._all.append(conn)
                self._readers.put(conn)
        except BaseException as e:
            self._close_connections()
            raise translate(e) from e
        self._identity = _identity(self.path)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(writer)`` in the writer's thread."""
        return await asyncio.wrap_future(self.submit_write(fn))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(reader)`` in a reader's thread."""
        return await asyncio.wrap_future(self.submit_read(fn))

    def submit_write(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Like :meth:`write`, for callers in other threads."""
        return self._submit(self._writer_pool, self._run_write, fn)

    def submit_read(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Like :meth:`read`, for callers in other threads."""
        return self._submit(self._reader_pool, self._run_read, fn)

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        runner: Callable[[Callable[[sqlite3.Connection], T]], T],
        fn: Callable[[sqlite3.Connection], T],
    ) -> Future[T]:
        if self._closed:
            raise StoreUnavailable()
        try:
            return pool.submit(runner, fn)
        except RuntimeError as e:  # the pool was shut down
            raise StoreUnavailable() from e

    def _run_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._writer
        if conn is None or self._closed:
            raise StoreUnavailable()
        if self._identity is not None and _identity(self.path) != self._identity:
            # The file was deleted or replaced under us: writes would land in
            # an unlinked inode and vanish, so refuse them.
            raise StoreUnavailable()
        try:
            return fn(conn)
        except BaseException as e:
            raise translate(e) from e

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreUnavailable()
        conn = self._readers.get()
        try:
            return fn(conn)
        except BaseException as e:
            raise translate(e) from e
        finally:
            self._readers.put(conn)

    def check_file(self) -> None:
        """Raise StoreUnavailable if the file is gone or was replaced."""
        if self._identity is not None and _identity(self.path) != self._identity:
            raise StoreUnavailable()

    async def close(self) -> None:
        """Finish queued work, then close every connection."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def close_sync(self) -> None:
        """Close from synchronous code (tests, the CLI)."""
        self._closed = True
        self._shutdown()

    def _shutdown(self) -> None:
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                # A passive checkpoint keeps the WAL small for the next open.
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._close_connections()

    def _close_connections(self) -> None:
        for conn in self._all:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._all.clear()
        self._writer = None
