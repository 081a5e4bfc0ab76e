"""Which memories a search may return: tenant, container tags, metadata, time.

``MemoryFilter.matches`` is the reference meaning of a filter. Index adapters
apply the same meaning inside their scan (for speed), and their tests compare
against this function.

Metadata conditions combine into clauses: a :class:`Condition`, or
:class:`AllOf` (AND), :class:`AnyOf` (OR) and :class:`Not` over clauses.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal, TypeAlias

from attrs import frozen

from memoryd.core.model import Memory, Scalar

Operator: TypeAlias = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "icontains"]
#: The operators of the ``{key: {op: value}}`` form (the substring ones come from the
#: ``string_contains`` conditions of the nested form).
OPERATORS: tuple[Operator, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "in")
NUMERIC_OPERATORS: frozenset[Operator] = frozenset({"gt", "gte", "lt", "lte"})
SUBSTRING_OPERATORS: frozenset[Operator] = frozenset({"contains", "icontains"})


@frozen
class Condition:
    """One metadata condition: ``metadata[key] <op> value``.

    ``eq``/``ne`` compare any scalar (booleans only equal booleans, numbers
    compare by value); ``gt``/``gte``/``lt``/``lte`` compare numbers only and
    never match a memory whose value is missing or not a number; ``in`` takes
    a tuple of scalars. ``ne`` matches a memory that lacks the key.
    ``contains`` holds when the value is a string holding the condition's
    string; ``icontains`` does so ignoring case, character by character (see
    :func:`case_variants`). Neither matches a number, a boolean or a missing key.
    """

    key: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]

    def matches(self, metadata: Mapping[str, Scalar]) -> bool:
        if self.key not in metadata:
            return self.op == "ne"
        actual = metadata[self.key]
        if self.op in ("eq", "ne"):
            return _same(actual, self.value) is (self.op == "eq")
        if self.op == "in":
            values = self.value if isinstance(self.value, tuple) else (self.value,)
            return any(_same(actual, v) for v in values)
        if self.op in SUBSTRING_OPERATORS:
            return _holds_substring(actual, self.value, ignore_case=self.op == "icontains")
        if not _is_number(actual) or not _is_number(self.value):
            return False
        a, b = _float(actual), _float(self.value)  # type: ignore[arg-type]
        return {
            "gt": a > b,
            "gte": a >= b,
            "lt": a < b,
            "lte": a <= b,
        }[self.op]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float(value: float) -> float:
    """A number as a float; an integer beyond float64's range is the infinity of its sign."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return _float(a) == _float(b)  # type: ignore[arg-type]
    return a == b


def _holds_substring(actual: object, value: object, *, ignore_case: bool) -> bool:
    if not isinstance(actual, str) or not isinstance(value, str):
        return False
    if not ignore_case:
        return value in actual
    return _ignoring_case(value).search(actual) is not None


def case_variants(char: str) -> str:
    """The characters that ``icontains`` takes ``char`` of its pattern to match, in order.

    ``char`` itself, its lower case and its upper case, where each is one
    character ("ß" upper-cases to "SS", so it matches only itself and "ẞ" is
    not reached).
    """
    out = [char]
    for other in (char.lower(), char.upper()):
        if len(other) == 1 and other not in out:
            out.append(other)
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _ignoring_case(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(f"[{re.escape(case_variants(c))}]" for c in pattern))


@frozen
class AllOf:
    """Every clause holds (AND); no clause at all holds for every memory."""

    clauses: tuple[Clause, ...]

    def matches(self, metadata: Mapping[str, Scalar]) -> bool:
        return all(c.matches(metadata) for c in self.clauses)


@frozen
class AnyOf:
    """At least one clause holds (OR); no clause at all holds for no memory."""

    clauses: tuple[Clause, ...]

    def matches(self, metadata: Mapping[str, Scalar]) -> bool:
        return any(c.matches(metadata) for c in self.clauses)


@frozen
class Not:
    """The clause does not hold (a memory lacking its key passes ``Not(eq)``)."""

    clause: Clause

    def matches(self, metadata: Mapping[str, Scalar]) -> bool:
        return not self.clause.matches(metadata)


#: One metadata clause: a condition or a boolean combination of clauses.
Clause: TypeAlias = Condition | AllOf | AnyOf | Not


def clause_depth(clause: Clause) -> int:
    """How deeply ``AllOf``/``AnyOf``/``Not`` nest in ``clause`` (a condition is 0)."""
    if isinstance(clause, Condition):
        return 0
    if isinstance(clause, Not):
        return 1 + clause_depth(clause.clause)
    return 1 + max((clause_depth(c) for c in clause.clauses), default=0)


def clause_conditions(clause: Clause) -> int:
    """How many conditions ``clause`` holds."""
    if isinstance(clause, Condition):
        return 1
    if isinstance(clause, Not):
        return clause_conditions(clause.clause)
    return sum(clause_conditions(c) for c in clause.clauses)


@frozen
class MemoryFilter:
    """Everything a memory must satisfy to be returned, for one tenant."""

    tenant_id: str
    #: The memory must carry at least one of these tags; empty means any tags.
    container_tags: tuple[str, ...] = ()
    #: Every clause must hold (AND).
    conditions: tuple[Clause, ...] = ()
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
