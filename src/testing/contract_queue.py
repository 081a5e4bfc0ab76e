"""The storage contract's part for ``IngestQueue`` (queued ingest, setting ``queued_ingest``).

A backend without the capability skips it (memoryd refuses ``queued_ingest``
on it). :mod:`memoryd.testing.contract` re-exports the test.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest

from memoryd.core.indexer import Indexer
from memoryd.core.ports import IngestQueue


async def test_contract_ingest_queue(open_backend: object) -> None:
    from memoryd.testing import contract as c  # contract imports this module

    rng = np.random.default_rng(11)
    q = c.unit(rng)
    async with open_backend() as backend:  # type: ignore[operator]
        if not isinstance(backend.conversations, IngestQueue):
            pytest.skip(f"{type(backend.conversations).__name__} does not offer IngestQueue")
        store: Any = backend.conversations  # a ConversationStore, and an IngestQueue too
        first = c._stored(["one", "two"])
        queued = attrs.evolve(c._conversation("acme", "c1", first), pending_from=0)
        await c._commit(backend, c._change("created", queued, first))
        done = c._conversation("acme", "c2", c._stored(["x"]))
        await c._commit(backend, c._change("created", done, done.messages))
        theirs = attrs.evolve(c._conversation("globex", "c3", c._stored(["y"])), pending_from=0)
        await c._commit(backend, c._change("created", theirs, theirs.messages))

        # The marker is read back with the conversation; the queue lists it, per tenant.
        found = await store.get_conversation("acme", "c1")
        assert found is not None
        assert found.pending_from == 0
        assert [m.message.text for m in found.messages] == ["one", "two"]
        (work,) = await store.queued(tenant_id="acme")
        assert (work.conversation_id, work.id, work.pending_from) == ("c1", queued.id, 0)
        assert [w.conversation_id for w in await store.queued()] == ["c1", "c3"]

        # A write after the work was read (an append) changes the revision: refused.
        more = c._stored(["three"], start=2)
        appended = attrs.evolve(c._conversation("acme", "c1", first + more), pending_from=0)
        await c._commit(backend, c._change("appended", appended, more))
        built = c.indexed("acme", "c1", "m1", "one", q)
        finish = c._change("unchanged", attrs.evolve(appended, pending_from=None), (), [built])
        assert not await store.complete_queued(work, finish)
        assert await store.memory_ids("acme", "c1") == ()
        (work,) = await store.queued(tenant_id="acme")

        # At the current revision: the memories land, the marker goes, the outbox has them.
        assert await store.complete_queued(work, finish)
        await Indexer(store, backend.index).drain("acme", "c1")
        assert await store.memory_ids("acme", "c1") == ("m1",)
        assert await c._ids(backend, "acme", q) == {"m1"}
        after = await store.get_conversation("acme", "c1")
        assert after is not None
        assert after.pending_from is None
        assert [m.message.text for m in after.messages] == ["one", "two", "three"]
        assert await store.queued(tenant_id="acme") == []
        assert not await store.complete_queued(work, finish)  # done once only

        # A deleted conversation (or one made anew under the same id) is not completed.
        (other,) = await store.queued(tenant_id="globex")
        await store.delete_conversation("globex", "c3")
        anew = attrs.evolve(theirs, id="another-id")
        await c._commit(backend, c._change("created", anew, anew.messages))
        late = c._change("unchanged", attrs.evolve(anew, pending_from=None), ())
        assert not await store.complete_queued(other, late)

    # The queue is durable: it is there after a reopen (a restart).
    async with open_backend() as backend:  # type: ignore[operator]
        assert [w.conversation_id for w in await backend.conversations.queued()] == ["c3"]
