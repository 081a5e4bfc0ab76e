"""``filters`` of /v4/search: today's ``{key: value | {op: v}}`` and supermemory's ``AND``/``OR``.

Both forms become a tuple of core clauses (``memoryd.core.filters``) that
must all hold. The nested form's errors carry the path into it
(``filters.AND[1].OR[0].value``); docs/api.md describes both forms and
every limit below.
"""

from __future__ import annotations

import math
import re
from typing import Any, NewType

from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)

from memoryd.adapters.http._converter import expect
from memoryd.core.filters import OPERATORS, AllOf, AnyOf, Clause, Condition, Not, Operator
from memoryd.core.model import Scalar

MAX_METADATA_KEY_CHARS = 128
MAX_METADATA_VALUE_CHARS = 4_096
#: Keys of ``filters``; each key takes at most one of each operator.
MAX_FILTERS = 32
#: Levels of ``AND``/``OR`` in the nested form (``{"AND": [...]}`` alone is 1).
MAX_FILTER_DEPTH = 8
#: Conditions in the nested form, all levels together.
MAX_FILTER_CONDITIONS = 100
#: The text of a ``string_contains`` condition.
MAX_CONTAINS_CHARS = 100

#: supermemory's ``filterType`` values.
FILTER_TYPES = ("metadata", "numeric", "array_contains", "string_contains")
#: supermemory's ``numericOperator`` values, and the core operator of each.
NUMERIC_OPERATORS: dict[str, Operator] = {
    ">": "gt",
    ">=": "gte",
    "<": "lt",
    "<=": "lte",
    "=": "eq",
}
CONDITION_KEYS = ("key", "value", "filterType", "numericOperator", "negate", "ignoreCase")
#: A number written as a string (``"2024"``, ``"-1.5"``, ``"3e2"``); the same in ECMA 262.
NUMBER_PATTERN = "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)

Filters = NewType("Filters", tuple[Clause, ...])
#: The largest magnitude a metadata number may have: 2**53, up to which every integer is
#: exact in every JSON client (and a float64).
MAX_NUMBER = 2**53


def scalar(value: object, where: str) -> Scalar:
    """A metadata value: a string (at most MAX_METADATA_VALUE_CHARS), a finite number, a boolean."""
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        raise ValueError(
            f"{where} must be a number between -{MAX_NUMBER} and {MAX_NUMBER} (beyond, "
            "integers are not exact in JSON clients); send a larger one as a string"
        )
    if isinstance(value, bool | int | str):
        if isinstance(value, str) and len(value) > MAX_METADATA_VALUE_CHARS:
            raise ValueError(f"{where} must be at most {MAX_METADATA_VALUE_CHARS} characters")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number")
        return value
    raise TypeError(f"{where} must be a string, number or boolean")


def filters(value: object) -> Filters:
    """Either form of ``filters`` (an object whose only key is AND or OR, with an array, is
    the nested one)."""
    expect(value, dict, "an object mapping metadata keys to values or comparisons")
    assert isinstance(value, dict)
    nested = [k for k in ("AND", "OR") if isinstance(value.get(k), list)]
    if not nested:
        return _flat(value)
    if len(value) != 1:
        raise ValueError(
            'the nested form is one object with one key, "AND" or "OR", holding an array; '
            "it does not mix with other keys"
        )
    try:
        return Filters((_Parser().expression(value, (), 1),))
    except _Bad as bad:
        raise bad.as_cattrs() from None


# --- {"key": value | {"op": value}} ---------------------------------------------------------------


def _flat(value: dict[Any, Any]) -> Filters:
    """``{"key": scalar}`` is equality; ``{"key": {"gte": 3, "lt": 9}}`` compares."""
    if len(value) > MAX_FILTERS:
        raise ValueError(f"must have at most {MAX_FILTERS} keys (got {len(value)})")
    conditions: list[Clause] = []
    for key, spec in value.items():
        if isinstance(spec, list):
            raise TypeError(
                f'{key!r}: an array is not a value; use {{"in": [...]}} to match any of several'
            )
        if isinstance(spec, dict):
            if not spec:
                raise ValueError(f"{key!r}: a comparison needs at least one operator")
            for op, operand in spec.items():
                if op not in OPERATORS:
                    allowed = ", ".join(OPERATORS)
                    raise ValueError(f"{key!r}: unknown operator {op!r}; use one of {allowed}")
                conditions.append(Condition(key, op, _operand(key, op, operand)))
        else:
            conditions.append(Condition(key, "eq", scalar(spec, repr(key))))
    return Filters(tuple(conditions))


def _operand(key: str, op: str, operand: object) -> Scalar | tuple[Scalar, ...]:
    where = f"{key!r} {op}"
    if op == "in":
        expect(operand, list, f"an array for {where}")
        assert isinstance(operand, list)
        return tuple(scalar(v, where) for v in operand)
    if op in {"gt", "gte", "lt", "lte"} and (
        isinstance(operand, bool) or not isinstance(operand, int | float)
    ):
        raise TypeError(f"{where} needs a number")
    return scalar(operand, where)


# --- supermemory's {"AND": [...]} / {"OR": [...]} ------------------------------------------------

Path = tuple[str | int, ...]


class _Bad(Exception):
    """One bad part of the nested form, at ``path`` below ``filters``."""

    def __init__(self, path: Path, message: str, kind: type[Exception] = ValueError) -> None:
        super().__init__(message)
        self.path, self.message, self.kind = path, message, kind

    def as_cattrs(self) -> Exception:
        """The error as cattrs nests it, so that ``transform_error`` writes the path."""
        exc: Exception = self.kind(self.message)
        for part in reversed(self.path):
            if isinstance(part, int):
                exc.__notes__ = [IterableValidationNote(f"Structuring item {part}", part, Any)]
                exc = IterableValidationError("While structuring a filter list", [exc], list)
            else:
                exc.__notes__ = [AttributeValidationNote(f"Structuring {part}", part, Any)]
                exc = ClassValidationError("While structuring a filter", [exc], dict)
        return exc


