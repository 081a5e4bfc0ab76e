"""``MemoryFilter`` -> Elasticsearch query (``_filters``), with no cluster.

Each translated query is checked for shape (only the clauses and fields the
memories mapping has, every clause well-formed) and for meaning: a small
evaluator of that query subset, over the fields a memory document carries,
must agree with ``MemoryFilter.matches`` on every memory.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from memoryd.adapters.storage.elasticsearch._filters import (
    MATCH_NONE,
    condition_query,
    filter_query,
    metadata_terms,
    term,
    to_micros,
)
from memoryd.core.filters import Condition, MemoryFilter
from memoryd.core.model import Memory, Scalar
from memoryd.testing.contract import T0, random_filter, random_memories

#: The memories mapping's fields a filter may use, and their Elasticsearch types.
FIELDS = {"tenant": "keyword", "tags": "keyword", "said_at_us": "long", "metadata_terms": "keyword"}
RANGE_OPS = {"gt", "gte", "lt", "lte"}


def well_formed(query: Any) -> None:
    """Raise AssertionError unless ``query`` is a well-formed clause of the subset used."""
    assert isinstance(query, dict), query
    assert len(query) == 1, query
    ((kind, body),) = query.items()
    if kind in {"match_none", "match_all"}:
        assert body == {}
        return
    if kind == "bool":
        assert body, body
        assert set(body) <= {"filter", "must_not", "should", "minimum_should_match"}, body
        # A should beside a filter would only score: it must always be required.
        assert ("should" in body) == (body.get("minimum_should_match") == 1), body
        for name, clauses in body.items():
            if name == "minimum_should_match":
                continue
            assert isinstance(clauses, list), body
            assert clauses, body
            for clause in clauses:
                well_formed(clause)
        return
    assert kind in {"term", "terms", "range", "wildcard", "regexp"}, kind
    assert isinstance(body, dict), body
    assert len(body) == 1, body
    ((field, value),) = body.items()
    assert field in FIELDS, field
    scalar = str if FIELDS[field] == "keyword" else int
    if kind in {"wildcard", "regexp"}:
        assert FIELDS[field] == "keyword", field
        assert isinstance(value, dict), value
        assert type(value["value"]) is str, value
        assert set(value) == ({"value"} if kind == "wildcard" else {"value", "flags"}), value
        assert kind == "wildcard" or value["flags"] == "NONE", value
    elif kind == "term":
        assert type(value) is scalar, value
    elif kind == "terms":  # an empty terms list is refused by Elasticsearch 8
        assert isinstance(value, list), value
        assert value, value
        assert all(type(v) is scalar for v in value), value
    else:
        assert isinstance(value, dict), value
        assert value, value
        assert set(value) <= RANGE_OPS, value
        assert all(type(v) is scalar for v in value.values()), value
        assert not {"gt", "gte"} <= set(value), value
        assert not {"lt", "lte"} <= set(value), value


def document(memory: Memory) -> dict[str, list[Any]]:
    """The filterable fields of the memory's document (as ``_codec.index_doc`` writes them)."""
    return {
        "tenant": [memory.tenant_id],
        "tags": list(memory.container_tags),
        "said_at_us": [to_micros(memory.said_at)],
        "metadata_terms": metadata_terms(memory.metadata),
    }


def holds(query: Any, doc: Mapping[str, list[Any]]) -> bool:
    """Whether Elasticsearch would match the document (keyword ranges compare as text)."""
    ((kind, body),) = query.items()
    if kind in {"match_none", "match_all"}:
        return kind == "match_all"
    if kind == "bool":
        return (
            all(holds(c, doc) for c in body.get("filter", []))
            and not any(holds(c, doc) for c in body.get("must_not", []))
            and ("should" not in body or any(holds(c, doc) for c in body["should"]))
        )
    ((field, value),) = body.items()
    values = doc[field]
    if kind in {"wildcard", "regexp"}:
        pattern = (_wildcard if kind == "wildcard" else _regexp)(value["value"])
        return any(pattern.fullmatch(v) for v in values)
    if kind == "term":
        return value in values
    if kind == "terms":
        return any(v in values for v in value)
    checks = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    return any(all(checks[op](v, bound) for op, bound in value.items()) for v in values)


