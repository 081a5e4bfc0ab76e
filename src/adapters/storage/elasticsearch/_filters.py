"""``MemoryFilter`` as an Elasticsearch query, with exactly ``MemoryFilter.matches``'s meaning.

``metadata`` is mapped ``flattened`` (exact terms with no ``.keyword``
guessing, for people querying the index), but a flattened field keeps every
value as a string: ``1``, ``1.0``, ``true`` and ``"1"`` would look alike, and
ranges would compare text. So each memory also carries ``metadata_terms``:
one typed keyword per entry, ``KEY`` written as JSON (ASCII; it ends with the
only unescaped quote, so no key is a prefix of another's term) followed by

- ``b1`` / ``b0`` for a boolean (booleans only equal booleans);
- ``n`` and 16 hex digits for a number: the float64's bits, flipped so that
  their order as text is the numbers' order (``2`` and ``2.0`` are one term;
  ranges are keyword ranges within ``KEY n``);
- ``s`` and the text for a string.

A condition that can never match (``gt`` a string, ``in`` nothing) is
``match_none``, never a clause that silently matches everything.

``contains`` is a ``wildcard`` over ``KEY s*TEXT*`` (the key's prefix keeps it
to that key's strings). ``icontains`` is a ``regexp`` whose key part is
literal and whose text part is, character by character, the class of
``case_variants`` (``case_insensitive`` would fold the key too, and let
``"Key"`` reach ``"key"``'s values). ``AllOf`` is a ``bool.filter``,
``AnyOf`` a ``bool.should`` with ``minimum_should_match: 1`` (no clause:
``match_none``), ``Not`` a ``bool.must_not``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from memoryd.core.errors import FieldError, ValidationFailed
from memoryd.core.filters import AllOf, AnyOf, Clause, Condition, MemoryFilter, Not, case_variants
from memoryd.core.model import Scalar

Query = dict[str, Any]
MATCH_NONE: Query = {"match_none": {}}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: After every number's hex digits (0-9, a-f): the exclusive end of a key's numbers.
_PAST_NUMBERS = "g"
#: Elasticsearch's default ``index.max_regex_length``: the longest ``regexp`` it runs.
MAX_REGEX_LENGTH = 1_000
MATCH_ALL: Query = {"match_all": {}}


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch: exact, and ordered like the datetimes."""
    return (value - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _key(key: str) -> str:
    return json.dumps(key)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_text(value: float) -> str | None:
    """16 hex digits whose text order is the numbers' order (None for NaN)."""
    x = float(value) + 0.0  # -0.0 is 0.0
    if math.isnan(x):
        return None
    (bits,) = struct.unpack(">Q", struct.pack(">d", x))
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


def term(key: str, value: Scalar) -> str | None:
    """The typed term of ``key: value`` (None: a value no condition can equal)."""
    if isinstance(value, bool):
        return f"{_key(key)}b{int(value)}"
    if _is_number(value):
        try:
            digits = number_text(float(value))
        except OverflowError:  # an int beyond float64
            return None
        return None if digits is None else f"{_key(key)}n{digits}"
    return f"{_key(key)}s{value}"


def metadata_terms(metadata: Mapping[str, Scalar]) -> list[str]:
    """The typed terms of a memory's metadata (``metadata_terms``)."""
    out = []
    for key, value in metadata.items():
        found = term(key, value)
        if found is not None:
            out.append(found)
    return out


def _equals(key: str, value: Scalar) -> Query:
    found = term(key, value)
    return MATCH_NONE if found is None else {"term": {"metadata_terms": found}}


def _wildcard_literal(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\*?" else c for c in text)


def _regexp_literal(char: str) -> str:
    # Lucene reads ``\d``, ``\w`` ... as classes: only ASCII non-alphanumerics are escaped.
    return char if not char.isascii() or char.isalnum() else f"\\{char}"


def _substring(key: str, value: object, *, ignore_case: bool) -> Query:
    if not isinstance(value, str):
        return MATCH_NONE
    prefix = f"{_key(key)}s"
    if not ignore_case:
        pattern = f"{_wildcard_literal(prefix)}*{_wildcard_literal(value)}*"
        return {"wildcard": {"metadata_terms": {"value": pattern}}}
    text = "".join(
        _regexp_literal(c) if len(v := case_variants(c)) == 1 else f"[{v}]" for c in value
    )
    regex = "".join(_regexp_literal(c) for c in prefix) + ".*" + text + ".*"
    if len(regex) > MAX_REGEX_LENGTH:
        raise ValidationFailed(
            [
                FieldError(
                    "filters",
                    f"an ignoreCase string_contains on {key!r} is too long for Elasticsearch "
                    f"(a regexp of {len(regex)} characters; index.max_regex_length is "
                    f"{MAX_REGEX_LENGTH}): shorten the value or the key",
                )
            ]
        )
    return {"regexp": {"metadata_terms": {"value": regex, "flags": "NONE"}}}


def clause_query(clause: Clause) -> Query:
    """One clause (a condition, or AND/OR/NOT of clauses) with exactly its meaning."""
    if isinstance(clause, Condition):
        return condition_query(clause)
    if isinstance(clause, Not):
        return {"bool": {"must_not": [clause_query(clause.clause)]}}
    if isinstance(clause, AllOf):
        if not clause.clauses:
            return MATCH_ALL
        return {"bool": {"filter": [clause_query(c) for c in clause.clauses]}}
    assert isinstance(clause, AnyOf)
    if not clause.clauses:
        return MATCH_NONE
    return {
        "bool": {"should": [clause_query(c) for c in clause.clauses], "minimum_should_match": 1}
    }


def condition_query(condition: Condition) -> Query:  # noqa: PLR0911 - one per operator
    """One condition as a query that matches exactly the memories it holds for."""
    key, op, value = condition.key, condition.op, condition.value
    if op in ("contains", "icontains"):
        return _substring(key, value, ignore_case=op == "icontains")
    if op == "eq":
        return _equals(key, value)  # type: ignore[arg-type]
    if op == "ne":  # a memory without the key matches
        return {"bool": {"must_not": [_equals(key, value)]}}  # type: ignore[arg-type]
    if op == "in":
        values = value if isinstance(value, tuple) else (value,)
        terms = []
        for v in values:
            t = term(key, v)
            if t is not None:
                terms.append(t)
        return {"terms": {"metadata_terms": terms}} if terms else MATCH_NONE
    if not _is_number(value):
        return MATCH_NONE  # gt/gte/lt/lte compare numbers only
    try:
        digits = number_text(value)  # type: ignore[arg-type]
    except OverflowError:
        return MATCH_NONE
    if digits is None:
        return MATCH_NONE
    prefix = f"{_key(key)}n"
    bound = prefix + digits
    ranges = {
        "gt": {"gt": bound, "lt": prefix + _PAST_NUMBERS},
        "gte": {"gte": bound, "lt": prefix + _PAST_NUMBERS},
        "lt": {"gte": prefix, "lt": bound},
        "lte": {"gte": prefix, "lte": bound},
    }
    return {"range": {"metadata_terms": ranges[op]}}


def filter_clauses(memory_filter: MemoryFilter) -> list[Query]:
    """The filter as ``bool.filter`` clauses; the tenant's is always the first."""
    clauses: list[Query] = [{"term": {"tenant": memory_filter.tenant_id}}]
    if memory_filter.container_tags:
        clauses.append({"terms": {"tags": list(memory_filter.container_tags)}})
    said: dict[str, int] = {}
    if memory_filter.after is not None:
        said["gte"] = to_micros(memory_filter.after)
    if memory_filter.before is not None:
        said["lt"] = to_micros(memory_filter.before)
    if said:
        clauses.append({"range": {"said_at_us": said}})
    clauses.extend(clause_query(c) for c in memory_filter.conditions)
    return clauses


def filter_query(memory_filter: MemoryFilter) -> Query:
    """The filter as one query (for a knn ``filter``, a count, a delete)."""
    return {"bool": {"filter": filter_clauses(memory_filter)}}
