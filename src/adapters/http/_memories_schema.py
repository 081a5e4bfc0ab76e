"""Request bodies of POST /v4/profile, PATCH and DELETE /v4/memories, and their wire rules.

The shapes are the official supermemory SDKs' (``client.profile``,
``memories.update_memory``, ``memories.forget``). Unknown keys are ignored,
as on every route; fields memoryd cannot honour are a 400 naming them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NewType

import cattrs
from attrs import field, frozen
from cattrs.errors import ClassValidationError
from cattrs.gen import make_dict_structure_fn

from memoryd.adapters.http._converter import expect, hook, make_converter
from memoryd.adapters.http._filters_schema import Filters
from memoryd.adapters.http._schema import (
    MAX_TEXT_CHARS,
    WHITESPACE,
    Identifier,
    Metadata,
    Query,
    Tag,
    Threshold,
    _at,
    bounded_str,
)
from memoryd.adapters.http._schema import _register as register_common
from memoryd.core.memory_edits import MemoryRef, MemoryUpdate
from memoryd.core.profile import ProfileRequest

#: The sections ``include`` may name. ``buckets`` (hosted supermemory's classifier) has none here.
PROFILE_SECTIONS = ("static", "dynamic", "buckets")
MAX_REASON_CHARS = 1_000

MemoryText = NewType("MemoryText", str)
Sections = NewType("Sections", tuple[str, ...])


def _memory_text(value: object) -> MemoryText:
    text = bounded_str(value, lo=1, hi=MAX_TEXT_CHARS)
    if not text.strip(WHITESPACE):
        raise ValueError("must not be blank")
    return MemoryText(text)


def _sections(value: object) -> Sections:
    expect(value, list, "an array of section names")
    assert isinstance(value, list)
    out: list[str] = []
    for i, item in enumerate(value):
        if item not in PROFILE_SECTIONS:
            allowed = ", ".join(repr(s) for s in PROFILE_SECTIONS)
            raise ValueError(f"item {i} must be one of {allowed}")
        out.append(item)
    return Sections(tuple(dict.fromkeys(out)))


@frozen
class ProfileIn:
    containerTag: Tag
    q: Query | None = None
    threshold: Threshold = field(default=Threshold(0.0))
    filters: Filters = field(factory=lambda: Filters(()))
    include: Sections = field(default=Sections(("static", "dynamic")))
    #: Hosted supermemory's bucket keys: memoryd has no buckets (``profile.buckets`` is {}).
    buckets: list[str] | None = None


def profile_to_core(body: ProfileIn) -> ProfileRequest:
    return ProfileRequest(
        container_tag=body.containerTag,
        conditions=body.filters,
        q=body.q,
        threshold=body.threshold,
        include=frozenset(body.include),
    )


@frozen
class ForgetIn:
    containerTag: Tag
    id: Identifier | None = None
    content: MemoryText | None = None
    reason: str | None = None


@frozen
class UpdateIn:
    containerTag: Tag
    newContent: MemoryText
    id: Identifier | None = None
    content: MemoryText | None = None
    metadata: Metadata | None = None
    #: Auto-forgetting is not supported: only null (no expiry) is accepted.
    forgetAfter: datetime | None = None
    forgetReason: str | None = None
    temporalContext: dict[str, Any] | None = None


def _one_of_id_or_content(cls: type, value: dict[str, Any]) -> None:
    nulls = [n for n in ("id", "content") if n in value and value[n] is None]
    if nulls:
        raise ClassValidationError(
            f"While structuring {cls.__name__}",
            [_at(TypeError("must be a string, not null"), cls, n) for n in nulls],
            cls,
        )
    has_id, has_content = "id" in value, "content" in value
    if has_id and has_content:
        raise ClassValidationError(
            f"While structuring {cls.__name__}",
            [_at(ValueError("send id or content, not both"), cls, n) for n in ("id", "content")],
            cls,
        )
    if not has_id and not has_content:
        raise _unsupported(cls, "id", "is required: send the memory's id, or its exact content")


def _unsupported(cls: type, name: str, message: str) -> ClassValidationError:
    return ClassValidationError(
        f"While structuring {cls.__name__}", [_at(ValueError(message), cls, name)], cls
    )


def forget_to_core(body: ForgetIn) -> MemoryRef:
    return MemoryRef(tag=body.containerTag, id=body.id, content=body.content)


def update_to_core(body: UpdateIn) -> MemoryUpdate:
    return MemoryUpdate(
        ref=MemoryRef(tag=body.containerTag, id=body.id, content=body.content),
        new_content=body.newContent,
        metadata=body.metadata,
    )


def _register(converter: cattrs.Converter) -> cattrs.Converter:
    register_common(converter)
    converter.register_structure_hook(MemoryText, hook(_memory_text))
    converter.register_structure_hook(Sections, hook(_sections))
    plain_forget = make_dict_structure_fn(ForgetIn, converter)
    plain_update = make_dict_structure_fn(UpdateIn, converter)

    def forget(value: object, type_: Any) -> ForgetIn:
        expect(value, dict, "an object")
        assert isinstance(value, dict)
        body: ForgetIn = plain_forget(value, type_)
        _one_of_id_or_content(ForgetIn, value)
        if body.reason is not None and len(body.reason) > MAX_REASON_CHARS:
            raise _unsupported(ForgetIn, "reason", f"must be at most {MAX_REASON_CHARS} characters")
        return body

    def update(value: object, type_: Any) -> UpdateIn:
        expect(value, dict, "an object")
        assert isinstance(value, dict)
        body: UpdateIn = plain_update(value, type_)
        _one_of_id_or_content(UpdateIn, value)
        if body.forgetAfter is not None:
            raise _unsupported(
                UpdateIn,
                "forgetAfter",
                "memoryd does not forget memories on a schedule: send null (or leave it out), "
                "and forget the memory with DELETE /v4/memories when it should go",
            )
        if body.temporalContext is not None:
            raise _unsupported(
                UpdateIn,
                "temporalContext",
                "is not supported: put dates in metadata (strings), e.g. "
                '{"documentDate": "2025-01-31"}',
            )
        return body

    converter.register_structure_hook(ForgetIn, forget)
    converter.register_structure_hook(UpdateIn, update)
    return converter


MEMORIES_CONVERTER = _register(make_converter())
