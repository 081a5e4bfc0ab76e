"""The ingest use case: upsert semantics, tags, quotas."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from memoryd.core.errors import Forbidden, QuotaExceeded
from memoryd.core.ingest import OFF_LOOP_CHARS, IngestRequest, IngestService, classify
from memoryd.core.model import Caller, Message, StoredMessage
from memoryd.testing import FakeEmbedder, FixedClock, InMemoryIndex, InMemoryStore, WordCounter


def msgs(*texts: str) -> tuple[Message, ...]:
    roles = ("user", "assistant")
    return tuple(Message.from_text(roles[i % 2], t) for i, t in enumerate(texts))


def req(*texts: str, cid: str = "c1", **kw: object) -> IngestRequest:
    return IngestRequest(conversation_id=cid, messages=msgs(*texts), **kw)  # type: ignore[arg-type]


async def test_new_conversation_stores_messages_and_embeds_each(
    ingest: IngestService,
    store: InMemoryStore,
    index: InMemoryIndex,
    embedder: FakeEmbedder,
    caller: Caller,
) -> None:
    result = await ingest.ingest(caller, req("I love hiking", "Where do you hike?"))
    assert (result.kind, result.messages_added, result.memories_added) == ("created", 2, 2)
    conv = store.conversations[("t1", (), "c1")]
    assert [m.message.text for m in conv.messages] == ["I love hiking", "Where do you hike?"]
    assert [m.position for m in conv.messages] == [0, 1]
    assert embedder.texts_embedded == 2
    assert sorted(m.positions for m in index.memories.values()) == [(0,), (1,)]


async def test_same_messages_change_nothing(
    ingest: IngestService,
    store: InMemoryStore,
    embedder: FakeEmbedder,
    caller: Caller,
    index: InMemoryIndex,
) -> None:
    await ingest.ingest(caller, req("a b", "c d"))
    before = dict(index.memories)
    result = await ingest.ingest(caller, req("a b", "c d"))
    assert (result.kind, result.messages_added, result.memories_added) == ("unchanged", 0, 0)
    assert embedder.texts_embedded == 2
    assert index.memories == before
    assert len(store.conversations[("t1", (), "c1")].messages) == 2


async def test_append_embeds_only_new_messages(
    ingest: IngestService,
    store: InMemoryStore,
    embedder: FakeEmbedder,
    caller: Caller,
    index: InMemoryIndex,
    clock: FixedClock,
) -> None:
    await ingest.ingest(caller, req("one", "two"))
    first_received = store.conversations[("t1", (), "c1")].messages[0].received_at
    clock.advance(60)
    result = await ingest.ingest(caller, req("one", "two", "three", "four"))
    assert (result.kind, result.messages_added, result.memories_added) == ("appended", 2, 2)
    assert len(embedder.calls) == 2  # one batch per ingest
    assert len(embedder.calls[-1]) == 2
    assert all("three" in t or "four" in t for t in embedder.calls[-1])
    conv = store.conversations[("t1", (), "c1")]
    assert [m.message.text for m in conv.messages] == ["one", "two", "three", "four"]
    assert conv.messages[0].received_at == first_received
    assert conv.messages[3].received_at > first_received
    assert sorted(m.positions for m in index.memories.values()) == [(0,), (1,), (2,), (3,)]


@pytest.mark.parametrize(
    "new",
    [("one", "TWO"), ("one",), ("two", "one"), ("one", "changed", "three")],
    ids=["edited", "shortened", "reordered", "edited-and-extended"],
)
async def test_other_history_replaces(
    ingest: IngestService,
    store: InMemoryStore,
    embedder: FakeEmbedder,
    caller: Caller,
    index: InMemoryIndex,
    new: tuple[str, ...],
) -> None:
    await ingest.ingest(caller, req("one", "two"))
    old_ids = set(index.memories)
    result = await ingest.ingest(caller, req(*new))
    assert result.kind == "replaced"
    assert (result.memories_removed, result.memories_added) == (2, len(new))
    assert embedder.texts_embedded == 2 + len(new)
    assert not old_ids & set(index.memories)
    assert [m.message.text for m in store.conversations[("t1", (), "c1")].messages] == list(new)


def test_classify_treats_timestamp_as_part_of_the_message() -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    old = Message.from_text("user", "x")
    stored = [StoredMessage(message=old, position=0, received_at=t)]
    assert classify(stored, [old]) == ("unchanged", 1)
    assert classify(stored, [Message.from_text("user", "x", timestamp=t)]) == ("replaced", 0)


async def test_latest_tags_and_metadata_replace_stored_ones(
    ingest: IngestService,
    store: InMemoryStore,
    index: InMemoryIndex,
    caller: Caller,
) -> None:
    await ingest.ingest(caller, req("a", container_tags=("x",), metadata={"k": 1}))
    result = await ingest.ingest(caller, req("a", container_tags=("y",), metadata={"k": 2}))
    assert result.kind == "unchanged"
    assert store.conversations[("t1", (), "c1")].container_tags == ("y",)
    assert [m.container_tags for m in index.memories.values()] == [("y",)]
    assert [dict(m.metadata) for m in index.memories.values()] == [{"k": 2}]


async def test_tag_limited_key_writes_only_its_tags(ingest: IngestService) -> None:
    limited = Caller(tenant_id="t1", key_id="k", tags=("a", "b"))
    with pytest.raises(Forbidden) as err:
        await ingest.ingest(limited, req("x", container_tags=("a", "c")))
    assert err.value.details["containerTags"] == ["c"]
    result = await ingest.ingest(limited, req("x"))  # no tags: the key's own
    assert result.kind == "created"


async def test_a_tag_limited_key_writes_its_own_conversation_of_an_id_used_elsewhere(
    ingest: IngestService,
    store: InMemoryStore,
    index: InMemoryIndex,
    caller: Caller,
) -> None:
    await ingest.ingest(caller, req("x", container_tags=("secret",)))
    limited = Caller(tenant_id="t1", key_id="k", tags=("a",))
    unknown = await ingest.ingest(limited, req("y", cid="never-used", container_tags=("a",)))
    elsewhere = await ingest.ingest(limited, req("y", container_tags=("a",)))
    # The same answer as for an id nobody used: a conversation of the key's own scope.
    assert (elsewhere.kind, elsewhere.messages_added) == (unknown.kind, unknown.messages_added)
    assert elsewhere.kind == "created"
    admins = store.conversations[("t1", (), "c1")]
    assert [m.message.text for m in admins.messages] == ["x"]
    assert admins.container_tags == ("secret",)
    assert store.conversations[("t1", ("a",), "c1")].container_tags == ("a",)
    # Neither conversation's memories took on the other's tags.
    by_text = {m.text: m for m in index.memories.values()}
    assert (by_text["x"].container_tags, by_text["x"].scope) == (("secret",), ())
    assert (by_text["y"].container_tags, by_text["y"].scope) == (("a",), ("a",))
    # The same key writing again updates its own one; the admin's is untouched.
    again = await ingest.ingest(limited, req("y", "z", container_tags=("a",)))
    assert again.kind == "appended"
    assert [m.message.text for m in store.conversations[("t1", (), "c1")].messages] == ["x"]


async def test_keys_with_the_same_tags_in_any_order_share_a_scope(
    ingest: IngestService, store: InMemoryStore
) -> None:
    one = Caller(tenant_id="t1", key_id="k1", tags=("b", "a"))
    other = Caller(tenant_id="t1", key_id="k2", tags=("a", "b", "a"))
    await ingest.ingest(one, req("x"))
    result = await ingest.ingest(other, req("x", "y"))
    assert result.kind == "appended"
    assert set(store.conversations) == {("t1", ("a", "b"), "c1")}


async def test_quota_refusal_stores_nothing(
    ingest: IngestService,
    store: InMemoryStore,
    embedder: FakeEmbedder,
) -> None:
    poor = Caller(tenant_id="t1", key_id="k", quota_tokens=3, used_tokens=2)
    with pytest.raises(QuotaExceeded) as err:
        await ingest.ingest(poor, req("two words"))
    assert err.value.details == {"quotaTokens": 3, "usedTokens": 2, "requestTokens": 2}
    assert store.conversations == {}
    assert embedder.texts_embedded == 0


async def test_tenants_do_not_share_conversations(
    ingest: IngestService,
    store: InMemoryStore,
) -> None:
    await ingest.ingest(Caller(tenant_id="A", key_id="a"), req("alpha"))
    result = await ingest.ingest(Caller(tenant_id="B", key_id="b"), req("beta"))
    assert result.kind == "created"
    assert set(store.conversations) == {("A", (), "c1"), ("B", (), "c1")}


async def test_system_and_tool_messages_are_stored_not_memorised(
    ingest: IngestService,
    store: InMemoryStore,
    index: InMemoryIndex,
    caller: Caller,
) -> None:
    messages = (
        Message.from_text("system", "You are helpful"),
        Message.from_text("user", "hello there"),
        Message(role="tool", content=(), tool_call_id="call_1"),
    )
    await ingest.ingest(caller, IngestRequest(conversation_id="c", messages=messages))
    assert len(store.conversations[("t1", (), "c")].messages) == 3
    assert [m.positions for m in index.memories.values()] == [(1,)]


class ThreadRecordingCounter(WordCounter):
    """Counts words, and records the threads it counted on."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def count(self, text: str) -> int:
        self.threads.add(threading.get_ident())
        return super().count(text)


@pytest.mark.parametrize("chars", [1_000, OFF_LOOP_CHARS + 1])
async def test_a_large_request_counts_and_builds_off_the_event_loop(
    store: InMemoryStore, index: InMemoryIndex, embedder: FakeEmbedder, caller: Caller, chars: int
) -> None:
    counter = ThreadRecordingCounter()
    service = IngestService(
        store=store,
        index=index,
        embedder=embedder,
        tokens=counter,
        clock=FixedClock(),
        max_embed_tokens=10**9,
    )
    text = ("word " * (chars // 5 + 1))[:chars]
    result = await service.ingest(caller, req(text))
    assert result.memories_added >= 1
    loop_thread = threading.get_ident()
    # Small requests stay on the loop (no thread hop); large ones leave it.
    if chars <= OFF_LOOP_CHARS:
        assert counter.threads == {loop_thread}
    else:  # the count and the build may each take any thread of the pool
        assert counter.threads
        assert loop_thread not in counter.threads
