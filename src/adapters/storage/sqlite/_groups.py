"""Attribute groups: the distinct (tags, metadata) pairs of a tenant's memories.

A conversation's memories all share its tags and metadata, so a tenant has
far fewer groups than memories. Each memory's slot stores its group number;
a filter's tags and metadata conditions are evaluated once per group, with
numpy over per-key columns, and then spread to the slots with one gather
(``group_ok[slot_group]``). Updating a conversation's tags touches only its
slots' group numbers.

Metadata columns (one per key, over groups) hold:
- ``codes``: an int32 code per distinct value, by the equality of
  ``Condition.matches``: booleans equal only booleans, numbers compare by value
  (``1 == 1.0``), strings by text. ``-1`` is a missing key; NaN gets a code
  that equals nothing.
- ``numbers``: the value as float64 for ``gt/gte/lt/lte``; NaN when missing or
  not a number (every comparison with NaN is false, as the reference wants).

``contains``/``icontains`` are decided once per distinct string of the column
(by ``Condition.matches`` itself), then spread to the groups through their
codes. ``AllOf``/``AnyOf``/``Not`` combine the clauses' masks with ``&``, ``|``
and ``~``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from memoryd.core.filters import (
    SUBSTRING_OPERATORS,
    AllOf,
    AnyOf,
    Clause,
    Condition,
    MemoryFilter,
    Not,
)
from memoryd.core.model import Scalar

Mask: TypeAlias = npt.NDArray[np.bool_]
GroupKey: TypeAlias = tuple[tuple[str, ...], tuple[tuple[str, str, Scalar], ...]]

MISSING = -1
NOT_EQUAL = -2  # NaN: equal to nothing, itself included


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_token(value: Scalar) -> tuple[str, Scalar] | None:
    """What a value is equal to under ``Condition`` semantics; None for NaN."""
    if isinstance(value, bool):
        return ("b", value)
    if _is_number(value):
        number = float(value)
        return None if math.isnan(number) else ("n", number)
    return ("s", value)


def group_key(tags: Sequence[str], metadata: Mapping[str, Scalar]) -> GroupKey:
    """Two memories share a group iff their tags and metadata are the same (types included)."""
    return (
        tuple(sorted(set(tags))),
        tuple(sorted((k, type(v).__name__, v) for k, v in metadata.items())),
    )


class _Column:
    def __init__(self, capacity: int) -> None:
        self.codes = np.full(capacity, MISSING, np.int32)
        self.numbers = np.full(capacity, np.nan, np.float64)
        self.tokens: dict[tuple[str, Scalar], int] = {}

    def grow(self, capacity: int) -> None:
        codes = np.full(capacity, MISSING, np.int32)
        codes[: len(self.codes)] = self.codes
        numbers = np.full(capacity, np.nan, np.float64)
        numbers[: len(self.numbers)] = self.numbers
        self.codes, self.numbers = codes, numbers

    def set(self, group: int, value: Scalar) -> None:
        token = value_token(value)
        if token is None:
            self.codes[group] = NOT_EQUAL
        else:
            self.codes[group] = self.tokens.setdefault(token, len(self.tokens))
        self.numbers[group] = float(value) if _is_number(value) else np.nan

    def clear(self, group: int) -> None:
        self.codes[group] = MISSING
        self.numbers[group] = np.nan


class Groups:
    """The groups of one tenant, with reference counts so that numbers are reused."""

    def __init__(self) -> None:
        self._ids: dict[GroupKey, int] = {}
        self._keys: list[GroupKey | None] = []
        self._refs: list[int] = []
        self._free: list[int] = []
        self._tags: dict[str, set[int]] = {}
        self._columns: dict[str, _Column] = {}
        self._capacity = 16

    def __len__(self) -> int:
        return len(self._keys)

    def acquire(self, tags: Sequence[str], metadata: Mapping[str, Scalar], count: int = 1) -> int:
        """The group number for these attributes, taking ``count`` references to it."""
        key = group_key(tags, metadata)
        group = self._ids.get(key)
        if group is None:
            group = self._new(key, metadata)
        self._refs[group] += count
        return group

    def acquire_group(self, group: int, count: int = 1) -> None:
        """Take ``count`` more references to a group already in use."""
        self._refs[group] += count

    def attributes(self, group: int) -> tuple[tuple[str, ...], dict[str, Scalar]]:
        """The tags and metadata of a group in use."""
        key = self._keys[group]
        assert key is not None
        return key[0], {name: value for name, _, value in key[1]}

    def release(self, group: int, count: int = 1) -> None:
        """Drop ``count`` references; a group nobody uses is forgotten."""
        self._refs[group] -= count
        if self._refs[group] > 0:
            return
        key = self._keys[group]
        assert key is not None
        del self._ids[key]
        self._keys[group] = None
        for tag in key[0]:
            members = self._tags[tag]
            members.discard(group)
            if not members:
                del self._tags[tag]
        for name, _, _ in key[1]:
            self._columns[name].clear(group)
        self._free.append(group)

    def _new(self, key: GroupKey, metadata: Mapping[str, Scalar]) -> int:
        if self._free:
            group = self._free.pop()
            self._keys[group] = key
        else:
            group = len(self._keys)
            self._keys.append(key)
            self._refs.append(0)
            if group >= self._capacity:
                self._capacity *= 2
                for existing in self._columns.values():
                    existing.grow(self._capacity)
        self._ids[key] = group
        for tag in key[0]:
            self._tags.setdefault(tag, set()).add(group)
        for name, value in metadata.items():
            column = self._columns.get(name)
            if column is None:
                column = self._columns[name] = _Column(self._capacity)
            column.set(group, value)
        return group

    def mask(self, memory_filter: MemoryFilter) -> Mask | None:
        """Which groups pass the filter's tags and conditions; None if all do."""
        if not memory_filter.container_tags and not memory_filter.conditions:
            return None
        size = len(self._keys)
        ok = np.ones(size, np.bool_)
        if memory_filter.container_tags:
            tagged = np.zeros(size, np.bool_)
            for tag in set(memory_filter.container_tags):
                members = self._tags.get(tag)
                if members:
                    tagged[np.fromiter(members, np.intp, len(members))] = True
            ok &= tagged
        for clause in memory_filter.conditions:
            ok &= self._clause(clause, size)
        return ok

    def _clause(self, clause: Clause, size: int) -> Mask:
        if isinstance(clause, Condition):
            return self._condition(clause, size)
        if isinstance(clause, Not):
            return ~self._clause(clause.clause, size)
        if isinstance(clause, AllOf):
            out = np.ones(size, np.bool_)
            for inner in clause.clauses:
                out &= self._clause(inner, size)
            return out
        assert isinstance(clause, AnyOf)
        out = np.zeros(size, np.bool_)
        for inner in clause.clauses:
            out |= self._clause(inner, size)
        return out

    def _condition(self, condition: Condition, size: int) -> Mask:
        column = self._columns.get(condition.key)
        if column is None:  # nobody has the key: only "ne" matches
            return np.full(size, condition.op == "ne", np.bool_)
        if condition.op in ("eq", "ne", "in"):
            return _equality(column, condition, size)
        if condition.op in SUBSTRING_OPERATORS:
            return _substring(column, condition, size)
        return _comparison(column, condition, size)


