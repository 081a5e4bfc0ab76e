"""The one cattrs converter at the HTTP edge: strict JSON types, errors with paths.

Wire rules live here and in ``_schema``: each rule is a structure hook, so
cattrs' detailed validation attaches the field's path to every failure, and
``field_errors`` turns those into ``FieldError(path="messages[0].role", ...)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import is_mutable_sequence, list_structure_factory
from cattrs.errors import CattrsError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn
from cattrs.v import transform_error

from memoryd.core.errors import FieldError, ValidationFailed

T = TypeVar("T")

_JSON_TYPE = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def json_type(value: object) -> str:
    """How a JSON value's type reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    for py, name in _JSON_TYPE.items():
        if isinstance(value, py):
            return name
    return type(value).__name__


def expect(value: object, kind: type | tuple[type, ...], what: str) -> None:
    """Raise a ``TypeError`` naming the expected and the given JSON type."""
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise TypeError(f"must be {what}, not a boolean")
    if not isinstance(value, kind):
        raise TypeError(f"must be {what}, not {json_type(value)}")


def _str(value: object, _: type) -> str:
    expect(value, str, "a string")
    assert isinstance(value, str)
    return value


def _int(value: object, _: type) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    expect(value, int, "an integer")
    assert isinstance(value, int)
    return value


def _float(value: object, _: type) -> float:
    expect(value, (int, float), "a number")
    assert isinstance(value, int | float)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


def _bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be a boolean, not {json_type(value)}")
    return value


def parse_timestamp(value: object) -> datetime:
    """An ISO 8601 date or date-time; one without a zone is taken as UTC."""
    expect(value, str, "an ISO 8601 date-time string")
    assert isinstance(value, str)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"must be an ISO 8601 date-time such as 2024-05-08T13:56:00Z, not {value[:40]!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_converter() -> cattrs.Converter:
    """A converter that accepts only the JSON types the schema says (no ``5`` -> ``"5"``)."""
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    converter.register_structure_hook(str, _str)
    converter.register_structure_hook(int, _int)
    converter.register_structure_hook(float, _float)
    converter.register_structure_hook(bool, _bool)
    converter.register_structure_hook(datetime, lambda v, _: parse_timestamp(v))
    converter.register_unstructure_hook(datetime, _iso)
    converter.register_structure_hook_factory(is_mutable_sequence, _strict_list_factory)
    converter.register_structure_hook_factory(attrs.has, _strict_object_factory)
    return converter


def _strict_object_factory(
    type_: Any, converter: cattrs.BaseConverter
) -> Callable[[Any, Any], Any]:
    """Objects must be JSON objects: a string in their place is a type error, not a crash."""
    fields = make_dict_structure_fn(type_, converter)

    def structure_object(value: Any, type_: Any) -> Any:
        expect(value, dict, "an object")
        return fields(value, type_)

    return structure_object


def _strict_list_factory(type_: Any, converter: cattrs.BaseConverter) -> Callable[[Any, Any], Any]:
    """Lists must be JSON arrays: cattrs alone would take a string or an object as a list."""
    items = list_structure_factory(type_, converter)

    def structure_list(value: Any, type_: Any) -> Any:
        expect(value, list, "an array")
        return items(value, type_)

    return structure_list


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API writes it: UTC, ISO 8601, ``Z``."""
    return None if value is None else _iso(value)


def _message(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "is required"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"has unknown keys: {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, TypeError | ValueError | CattrsError) and str(exc):
        text = str(exc)
        # cattrs' own messages for Literal mismatches read poorly; say what is allowed.
        if " not in literal " in text and hasattr(type_, "__args__"):
            allowed = ", ".join(repr(a) for a in type_.__args__)
            return f"must be one of {allowed}"
        return text
    return "is invalid"


_PATH = re.compile(r"^(?P<message>.*) @ \$\.?(?P<path>.*)$", re.S)


def field_errors(exc: Exception) -> list[FieldError]:
    """Each failure in a cattrs validation error as a ``FieldError`` with a clean path."""
    errors: list[FieldError] = []
    for line in transform_error(exc, path="$", format_exception=_message):
        match = _PATH.match(line)
        if match is None:
            errors.append(FieldError(path="", message=line))
        else:
            errors.append(FieldError(path=match["path"], message=match["message"]))
    return errors


def structure(converter: cattrs.Converter, data: object, cls: type[T]) -> T:
    """Structure a JSON body into ``cls`` or raise ``ValidationFailed`` listing every bad field."""
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError(path="", message="the body must be a JSON object")])
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None
    except (TypeError, ValueError) as exc:
        raise ValidationFailed([FieldError(path="", message=str(exc))]) from None


def hook(fn: Callable[[Any], T]) -> Callable[[Any, type], T]:
    """Adapt a one-argument validator into a cattrs structure hook."""
    return lambda value, _type: fn(value)