def _wildcard(pattern: str) -> re.Pattern[str]:
    """Lucene's wildcard syntax: ``*``, ``?`` and ``\\`` escapes."""
    out, chars = [], iter(pattern)
    for c in chars:
        out.append({"*": ".*", "?": "."}.get(c) or re.escape(next(chars) if c == "\\" else c))
    return re.compile("".join(out), re.S)


def _regexp(pattern: str) -> re.Pattern[str]:
    """The subset of Lucene's regexp syntax (flags NONE) that ``_filters`` writes: literals,
    ``\\`` escapes, ``.``, ``*`` and ``[...]`` classes of literals."""
    out, chars = [], iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars)))
        elif c in ".*":
            out.append(c)
        elif c == "[":
            members = "".join(iter(lambda: next(chars), "]"))
            assert members, pattern
            assert not {"\\", "-"} & set(members), pattern
            out.append(f"[{re.escape(members)}]")
        else:
            assert c.isalnum() or not c.isascii(), pattern  # Lucene reserves the rest
            out.append(c)
    return re.compile("".join(out), re.S)


MEMORIES = [item.memory for item in random_memories(300, seed=4)] + [
    item.memory for item in random_memories(20, seed=5, tenant="other")
]


@pytest.mark.parametrize("seed", range(4))
def test_random_filters_translate_to_well_formed_queries_that_mean_the_same(seed: int) -> None:
    rng = random.Random(seed)
    docs = [(m, document(m)) for m in MEMORIES]
    matched = 0
    for _ in range(150):
        memory_filter = random_filter(rng, "acme")
        query = filter_query(memory_filter)
        well_formed(query)
        # The tenant's clause always comes first.
        assert query["bool"]["filter"][0] == {"term": {"tenant": "acme"}}
        for memory, doc in docs:
            want = memory_filter.matches(memory)
            assert holds(query, doc) == want, (memory_filter, memory.metadata, query)
            matched += want
    assert matched > 0  # the filters are not all empty ones


def _memory(metadata: Mapping[str, Scalar], **kw: Any) -> Memory:
    base = MEMORIES[0]
    return Memory(
        id="m",
        tenant_id=kw.get("tenant", "acme"),
        conversation_id="c",
        text="x",
        positions=(0,),
        said_at=kw.get("said_at", T0),
        container_tags=kw.get("tags", ()),
        metadata=dict(metadata),
        created_at=base.created_at,
        updated_at=base.updated_at,
    )


def _agrees(condition: Condition, metadata: Mapping[str, Scalar]) -> bool:
    """Whether the condition holds for the metadata, after checking ES agrees."""
    query = condition_query(condition)
    well_formed(query)
    memory = _memory(metadata)
    got = holds(query, document(memory))
    assert got == condition.matches(metadata), (condition, metadata, query)
    return got


@pytest.mark.parametrize(
    "condition",
    [
        Condition(key="a", op="gt", value="x"),  # ranges compare numbers only
        Condition(key="a", op="lte", value=True),
        Condition(key="a", op="in", value=()),  # in nothing
        Condition(key="a", op="eq", value=float("nan")),  # equals nothing
        Condition(key="a", op="gte", value=float("nan")),
        Condition(key="a", op="in", value=(float("nan"),)),
    ],
)
def test_conditions_that_can_never_match_are_match_none(condition: Condition) -> None:
    assert condition_query(condition) == MATCH_NONE
    for value in (1, 2.5, "x", True):
        assert not _agrees(condition, {"a": value})


def test_an_integer_beyond_float64_equals_nothing() -> None:
    # (MemoryFilter.matches raises OverflowError on such a value; the query matches none.)
    assert condition_query(Condition(key="a", op="eq", value=10**400)) == MATCH_NONE
    assert condition_query(Condition(key="a", op="gt", value=10**400)) == MATCH_NONE
    assert term("a", 10**400) is None


def test_ne_of_what_nothing_equals_matches_everything() -> None:
    query = condition_query(Condition(key="a", op="ne", value=float("nan")))
    assert query == {"bool": {"must_not": [MATCH_NONE]}}
    assert holds(query, document(_memory({})))
    assert holds(query, document(_memory({"a": 1})))