def _equality(column: _Column, condition: Condition, size: int) -> Mask:
    codes = column.codes[:size]
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    tokens = [value_token(v) for v in values]
    found = [c for c in (column.tokens.get(t) for t in tokens if t is not None) if c is not None]
    if not found:
        equal = np.zeros(size, np.bool_)
    elif len(found) == 1:
        equal = codes == found[0]
    else:
        equal = np.isin(codes, np.asarray(found, np.int32))
    return ~equal if condition.op == "ne" else equal


def _substring(column: _Column, condition: Condition, size: int) -> Mask:
    key = condition.key
    found = [
        code
        for (kind, value), code in column.tokens.items()
        if kind == "s" and condition.matches({key: value})
    ]
    if not found:
        return np.zeros(size, np.bool_)
    return np.isin(column.codes[:size], np.asarray(found, np.int32))


def _comparison(column: _Column, condition: Condition, size: int) -> Mask:
    value = condition.value
    if isinstance(value, tuple) or not _is_number(value):
        return np.zeros(size, np.bool_)
    bound = float(value)
    numbers = column.numbers[:size]
    compare = {"gt": np.greater, "gte": np.greater_equal, "lt": np.less, "lte": np.less_equal}
    with np.errstate(invalid="ignore"):
        result: Mask = compare[condition.op](numbers, bound)
    return result
