"""Queued ingest (setting ``queued_ingest``): the write, the worker, writes while queued."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from attrs import define, field

from memoryd.core.conversations import ConversationService
from memoryd.core.documents import DocumentIn, DocumentService, status
from memoryd.core.errors import ModelUnavailable, PayloadTooLarge
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.memories import MemoryPolicy
from memoryd.core.model import Caller, ContentPart, Message
from memoryd.core.queue_signal import QueueSignal
from memoryd.core.queued import IngestWorker
from memoryd.testing import FakeEmbedder, FixedClock, InMemoryIndex, InMemoryStore, WordCounter

WHERE = ("t1", (), "c1")


@define
class GatedEmbedder:
    """A FakeEmbedder that can be held (``gate``), fail (``failures``) or run a hook first."""

    inner: FakeEmbedder = field(factory=FakeEmbedder)
    failures: int = 0
    before: Any = None

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def calls(self) -> list[list[str]]:
        return self.inner.calls

    async def embed_documents(self, texts: Sequence[str]) -> Any:
        if self.before is not None:
            hook, self.before = self.before, None
            await hook()
        if self.failures:
            self.failures -= 1
            raise ModelUnavailable("injected: the model is down")
        return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> Any:
        return await self.inner.embed_query(text)


@pytest.fixture
def gated() -> GatedEmbedder:
    return GatedEmbedder()


@pytest.fixture
def signal() -> QueueSignal:
    return QueueSignal()


def service(
    store: InMemoryStore,
    index: InMemoryIndex,
    embedder: GatedEmbedder,
    queue: QueueSignal | None,
    **kw: Any,
) -> IngestService:
    return IngestService(
        store=store,
        index=index,
        embedder=embedder,
        tokens=WordCounter(),
        clock=FixedClock(),
        policy=MemoryPolicy(context_before=1, context_after=1),
        queue=queue,
        **kw,
    )


@pytest.fixture
def queued(
    store: InMemoryStore, index: InMemoryIndex, gated: GatedEmbedder, signal: QueueSignal
) -> IngestService:
    return service(store, index, gated, signal)


@pytest.fixture
def worker(queued: IngestService, store: InMemoryStore, signal: QueueSignal) -> IngestWorker:
    return IngestWorker(
        ingest=queued, queue=store, signal=signal, indexer=queued.indexer, backoff=0.0
    )


def req(*texts: str, cid: str = "c1", **kw: Any) -> IngestRequest:
    roles = ("user", "assistant")
    messages = tuple(Message.from_text(roles[i % 2], t) for i, t in enumerate(texts))
    return IngestRequest(conversation_id=cid, messages=messages, **kw)


async def finish(worker: IngestWorker) -> int:
    """Run the worker's passes until nothing is due; how many did something."""
    passes = 0
    while await worker.run_once():
        passes += 1
    return passes


def memory_texts(index: InMemoryIndex) -> list[str]:
    return sorted(m.text for m in index.memories.values())


async def test_a_queued_write_answers_before_embedding_then_the_worker_finishes(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    gated: GatedEmbedder,
    caller: Caller,
) -> None:
    result = await queued.ingest(caller, req("I love hiking", "Where do you hike?"))
    assert (result.queued, result.kind, result.messages_added, result.memories_added) == (
        True,
        "created",
        2,
        0,
    )
    conversation = store.conversations[WHERE]
    assert conversation.pending_from == 0
    assert status(conversation) == "queued"
    assert gated.calls == []  # nothing embedded while the request waited
    assert index.memories == {}

    assert await worker.run_once()  # built and committed: searchable, then done
    assert memory_texts(index) == ["I love hiking", "Where do you hike?"]
    assert status(store.conversations[WHERE]) == "queued"
    assert await worker.run_once()
    assert not await worker.run_once()
    assert status(store.conversations[WHERE]) == "done"
    assert memory_texts(index) == ["I love hiking", "Where do you hike?"]
    assert len(store.memories[WHERE]) == 2
    assert store.outbox == []  # applied to the index
    assert not await worker.run_once()  # nothing left


async def test_the_quota_and_embed_budget_are_checked_at_the_write(
    store: InMemoryStore, index: InMemoryIndex, gated: GatedEmbedder, signal: QueueSignal
) -> None:
    small = service(store, index, gated, signal, max_embed_tokens=3)
    with pytest.raises(PayloadTooLarge):
        await small.ingest(Caller("t1", "k1"), req("one two three four five six"))
    assert store.conversations == {}  # refused: nothing stored, nothing queued


async def test_append_while_queued_builds_every_message_once(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    caller: Caller,
) -> None:
    await queued.ingest(caller, req("one", "two"))
    result = await queued.ingest(caller, req("one", "two", "three"))
    assert (result.kind, result.messages_added, result.queued) == ("appended", 1, True)
    assert store.conversations[WHERE].pending_from == 0  # still from the first message

    await finish(worker)
    assert memory_texts(index) == ["one", "three", "two"]
    assert sorted(m.positions for m in index.memories.values()) == [(0,), (1,), (2,)]


async def test_append_after_done_queues_from_the_new_message(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    gated: GatedEmbedder,
    caller: Caller,
) -> None:
    await queued.ingest(caller, req("one", "two"))
    await finish(worker)
    await queued.ingest(caller, req("one", "two", "three"))
    assert store.conversations[WHERE].pending_from == 2
    await finish(worker)
    assert gated.calls[-1] == ["user: three"]  # only the new message embedded
    assert memory_texts(index) == ["one", "three", "two"]
    # The turn before it gained it as keyword context.
    (two,) = [i for i in store.indexed.values() if i.memory.text == "two"]
    assert "three" in two.keyword_context


