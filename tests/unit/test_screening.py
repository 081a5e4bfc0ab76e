"""Filters at ingest and search: screening, redaction patterns, and the MMR and recency math."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import numpy as np
import pytest

from memoryd.core.model import Memory, MemoryDraft, ScoredMemory
from memoryd.core.ports import RerankCandidate
from memoryd.core.screening import screen_contexts, screen_drafts, screen_results
from memoryd.plugins.builtin.mmr import MmrReranker, memory_vector
from memoryd.plugins.builtin.recency import RecencyReranker
from memoryd.plugins.builtin.redact import Redactor, luhn

WHEN = datetime(2024, 5, 8, tzinfo=UTC)


def draft(text: str, context: str = "") -> MemoryDraft:
    return MemoryDraft(
        text=text, embed_texts=(text,), positions=(0,), said_at=WHEN, keyword_context=context
    )


def memory(memory_id: str, text: str = "x", said_at: datetime = WHEN) -> Memory:
    return Memory(
        id=memory_id, tenant_id="t", conversation_id=memory_id, text=text, positions=(0,),
        said_at=said_at,
    )  # fmt: skip


@attrs.frozen
class Upper:
    name: str = "upper"

    async def on_draft(self, d: MemoryDraft) -> MemoryDraft | None:
        return None if "reject" in d.text else attrs.evolve(d, text=d.text.upper())

    async def on_result(self, m: Memory) -> Memory | None:
        return None if m.id == "drop" else attrs.evolve(m, text=m.text.upper())


async def test_drafts_pass_every_filter_in_order_and_rejected_ones_go() -> None:
    kept = await screen_drafts([Upper()], [draft("a"), draft("reject me"), draft("b")])
    assert [d.text for d in kept] == ["A", "B"]
    assert await screen_drafts([], [draft("a")]) == [draft("a")]


async def test_context_updates_are_screened_as_context_only_drafts() -> None:
    redact = Redactor()
    updates = await screen_contexts([redact], [(0, "mail me at a@b.example")], [draft("x")])
    assert updates == [(0, "mail me at [email]")]


async def test_a_dropped_result_makes_room_for_the_next() -> None:
    results = [ScoredMemory(memory(i), 1.0, 1.0) for i in ("a", "drop", "b", "c")]
    kept = await screen_results([Upper()], results, limit=2)
    assert [(r.memory.id, r.memory.text) for r in kept] == [("a", "X"), ("b", "X")]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to jane.doe+x@mail.example.org now", "write to [email] now"),
        ("card 4111-1111-1111-1111.", "card [card]."),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("AKIAIOSFODNN7EXAMPLE", "[secret]"),
        ("key md_Zq8Xr2Lm5Nv7Tb1Yc4WdZq8Xr2Lm5Nv7Tb1Yc4Wd", "key [secret]"),
        ("token 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "token [secret]"),
    ],
)
def test_redact_masks_each_kind(text: str, masked: str) -> None:
    assert Redactor().redact(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "On 2023-05-08 at 10:30 we were 3 people in room 12.",
        "Not a card: 4111 1111 1111 1112 fails Luhn.",
        "internationalisation-and-localisation-are-long-words",
    ],
)
def test_redact_leaves_ordinary_text(text: str) -> None:
    assert Redactor().redact(text) == text


def test_luhn() -> None:
    assert luhn("4111111111111111")
    assert not luhn("4111111111111112")


def candidate(memory_id: str, score: float, *rows: list[float], days: int = 0) -> RerankCandidate:
    vectors = np.array(rows, dtype=np.float32) if rows else None
    when = datetime(2024, 1, 1 + days, tzinfo=UTC)
    return RerankCandidate(memory(memory_id, said_at=when), score, score, vectors=vectors)


def test_a_memorys_vector_is_the_normalised_mean_of_its_pieces() -> None:
    vector = memory_vector(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert np.allclose(vector, [2**-0.5, 2**-0.5])
    assert memory_vector(None) is None


def test_mmr_puts_a_near_duplicate_after_a_different_memory() -> None:
    pool = [
        candidate("a", 1.0, [1.0, 0.0]),
        candidate("a-again", 0.95, [0.99, 0.14]),
        candidate("b", 0.7, [0.0, 1.0]),
    ]
    assert [c.memory.id for c in MmrReranker(0.5).rerank("q", pool)] == ["a", "b", "a-again"]
    assert [c.memory.id for c in MmrReranker(1.0).rerank("q", pool)] == ["a", "a-again", "b"]
    no_vectors = [candidate("a", 1.0), candidate("b", 0.5)]
    assert MmrReranker().rerank("q", no_vectors) == no_vectors


async def test_recency_favours_the_newer_of_two_equal_memories() -> None:
    pool = [candidate("old", 0.8, days=0), candidate("new", 0.8, days=30)]
    reranked = await RecencyReranker(half_life_days=30, weight=0.5).rerank("q", pool)
    assert [c.memory.id for c in reranked] == ["new", "old"]
    assert reranked[0].score == pytest.approx(0.8)
    assert reranked[1].score == pytest.approx(0.8 * (0.5 + 0.5 * 0.5))
