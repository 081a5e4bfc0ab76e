"""Re-embedding every memory with another model (``memoryd reindex --embedder``), over the fakes."""

from __future__ import annotations

from datetime import UTC, datetime

from attrs import define

from memoryd.core.indexer import reindex
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.memories import MemoryPolicy
from memoryd.core.model import Caller, Citation, ContentPart, Message, Thread, ThreadMessage
from memoryd.core.reembed import ReembedProgress, reembed
from memoryd.testing import FakeEmbedder, FixedClock, InMemoryIndex, InMemoryStore, WordCounter

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@define
class Caption:
    def accepts(self, part: ContentPart) -> bool:
        return part.type == "image_url"

    async def to_text(self, part: ContentPart) -> str | None:
        return "A photo of a red bicycle."


def citation(memory_id: str) -> Citation:
    return Citation(
        similarity=0.9, id=memory_id, content="quoted", type="conversation", url="",
        title="", description="", og_image="", created_at=T0, updated_at=T0,
    )  # fmt: skip


async def test_reembed_rebuilds_every_conversation_with_the_new_model() -> None:
    store, index, clock = InMemoryStore(), InMemoryIndex(), FixedClock()
    policy = MemoryPolicy(context_before=0)
    old = FakeEmbedder(dim=64)
    ingest = IngestService(
        store=store, index=index, embedder=old, tokens=WordCounter(), clock=clock, policy=policy,
        part_handlers=[Caption()],
    )  # fmt: skip
    for tenant, cid, text in [("acme", "c1", "I keep bees."), ("globex", "c2", "Look at this.")]:
        image = Message(
            role="user", content=(ContentPart.from_text(text), ContentPart.image("http://x/y"))
        )
        await ingest.ingest(
            Caller(tenant_id=tenant, key_id="k"),
            IngestRequest(conversation_id=cid, messages=(image, Message.from_text("user", "Ok"))),
        )
    before = {m for ids in store.memories.values() for m in ids}
    cited = store.memories[("acme", (), "c1")][0]
    thread = Thread(id="t", tenant_id="acme", created_at=T0, updated_at=T0)
    await store.create_thread(thread)
    await store.append_messages("acme", "t", [ThreadMessage("assistant", "x", (citation(cited),))])
    clock.advance(60)
    store.outbox.clear()

    new = FakeEmbedder(dim=32)
    seen: list[ReembedProgress] = []
    last = await reembed(store, new, policy=policy, part_handlers=[Caption()], progress=seen.append)

    assert [(p.tenant_id, p.conversation_id, p.conversations) for p in seen] == [
        ("acme", "c1", 1),
        ("globex", "c2", 2),
    ]
    assert last is not None
    assert (last.conversations, last.memories) == (2, 4)
    after = {m for ids in store.memories.values() for m in ids}
    assert len(after) == 4
    assert not after & before
    for mid in after:
        item = store.indexed[mid]
        assert item.vectors.shape[1] == 32
        assert item.memory.created_at == T0  # when its message was received, not now
    texts = sorted(store.indexed[m].memory.text for m in store.memories[("acme", (), "c1")])
    # the handler's text too, saying which part it came from
    assert texts == ["I keep bees.\n[part 1, image] A photo of a red bicycle.", "Ok"]
    assert sum(len(c) for c in new.calls) == 4
    # One outbox entry per conversation: the old memories out, the new ones in.
    assert [len(p.change.removed_memory_ids) for p in store.outbox] == [2, 2]
    # The replaced memory's citation is forgotten (its id stays).
    saved = await store.get_thread("acme", "t")
    assert saved is not None
    assert saved.messages[0].annotations[0].forgotten

    # The index, rebuilt from the store, searches the new vectors.
    await reindex(store, index)
    hits = await index.fetch("acme", sorted(after))
    assert {m.id for m in hits} == set(store.memories[("acme", (), "c1")])
    assert store.outbox == []


async def test_reembed_of_an_empty_store_does_nothing() -> None:
    policy = MemoryPolicy()
    assert await reembed(InMemoryStore(), FakeEmbedder(), policy=policy) is None
