"""The profile rule (memoryd.core.profile) and the memory editor over the fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memoryd.core.errors import Forbidden, NotFound, QuotaExceeded
from memoryd.core.indexer import Indexer
from memoryd.core.ingest import IngestRequest, IngestService
from memoryd.core.memory_edits import MemoryEditService, MemoryRef, MemoryUpdate
from memoryd.core.model import Caller, Memory, Message
from memoryd.core.profile import (
    MIN_REFERENCES,
    ProfileEntry,
    ProfileRequest,
    ProfileService,
    build_profile,
    content_words,
)
from memoryd.core.retrieval import SearchRequest, SearchService
from memoryd.testing import FakeEmbedder, FixedClock, InMemoryIndex, InMemoryStore, WordCounter

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def memory(i: int, text: str, *, hours: int | None = None) -> Memory:
    return Memory(
        id=f"m{i}",
        tenant_id="t1",
        conversation_id="c1",
        text=text,
        positions=(i,),
        said_at=T0 + timedelta(hours=i if hours is None else hours),
    )


def test_content_words_drop_short_and_stop_words() -> None:
    assert content_words("I really LOVE the Alps, and hiking 2024!") == {"love", "alps", "hiking"}


def test_static_is_what_later_memories_refer_back_to() -> None:
    memories = [
        memory(0, "Hiking in the Alps mountains"),
        memory(1, "New hiking boots for mountains"),
        memory(2, "Hiking mountains again"),
        memory(3, "Mountains and hiking, once more"),
        memory(4, "Violin lessons started"),
        memory(5, "violin   LESSONS started"),  # the same text: kept once
    ]
    profile = build_profile(list(reversed(memories)))  # any order in
    assert [(e.memory.id, e.references) for e in profile.static] == [("m0", 3), ("m1", 2)]
    assert all(e.references >= MIN_REFERENCES for e in profile.static)
    assert [e.memory.id for e in profile.dynamic] == ["m5", "m3", "m2"]


def test_ties_go_to_the_older_and_limits_hold() -> None:
    memories = [memory(i, f"garden tomatoes batch{i}") for i in range(30)]
    profile = build_profile(memories, max_items=5)
    assert [e.memory.id for e in profile.static] == ["m0", "m1", "m2", "m3", "m4"]
    assert [e.memory.id for e in profile.dynamic] == ["m29", "m28", "m27", "m26", "m25"]
    assert build_profile([]).static == ()


@pytest.fixture
def services() -> tuple[IngestService, MemoryEditService, ProfileService, SearchService]:
    store, index, embedder, clock = InMemoryStore(), InMemoryIndex(), FakeEmbedder(), FixedClock()
    indexer = Indexer(store, index)
    ingest = IngestService(
        store=store, index=index, embedder=embedder, tokens=WordCounter(), clock=clock,
        indexer=indexer,
    )  # fmt: skip
    edits = MemoryEditService(
        store=store, embedder=embedder, tokens=WordCounter(), clock=clock, threads=store,
        indexer=indexer,
    )  # fmt: skip
    search = SearchService(index=index, embedder=embedder)
    return ingest, edits, ProfileService(store=store, search=search), search


FULL = Caller(tenant_id="t1", key_id="k1")


async def test_update_and_forget_over_the_fakes(
    services: tuple[IngestService, MemoryEditService, ProfileService, SearchService],
) -> None:
    ingest, edits, profiles, search = services
    messages = (Message.from_text("user", "apples and pears"), Message.from_text("user", "kiwi"))
    await ingest.ingest(FULL, IngestRequest("c1", messages, container_tags=("a",)))
    ref = MemoryRef(tag="a", content="apples and pears")
    changed = await edits.update(
        FULL, MemoryUpdate(ref=ref, new_content="plums", metadata={"k": 1})
    )
    assert (changed.text, dict(changed.metadata)) == ("plums", {"k": 1})
    found = await search.search(FULL, SearchRequest(q="plums", container_tags=("a",)))
    assert found[0].memory.text == "plums"
    with pytest.raises(NotFound):
        await edits.update(FULL, MemoryUpdate(ref=ref, new_content="x"))  # the old text is gone
    with pytest.raises(NotFound):
        await edits.forget(FULL, MemoryRef(tag="b", id=changed.id))  # another tag
    with pytest.raises(Forbidden):
        await edits.forget(
            Caller(tenant_id="t1", key_id="k2", tags=("b",)), MemoryRef(tag="a", id=changed.id)
        )
    wide = MemoryRef(tag="a", id=changed.id)
    await ingest.ingest(FULL, IngestRequest("c2", messages[:1], container_tags=("a", "b")))
    (both,) = await edits.find(FULL, MemoryRef(tag="b", content="apples and pears"))
    narrow = Caller(tenant_id="t1", key_id="k3", tags=("a",))
    with pytest.raises(NotFound):  # it holds "a", not "b"
        await edits.forget(narrow, MemoryRef(tag="a", id=both.id))
    assert await edits.find(narrow, wide)
    poor = Caller(tenant_id="t1", key_id="k1", quota_tokens=1, used_tokens=1)
    with pytest.raises(QuotaExceeded):
        await edits.update(
            poor, MemoryUpdate(ref=MemoryRef(tag="a", id=changed.id), new_content="y")
        )
    assert await edits.forget(FULL, MemoryRef(tag="a", id=changed.id)) == (changed.id,)
    result = await profiles.profile(FULL, ProfileRequest(container_tag="a", q="plums"))
    assert [e.memory.text for e in result.profile.dynamic] == ["kiwi", "apples and pears"]
    assert result.search_results is not None
    assert "plums" not in [r.memory.text for r in result.search_results]


async def test_a_model_condenses_sections_citing_their_memories() -> None:
    from memoryd.core.profile_condense import condense
    from memoryd.testing import ScriptedChatModel

    texts = ["Alps hiking", "Alps hiking again", "Hiking the Alps"]
    entries = tuple(ProfileEntry(memory(i, t), 0) for i, t in enumerate(texts))
    answer = "Facts:\n- Hikes in the Alps [1, 3]\n* Made up [7]\n2. Hikes often [2].\nno citation\n"
    model = ScriptedChatModel(chunks=(answer[:20], answer[20:]))
    result = await condense(model, entries)
    assert result.condensed
    ids = [e.memory.id for e in entries]
    assert [(f.text, f.memory_ids) for f in result.facts] == [
        ("Hikes in the Alps.", (ids[0], ids[2])),
        ("Hikes often.", (ids[1],)),
    ]
    # The memories are in the prompt, numbered, as text and as values.
    system, *_, user = model.prompts[0]
    assert system.memories == tuple(e.memory for e in entries)
    assert "[1] Alps hiking" in user.content
    # Nothing usable, or a failing model: the rule's entries stand.
    for failing in (ScriptedChatModel(chunks=("I cannot help.",)), ScriptedChatModel(fail_after=0)):
        kept = await condense(failing, entries)
        assert not kept.condensed
        assert [f.memory_ids for f in kept.facts] == [(i,) for i in ids]