class _Parser:
    def __init__(self) -> None:
        self.conditions = 0

    def expression(self, node: object, path: Path, depth: int) -> Clause:
        if not isinstance(node, dict):
            raise _Bad(
                path,
                'must be a condition {"key", "value", ...} or an expression {"AND": [...]} '
                'or {"OR": [...]}',
                TypeError,
            )
        boolean = [k for k in ("AND", "OR") if k in node]
        if not boolean:
            return self.condition(node, path)
        if len(node) != 1:
            raise _Bad(path, 'an expression has exactly one key, "AND" or "OR"')
        (op,) = boolean
        items = node[op]
        here = (*path, op)
        if not isinstance(items, list):
            raise _Bad(here, "must be an array of conditions and expressions", TypeError)
        if depth > MAX_FILTER_DEPTH:
            raise _Bad(here, f"nests too deeply: at most {MAX_FILTER_DEPTH} levels of AND/OR")
        if len(items) > MAX_FILTER_CONDITIONS:
            raise _Bad(here, f"must have at most {MAX_FILTER_CONDITIONS} items (got {len(items)})")
        clauses = tuple(
            self.expression(item, (*here, i), depth + 1) for i, item in enumerate(items)
        )
        return AllOf(clauses) if op == "AND" else AnyOf(clauses)

    def condition(self, node: dict[Any, Any], path: Path) -> Clause:
        self.conditions += 1
        if self.conditions > MAX_FILTER_CONDITIONS:
            raise _Bad(path, f"too many conditions: at most {MAX_FILTER_CONDITIONS} in all")
        unknown = sorted(str(k) for k in node if k not in CONDITION_KEYS)
        if unknown:
            raise _Bad(
                path,
                f"has unknown keys: {', '.join(unknown)} (a condition takes "
                f"{', '.join(CONDITION_KEYS)})",
            )
        for name in ("key", "value"):
            if name not in node:
                raise _Bad((*path, name), "is required", KeyError)
        key = node["key"]
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY_CHARS:
            raise _Bad(
                (*path, "key"), f"must be a string of 1 to {MAX_METADATA_KEY_CHARS} characters"
            )
        kind = node.get("filterType", "metadata")
        if kind not in FILTER_TYPES:
            raise _Bad((*path, "filterType"), f"must be one of {', '.join(FILTER_TYPES)}")
        negate = _flag(node, "negate", path)
        ignore_case = _flag(node, "ignoreCase", path)
        if "numericOperator" in node and kind != "numeric":
            raise _Bad((*path, "numericOperator"), 'applies only to filterType "numeric"')
        if ignore_case and kind != "string_contains":
            raise _Bad((*path, "ignoreCase"), 'applies only to filterType "string_contains"')
        value = node["value"]
        if kind == "numeric":
            clause = _numeric(key, value, node.get("numericOperator", "="), path)
        elif kind == "string_contains":
            if not isinstance(value, str) or len(value) > MAX_CONTAINS_CHARS:
                raise _Bad(
                    (*path, "value"),
                    f"must be a string of at most {MAX_CONTAINS_CHARS} characters for "
                    "string_contains",
                )
            clause = Condition(key, "icontains" if ignore_case else "contains", value)
        else:
            clause = _equal(key, value, path)
        return Not(clause) if negate else clause


def _flag(node: dict[Any, Any], name: str, path: Path) -> bool:
    value = node.get(name, False)
    if not (isinstance(value, bool) or value in ("true", "false")):
        raise _Bad((*path, name), 'must be true, false, "true" or "false"', TypeError)
    return value in (True, "true")


def _number(text: str) -> float | None:
    """The number a string spells (``"2024"``), or None."""
    if not _NUMBER.fullmatch(text):
        return None
    return float(text)  # "1e999" is inf: above every stored number, as it should be


def _equal(key: str, value: object, path: Path) -> Clause:
    """``metadata`` and ``array_contains``: a string also equals the number and the boolean it
    spells (``"2024"`` equals 2024, ``"true"`` equals true); another value only itself."""
    try:
        exact = scalar(value, "the value")
    except (TypeError, ValueError) as exc:
        raise _Bad((*path, "value"), str(exc).removeprefix("the value "), type(exc)) from None
    if not isinstance(exact, str):
        return Condition(key, "eq", exact)
    alternatives: list[Scalar] = [exact]
    number = _number(exact)
    if number is not None and math.isfinite(number):
        alternatives.append(number)
    if exact in ("true", "false"):
        alternatives.append(exact == "true")
    if len(alternatives) == 1:
        return Condition(key, "eq", exact)
    return Condition(key, "in", tuple(alternatives))


def _numeric(key: str, value: object, operator: object, path: Path) -> Clause:
    if not isinstance(operator, str) or operator not in NUMERIC_OPERATORS:
        raise _Bad((*path, "numericOperator"), f"must be one of {', '.join(NUMERIC_OPERATORS)}")
    number: float | None
    if isinstance(value, str):
        number = _number(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) > MAX_NUMBER:
            raise _Bad((*path, "value"), f"must be a number between -{MAX_NUMBER} and {MAX_NUMBER}")
        number = float(value)
        if math.isnan(number):
            number = None
    else:
        number = None
    if number is None:
        raise _Bad(
            (*path, "value"),
            f"must be a number, or a string that is one, for filterType numeric "
            f"(got {str(value)[:40]!r})",
        )
    return Condition(key, NUMERIC_OPERATORS[operator], number)
