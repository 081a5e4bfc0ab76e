"""Which memories a search may return: tenant, container tags, metadata, time.

``MemoryFilter.matches`` is the reference meaning of a filter. Index adapters
apply the same meaning inside their scan (for speed), and their tests compare
against this function.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, TypeAlias

from attrs import frozen

from memoryd.core.model import Memory, Scalar

Operator: TypeAlias = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
OPERATORS: tuple[Operator, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "in")
NUMERIC_OPERATORS: frozenset[Operator] = frozenset({"gt", "gte", "lt", "lte"})


@frozen
class Condition:
    """One metadata condition: ``metadata[key] <op> value``.

    ``eq``/``ne`` compare any scalar (booleans only equal booleans, numbers
    compare by value); ``gt``/``gte``/``lt``/``lte`` compare numbers only and
    never match a memory whose value is missing or not a number; ``in`` takes
    a tuple of scalars. ``ne`` matches a memory that lacks the key.
    """

    key: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]

    def matches(self, metadata: Mapping[str, Scalar]) -> bool:
        if self.key not in metadata:
            return self.op == "ne"
        actual = metadata[self.key]
        if self.op == "eq":
            return _same(actual, self.value)
        if self.op == "ne":
            return not _same(actual, self.value)
        if self.op == "in":
            values = self.value if isinstance(self.value, tuple) else (self.value,)
            return any(_same(actual, v) for v in values)
        if not _is_number(actual) or not _is_number(self.value):
            return False
        a, b = float(actual), float(self.value)  # type: ignore[arg-type]
        return {
            "gt": a > b,
            "gte": a >= b,
            "lt": a < b,
            "lte": a <= b,
        }[self.op]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)  # type: ignore[arg-type]
    return a == b


@frozen
class MemoryFilter:
    """Everything a memory must satisfy to be returned, for one tenant."""

    tenant_id: str
    #: The memory must carry at least one of these tags; empty means any tags.
    container_tags: tuple[str, ...] = ()
    #: Every condition must hold (AND).
    conditions: tuple[Condition, ...] = ()
    #: Only memories said at or after this time.
    after: datetime | None = None
    #: Only memories said strictly before this time.
    before: datetime | None = None

    @property
    def is_restrictive(self) -> bool:
        """Whether anything beyond the tenant narrows the search."""
        return bool(self.container_tags or self.conditions or self.after or self.before)

    def matches(self, memory: Memory) -> bool:
        if memory.tenant_id != self.tenant_id:
            return False
        if self.container_tags and not set(self.container_tags) & set(memory.container_tags):
            return False
        if self.after is not None and memory.said_at < self.after:
            return False
        if self.before is not None and memory.said_at >= self.before:
            return False
        return all(c.matches(memory.metadata) for c in self.conditions)
