"""The reference meaning of search filters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memoryd.core.filters import Condition, MemoryFilter
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