def test_numbers_compare_by_value_2_equals_2_0() -> None:
    assert term("a", 2) == term("a", 2.0)
    assert term("a", -0.0) == term("a", 0)
    for value in (2, 2.0):
        assert _agrees(Condition(key="a", op="eq", value=value), {"a": 2})
        assert _agrees(Condition(key="a", op="eq", value=value), {"a": 2.0})
        assert _agrees(Condition(key="a", op="in", value=(value, "z")), {"a": 2.0})
        assert not _agrees(Condition(key="a", op="ne", value=value), {"a": 2})
        assert _agrees(Condition(key="a", op="gte", value=value), {"a": 2})
        assert not _agrees(Condition(key="a", op="gt", value=value), {"a": 2.0})
    # A number is not its text.
    assert not _agrees(Condition(key="a", op="eq", value=2), {"a": "2"})
    assert not _agrees(Condition(key="a", op="eq", value="2"), {"a": 2})
    assert not _agrees(Condition(key="a", op="gt", value=1), {"a": "2"})


@pytest.mark.parametrize("value", [-1e300, -3, -2.5, -1e-300, 0, 1e-300, 0.5, 1, 2, 1e15, 1e300])
def test_ranges_order_numbers_as_numbers(value: float) -> None:
    """Text order of the encoded numbers is numeric order, across signs and magnitudes."""
    for bound in (-1e300, -3, -2.5, -1e-300, 0, 1e-300, 0.5, 1, 2, 1e15, 1e300):
        for op in ("gt", "gte", "lt", "lte"):
            _agrees(Condition(key="a", op=op, value=bound), {"a": value})  # type: ignore[arg-type]


def test_booleans_are_not_the_strings_true_and_false_nor_one_and_zero() -> None:
    assert len({term("a", True), term("a", "true"), term("a", 1), term("a", "1")}) == 4
    assert _agrees(Condition(key="a", op="eq", value=True), {"a": True})
    assert not _agrees(Condition(key="a", op="eq", value=True), {"a": "true"})
    assert not _agrees(Condition(key="a", op="eq", value="true"), {"a": True})
    assert not _agrees(Condition(key="a", op="eq", value=True), {"a": 1})
    assert not _agrees(Condition(key="a", op="eq", value=1), {"a": True})
    assert not _agrees(Condition(key="a", op="eq", value=False), {"a": 0})
    assert _agrees(Condition(key="a", op="ne", value=True), {"a": "true"})
    assert not _agrees(Condition(key="a", op="gte", value=0), {"a": True})
    assert _agrees(Condition(key="a", op="in", value=(False, "x")), {"a": False})


@pytest.mark.parametrize("key", ["a", "ab", 'a"', "a\\", "é", ""])
def test_no_key_reaches_another_keys_values(key: str) -> None:
    """Keys that are prefixes of each other, or hold quotes, keep their own terms and ranges."""
    others: dict[str, Scalar] = {k: 5 for k in ["a", "ab", 'a"', "a\\", "é", ""] if k != key}
    assert not _agrees(Condition(key=key, op="gt", value=1), others)
    assert not _agrees(Condition(key=key, op="eq", value=5), others)
    assert _agrees(Condition(key=key, op="gt", value=1), {**others, key: 2})


def test_tags_dates_and_tenant() -> None:
    f = MemoryFilter(
        tenant_id="acme",
        container_tags=("red", "blue"),
        after=T0 + timedelta(days=1),
        before=T0 + timedelta(days=2),
    )
    query = filter_query(f)
    well_formed(query)
    day = T0 + timedelta(days=1)
    cases = [
        _memory({}, tags=("red",), said_at=day),
        _memory({}, tags=("blue", "gold"), said_at=day + timedelta(hours=23, microseconds=999999)),
        _memory({}, tags=("gold",), said_at=day),
        _memory({}, tags=("red",), said_at=day - timedelta(microseconds=1)),
        _memory({}, tags=("red",), said_at=day + timedelta(days=1)),  # before is exclusive
        _memory({}, tags=("red",), said_at=day, tenant="other"),
    ]
    assert [holds(query, document(m)) for m in cases] == [f.matches(m) for m in cases]
    assert [f.matches(m) for m in cases] == [True, True, False, False, False, False]
