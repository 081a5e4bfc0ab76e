"""The reference meaning of search filters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memoryd.core.filters import (
    AllOf,
    AnyOf,
    Clause,
    Condition,
    MemoryFilter,
    Not,
    case_variants,
    clause_conditions,
    clause_depth,
)
from memoryd.core.model import Memory

META = {"n": 5, "f": 2.5, "s": "x", "b": True}


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (Condition("n", "eq", 5), True),
        (Condition("n", "eq", 5.0), True),
        (Condition("n", "eq", "5"), False),
        (Condition("b", "eq", True), True),
        (Condition("b", "eq", 1), False),
        (Condition("n", "eq", True), False),
        (Condition("s", "ne", "y"), True),
        (Condition("missing", "ne", "y"), True),
        (Condition("missing", "eq", "y"), False),
        (Condition("n", "gt", 4), True),
        (Condition("n", "gt", 5), False),
        (Condition("n", "gte", 5), True),
        (Condition("f", "lt", 3), True),
        (Condition("f", "lte", 2.5), True),
        (Condition("s", "gt", 1), False),
        (Condition("b", "gt", 0), False),
        (Condition("missing", "lt", 10), False),
        (Condition("s", "in", ("a", "x")), True),
        (Condition("n", "in", (1, 2)), False),
    ],
)
def test_condition(cond: Condition, expected: bool) -> None:
    assert cond.matches(META) is expected


def mem(tags: tuple[str, ...], when: datetime, tenant: str = "t") -> Memory:
    return Memory(
        id="m",
        tenant_id=tenant,
        conversation_id="c",
        text="",
        positions=(0,),
        said_at=when,
        container_tags=tags,
        metadata=META,
    )


def test_filter_tenant_tags_and_time() -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    m = mem(("a", "b"), when)
    assert MemoryFilter("t").matches(m)
    assert not MemoryFilter("other").matches(m)
    assert MemoryFilter("t", container_tags=("b", "z")).matches(m)
    assert not MemoryFilter("t", container_tags=("z",)).matches(m)
    assert MemoryFilter("t", after=when).matches(m)
    assert not MemoryFilter("t", before=when).matches(m)
    assert MemoryFilter("t", before=datetime(2024, 5, 2, tzinfo=UTC)).matches(m)
    assert not MemoryFilter("t", conditions=(Condition("n", "lt", 0),)).matches(m)


# --- clauses: AND / OR / NOT, and substrings -------------------------------------------------

TEXT = {"t": "Trip to Paris", "n": 5, "b": True}


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (Condition("t", "contains", "Paris"), True),
        (Condition("t", "contains", "paris"), False),
        (Condition("t", "contains", ""), True),
        (Condition("t", "icontains", "pARIS"), True),
        (Condition("t", "icontains", "trip TO"), True),
        (Condition("t", "icontains", "Lyon"), False),
        (Condition("n", "contains", "5"), False),  # only strings hold text
        (Condition("b", "icontains", "true"), False),
        (Condition("missing", "contains", ""), False),
    ],
)
def test_substring_conditions(cond: Condition, expected: bool) -> None:
    assert cond.matches(TEXT) is expected


def test_ignoring_case_is_character_by_character() -> None:
    assert case_variants("a") == "aA"
    assert case_variants("É") == "Éé"
    assert case_variants("ß") == "ß"  # its upper case is two characters
    assert case_variants("7") == "7"
    assert Condition("k", "icontains", "straße").matches({"k": "STRAßE"})
    assert not Condition("k", "icontains", "strasse").matches({"k": "STRAßE"})
    # The Kelvin sign lower-cases to "k", but "k"'s variants are "k" and "K" only.
    assert not Condition("k", "icontains", "k").matches({"k": "\u212a"})
    assert Condition("k", "icontains", "a.b").matches({"k": "A.B"})
    assert not Condition("k", "icontains", "a.b").matches({"k": "AxB"})


YES, NO = Condition("n", "eq", 5), Condition("n", "eq", 6)


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        (AllOf(()), True),
        (AnyOf(()), False),
        (AllOf((YES, YES)), True),
        (AllOf((YES, NO)), False),
        (AnyOf((NO, YES)), True),
        (AnyOf((NO, NO)), False),
        (Not(NO), True),
        (Not(YES), False),
        (Not(AnyOf(())), True),
        (AnyOf((AllOf((YES, Not(NO))), NO)), True),
        (Not(Condition("missing", "eq", 1)), True),  # a memory without the key passes NOT
        (Not(Condition("missing", "gt", 1)), True),
    ],
)
def test_clauses(clause: Clause, expected: bool) -> None:
    assert clause.matches(TEXT) is expected


def test_depth_and_conditions_of_a_clause() -> None:
    clause = AllOf((YES, AnyOf((Not(NO), AllOf(())))))
    assert (clause_depth(clause), clause_conditions(clause)) == (3, 2)
    assert (clause_depth(YES), clause_conditions(YES)) == (0, 1)


def test_a_filter_ands_its_clauses() -> None:
    m = mem((), datetime(2024, 5, 1, tzinfo=UTC))
    assert MemoryFilter("t", conditions=(AnyOf((NO, Condition("s", "eq", "x"))),)).matches(m)
    assert not MemoryFilter("t", conditions=(AnyOf((NO,)), YES)).matches(m)
    assert not MemoryFilter("t", conditions=(AnyOf(()),)).matches(m)
