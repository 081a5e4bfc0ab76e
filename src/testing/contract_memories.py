"""The contract of ``MemoryStore``: single memories listed, updated and forgotten.

Part of :mod:`memoryd.testing.contract` (its ``__all__`` names the test); a
backend whose store lacks the capability is skipped, saying so.
"""

from __future__ import annotations

from datetime import timedelta

import attrs
import numpy as np
import pytest

from memoryd.core.errors import QuotaExceeded
from memoryd.core.filters import MemoryFilter
from memoryd.core.indexer import Indexer
from memoryd.core.model import Citation, Memory, Thread, ThreadMessage
from memoryd.core.ports import IndexedMemory, MemoryStore, StorageBackend, TokenCharge


def ids(found: list[Memory]) -> list[str]:
    return [m.id for m in found]


async def _drain(backend: StorageBackend, conversation_id: str) -> None:
    await Indexer(backend.conversations, backend.index).drain("acme", conversation_id)


async def test_contract_memory_edits(open_backend: object) -> None:
    from memoryd.testing import contract as c  # contract imports this module

    rng = np.random.default_rng(11)
    q_old, q_new = c.unit(rng), c.unit(rng)
    hour = timedelta(hours=1)
    async with open_backend() as backend:  # type: ignore[operator]
        store = backend.conversations
        if not isinstance(store, MemoryStore):
            pytest.skip(f"{type(store).__name__} does not offer MemoryStore")
        await c._ingest(
            backend,
            [
                c.indexed("acme", "c1", "m1", "old words here", q_old, tags=("a",)),
                c.indexed("acme", "c2", "m2", "same", q_old, tags=("a", "z"), said_at=c.T0 + hour),
                c.indexed("acme", "c3", "m3", "same", q_old, tags=("b",), said_at=c.T0 - hour),
                c.indexed("globex", "c4", "m4", "same", q_old, tags=("a",)),
            ],
        )
        assert ids(await store.list_memories("acme", tags=("a",))) == ["m2", "m1"]
        assert ids(await store.list_memories("acme", tags=("a", "b"))) == ["m2", "m1", "m3"]
        assert ids(await store.list_memories("acme", text="same")) == ["m2", "m3"]
        assert ids(await store.list_memories("acme", tags=("b",), text="same")) == ["m3"]
        assert ids(await store.list_memories("acme", memory_id="m4")) == []
        assert ids(await store.list_memories("acme", tags=("a",), limit=1)) == ["m2"]

        # An update replaces the text, vectors and metadata; tags, scope and positions stay.
        (m1,) = await store.list_memories("acme", memory_id="m1")
        changed = attrs.evolve(m1, text="new text", metadata={"k": 1}, updated_at=c.T0 + 2 * hour)
        item = IndexedMemory(memory=changed, vectors=np.atleast_2d(q_new))
        assert await store.update_memory(item)
        await _drain(backend, "c1")
        (now,) = await store.list_memories("acme", memory_id="m1")
        assert (now.text, dict(now.metadata), now.container_tags) == ("new text", {"k": 1}, ("a",))
        assert now.updated_at == c.T0 + 2 * hour
        (fetched,) = await backend.index.fetch("acme", ["m1"])
        assert (fetched.text, dict(fetched.metadata)) == ("new text", {"k": 1})
        assert (await c._dense(backend, MemoryFilter("acme"), q_new, 1)) == ["m1"]
        assert "m1" in await c._keyword_ids(backend, "acme", "new")
        assert "m1" not in await c._keyword_ids(backend, "acme", "old")
        # A rebuild of the index reads the update back.
        snapshot = [ch async for ch in backend.conversations.snapshot("acme")]
        texts = {a.memory.id: a.memory.text for ch in snapshot for a in ch.added}
        assert texts["m1"] == "new text"
        other = attrs.evolve(item, memory=attrs.evolve(changed, tenant_id="globex"))
        assert not await store.update_memory(other)

        # The quota is checked and charged with the write.
        key = await backend.keys.create_key(tenant="acme", digest="d1", quota_tokens=5)
        over = TokenCharge(key_id=key.id, tokens=6, quota=5)
        again = attrs.evolve(item, memory=attrs.evolve(changed, text="too expensive"))
        with pytest.raises(QuotaExceeded):
            await store.update_memory(again, charge=over)
        assert (await store.list_memories("acme", memory_id="m1"))[0].text == "new text"


async def test_contract_memory_forget(open_backend: object) -> None:
    from memoryd.testing import contract as c  # contract imports this module

    q = c.unit(np.random.default_rng(12))
    async with open_backend() as backend:  # type: ignore[operator]
        store = backend.conversations
        if not isinstance(store, MemoryStore):
            pytest.skip(f"{type(store).__name__} does not offer MemoryStore")
        await c._ingest(
            backend,
            [
                c.indexed("acme", "c2", "m2", "same", q, tags=("a",)),
                c.indexed("acme", "c3", "m3", "same", q, tags=("b",)),
                c.indexed("globex", "c4", "m4", "same", q, tags=("a",)),
            ],
        )
        # Forgetting removes the memory everywhere, and what threads quote of it.
        thread = Thread(id="t1", tenant_id="acme", title="", created_at=c.T0, updated_at=c.T0)
        await backend.threads.create_thread(thread)
        cite = Citation(
            similarity=0.9, id="m2", content="quoted", type="memory", url="", title="",
            description="", og_image="", created_at=c.T0, updated_at=c.T0,
        )  # fmt: skip
        answer = ThreadMessage("assistant", "see [1]", annotations=(cite,))
        await backend.threads.append_messages("acme", "t1", [answer])
        assert await store.forget_memories("acme", ["m2", "nope", "m4"]) == ("m2",)
        await _drain(backend, "c2")
        assert "m2" not in await c._ids(backend, "acme", q)
        assert await backend.conversations.memory_ids("acme", "c2") == ()
        assert [m.id for m in await store.list_memories("acme", text="same")] == ["m3"]
        assert await backend.index.fetch("globex", ["m4"])  # another tenant's stays
        got = await backend.threads.get_thread("acme", "t1")
        assert got is not None
        assert got.messages[0].annotations[0].forgotten
        assert got.messages[0].annotations[0].content == ""
        assert await store.forget_memories("acme", ["m2"]) == ()