async def test_a_write_while_the_worker_embeds_throws_that_work_away(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    gated: GatedEmbedder,
    caller: Caller,
) -> None:
    await queued.ingest(caller, req("old one", "old two"))

    async def replace() -> None:  # while the worker embeds the old history
        await queued.ingest(caller, req("new one"))

    gated.before = replace
    await worker.run_once()  # its work is for a revision that is gone: nothing written
    assert index.memories == {}
    assert store.conversations[WHERE].pending_from == 0
    await finish(worker)
    assert memory_texts(index) == ["new one"]  # no memory of a replaced message
    assert status(store.conversations[WHERE]) == "done"


async def test_replace_while_queued_removes_the_built_memories(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    caller: Caller,
) -> None:
    await queued.ingest(caller, req("one", "two"))
    await finish(worker)
    await queued.ingest(caller, req("one", "two", "three"))  # queued from 2
    result = await queued.ingest(caller, req("something else"))
    assert (result.kind, result.memories_removed, result.queued) == ("replaced", 2, True)
    assert index.memories == {}  # the old memories went with the write
    await finish(worker)
    assert memory_texts(index) == ["something else"]


async def test_unchanged_while_queued_answers_queued_and_changes_nothing(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    caller: Caller,
) -> None:
    await queued.ingest(caller, req("one", "two"))
    again = await queued.ingest(caller, req("one", "two"))
    assert (again.kind, again.queued, again.messages_added) == ("unchanged", True, 0)
    await finish(worker)
    assert memory_texts(index) == ["one", "two"]
    done = await queued.ingest(caller, req("one", "two"))
    assert (done.kind, done.queued) == ("unchanged", False)
    # New tags while queued: the memories get them.
    await queued.ingest(caller, req("one", "two", "three"))
    await queued.ingest(caller, req("one", "two", "three", container_tags=("red",)))
    await finish(worker)
    assert {m.container_tags for m in index.memories.values()} == {("red",)}
    assert len(index.memories) == 3


async def test_a_synchronous_write_builds_what_an_earlier_queued_one_left(
    queued: IngestService,
    store: InMemoryStore,
    index: InMemoryIndex,
    gated: GatedEmbedder,
    caller: Caller,
) -> None:
    await queued.ingest(caller, req("one", "two"))  # queued, never worked
    sync = service(store, index, gated, None)  # the setting turned off
    result = await sync.ingest(caller, req("one", "two", "three"))
    assert (result.kind, result.memories_added, result.queued) == ("appended", 3, False)
    assert memory_texts(index) == ["one", "three", "two"]
    assert store.conversations[WHERE].pending_from is None
    # The same request again: nothing queued, nothing more.
    assert (await sync.ingest(caller, req("one", "two", "three"))).memories_added == 0


async def test_failures_are_retried_with_backoff_and_logged_without_text(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    gated: GatedEmbedder,
    caller: Caller,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    worker.monotonic = lambda: now[0]
    worker.backoff = 1.0
    await queued.ingest(caller, req("a secret sentence"))
    await queued.ingest(caller, req("another", cid="c2"))
    gated.failures = 1
    with caplog.at_level(logging.WARNING, logger="memoryd.core.queued"):
        await finish(worker)
    # The first failed, the second went on.
    assert status(store.conversations[WHERE]) == "queued"
    assert status(store.conversations[("t1", (), "c2")]) == "done"
    assert "c1" in caplog.text
    assert "ModelUnavailable" in caplog.text
    assert "secret" not in caplog.text
    assert not await worker.run_once()  # not due yet
    now[0] += 1.0
    gated.failures = 1
    await worker.run_once()  # fails again: the delay doubles
    now[0] += 1.0
    assert not await worker.run_once()
    now[0] += 1.0
    assert await finish(worker) == 2
    assert status(store.conversations[WHERE]) == "done"
    assert memory_texts(index) == ["a secret sentence", "another"]


async def test_the_worker_runs_until_cancelled_and_wakes_on_writes(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    caller: Caller,
) -> None:
    worker.poll = 60.0  # only the signal can wake it in time
    task = asyncio.create_task(worker.run())
    try:
        await queued.ingest(caller, req("one"))
        for _ in range(200):
            if index.memories:
                break
            await asyncio.sleep(0.01)
        assert memory_texts(index) == ["one"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_worker_not_forever_finishes_the_queue_and_stops(
    queued: IngestService, worker: IngestWorker, index: InMemoryIndex, caller: Caller
) -> None:
    await queued.ingest(caller, req("one"))
    await queued.ingest(caller, req("two", cid="c2"))
    worker.forever = False
    await asyncio.wait_for(worker.run(), 5)
    assert memory_texts(index) == ["one", "two"]


async def test_documents_report_queued_and_list_processing(
    queued: IngestService,
    worker: IngestWorker,
    store: InMemoryStore,
    index: InMemoryIndex,
    caller: Caller,
) -> None:
    documents = DocumentService(
        ingest=queued,
        conversations=ConversationService(store=store, index=index, threads=store),
        store=store,
        index=index,
    )
    added = await documents.add(caller, DocumentIn(content=(ContentPart.from_text("a note"),)))
    assert added.queued
    other = Caller("t2", "k2")
    await documents.add(other, DocumentIn(content=(ContentPart.from_text("theirs"),)))
    processing = await documents.processing(caller)
    assert [c.id for c in processing] == [added.id]  # not the other tenant's
    assert status(await documents.get(caller, added.id)) == "queued"
    scoped = Caller("t1", "k3", tags=("blue",))
    assert await documents.processing(scoped) == ()  # not another scope's
    await finish(worker)
    assert await documents.processing(caller) == ()
    assert status(await documents.get(caller, added.id)) == "done"
