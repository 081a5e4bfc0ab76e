"""A write that returned survives kill -9; another process may use the file meanwhile."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from memoryd.adapters.storage.sqlite import open_sqlite
from memoryd.core.filters import MemoryFilter
from memoryd.core.indexer import Indexer
from memoryd.core.model import Message
from memoryd.core.ports import IndexQuery
from tests.integration.storage.sqlite_helpers import (
    DIM,
    MODEL,
    conversation,
    created,
    index_change,
    memory,
    stored,
    unit,
)

REPO = Path(__file__).resolve().parents[3]

WRITER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    import numpy as np
    from memoryd.adapters.storage.sqlite import open_sqlite
    from tests.integration.storage.sqlite_helpers import (
        DIM, MODEL, conversation, created, memory, stored,
    )
    from memoryd.core.model import Message

    async def main() -> None:
        backend = await open_sqlite(sys.argv[1], model_name=MODEL, dimension=DIM)
        await backend.keys.create_key(tenant="acme", digest="survivor")
        conv = conversation("acme", "c1", stored([Message.from_text("user", "remember me")]))
        rng = np.random.default_rng(0)
        item = memory("acme", "c1", "m1", "remember me", rng.standard_normal(DIM))
        await backend.conversations.commit(created(conv, [item]))
        print("committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint, no atexit

    asyncio.run(main())
    """
)


def test_committed_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "memoryd.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "committed", done.stderr
    assert done.returncode == -9

    async def check() -> None:
        backend = await open_sqlite(path, model_name=MODEL, dimension=DIM)
        try:
            assert await backend.keys.find_key("survivor") is not None
            conv = await backend.conversations.get_conversation("acme", "c1")
            assert conv is not None
            assert conv.messages[0].message.text == "remember me"
            # Killed before its index learnt of it: the outbox entry is replayed at start.
            assert backend.index.size("acme") == 0
            assert await Indexer(backend.conversations, backend.index).replay() == 1
            assert backend.index.size("acme") == 1
            found = await backend.index.search(
                IndexQuery(MemoryFilter("acme"), np.ones(DIM), "remember", k=5)
            )
            assert [c.memory_id for c in found] == ["m1"]
        finally:
            await backend.close()

    asyncio.run(check())


async def test_a_second_process_may_write_keys_while_open(tmp_path: Path) -> None:
    path = tmp_path / "memoryd.sqlite3"
    server = await open_sqlite(path, model_name=MODEL, dimension=DIM)
    try:
        rng = np.random.default_rng(1)
        conv = conversation("acme", "c1", stored([Message.from_text("user", "hi")]))
        change = created(conv, [memory("acme", "c1", "m1", "hi", unit(rng))])
        await server.conversations.commit(change)
        await server.index.apply(index_change(conv, change))

        # The CLI's way: a second connection set, no model, no index.
        tool = await open_sqlite(path, model_name=None, dimension=None, load_index=False)
        try:
            key = await tool.keys.create_key(tenant="acme", digest="from-cli")
        finally:
            await tool.close()

        found = await server.keys.find_key("from-cli")
        assert found is not None
        assert found.id == key.id
        await server.conversations.check()
    finally:
        await server.close()
