"""AND/OR/NOT and substring conditions as Elasticsearch queries, against hostile keys and text.

The random filters of the contract use plain keys and texts; here keys differ only by
case, and texts hold every character Lucene's wildcard and regexp syntaxes reserve.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memoryd.adapters.storage.elasticsearch._filters import filter_query
from memoryd.core.errors import ValidationFailed
from memoryd.core.filters import AllOf, AnyOf, Clause, Condition, MemoryFilter, Not
from memoryd.core.model import Memory, Scalar
from tests.unit.test_es_filters import document, holds, well_formed

T = datetime(2025, 1, 1, tzinfo=UTC)
RESERVED = '.?+*|{}[]()"\\#@&<>~-^$'
METADATA: list[dict[str, Scalar]] = [
    {"key": "abc", "Key": "XYZ"},
    {"key": "xyz"},
    {"Key": "abc"},
    {"key": f"a{RESERVED}b"},
    {"key": f"A{RESERVED.upper()}B", "n": 5},
    {'k\u00e9y"*': "Straße \u212a"},
    {"key": 5},
    {},
]
TEXTS = ["", "a", "A", "abc", "ABC", "xY", RESERVED, f"a{RESERVED}", "*", "?", "\\", "ß", "k"]


def memory(metadata: dict[str, Scalar]) -> Memory:
    return Memory(
        id="m", tenant_id="t", conversation_id="c", text="", positions=(0,), said_at=T,
        container_tags=(), metadata=metadata,
    )  # fmt: skip


def agree(clause: Clause) -> None:
    memory_filter = MemoryFilter("t", conditions=(clause,))
    query = filter_query(memory_filter)
    well_formed(query)
    for metadata in METADATA:
        m = memory(metadata)
        assert holds(query, document(m)) == memory_filter.matches(m), (clause, metadata, query)


@pytest.mark.parametrize("op", ["contains", "icontains"])
@pytest.mark.parametrize("key", ["key", "Key", 'k\u00e9y"*', "n"])
@pytest.mark.parametrize("text", TEXTS)
def test_substrings_mean_the_same(op: str, key: str, text: str) -> None:
    agree(Condition(key, op, text))  # type: ignore[arg-type]


def test_case_is_ignored_in_the_text_never_in_the_key() -> None:
    clause = Condition("key", "icontains", "XYZ")
    assert [memory_filter_matches(clause, m) for m in METADATA[:3]] == [False, True, False]
    agree(clause)


def memory_filter_matches(clause: Clause, metadata: dict[str, Scalar]) -> bool:
    return MemoryFilter("t", conditions=(clause,)).matches(memory(metadata))


YES, NO = Condition("key", "eq", "abc"), Condition("key", "eq", "nothing")


@pytest.mark.parametrize(
    "clause",
    [
        AllOf(()),
        AnyOf(()),
        Not(AnyOf(())),
        Not(AllOf(())),
        AnyOf((YES, Condition("Key", "contains", "b"))),
        AllOf((YES, Not(NO))),
        Not(AnyOf((YES, AllOf((NO,)), Condition("n", "gt", 1)))),
        AnyOf((AllOf(()), NO)),
    ],
)
def test_boolean_clauses_mean_the_same(clause: Clause) -> None:
    agree(clause)


def test_an_ignore_case_regexp_over_elasticsearchs_limit_is_a_400() -> None:
    key = "\u00e9" * 128  # JSON writes each as \u00e9; the regexp escapes the backslash
    with pytest.raises(ValidationFailed) as raised:
        filter_query(MemoryFilter("t", conditions=(Condition(key, "icontains", "a" * 100),)))
    assert "index.max_regex_length" in raised.value.errors[0].message
