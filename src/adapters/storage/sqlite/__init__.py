"""The embedded storage backend: one SQLite file, an in-memory vector index, FTS5.

``open_sqlite(path, model_name=..., dimension=...)`` opens (or creates) the
file and returns a :class:`SqliteBackend` whose ``conversations``, ``keys``,
``threads`` and ``index`` implement the storage ports.
"""

from __future__ import annotations

from memoryd.adapters.storage.sqlite._backend import (
    ModelSwitch,
    SqliteBackend,
    open_for_model_switch,
    open_sqlite,
)
from memoryd.adapters.storage.sqlite._conversations import SqliteConversationStore
from memoryd.adapters.storage.sqlite._index import SqliteMemoryIndex
from memoryd.adapters.storage.sqlite._keys import SqliteKeyStore
from memoryd.adapters.storage.sqlite._scan import pin_blas_threads
from memoryd.adapters.storage.sqlite._tenant import ScanTuning
from memoryd.adapters.storage.sqlite._threads import SqliteThreadStore

__all__ = [
    "ModelSwitch",
    "ScanTuning",
    "SqliteBackend",
    "SqliteConversationStore",
    "SqliteKeyStore",
    "SqliteMemoryIndex",
    "SqliteThreadStore",
    "open_for_model_switch",
    "open_sqlite",
    "pin_blas_threads",
]
