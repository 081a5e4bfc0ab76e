"""Request bodies of /v4/conversations and /v4/search, and their wire rules.

The DTOs here mirror the JSON; ``to_core`` functions turn them into core
values. Every limit is a constant below and is documented in docs/api.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NewType, TypeAlias

import cattrs
from attrs import field, frozen
from cattrs.errors import AttributeValidationNote, ClassValidationError
from cattrs.gen import make_dict_structure_fn

from memoryd.adapters.http import _filters_schema
from memoryd.adapters.http._converter import expect, hook, make_converter, parse_timestamp
from memoryd.adapters.http._filters_schema import Filters
from memoryd.adapters.http._filters_schema import filters as _filters
from memoryd.adapters.http._filters_schema import scalar as _scalar
from memoryd.adapters.http._search_options import IncludeIn, SearchMode
from memoryd.core.ingest import IngestRequest
from memoryd.core.model import ContentPart, Message, Scalar
from memoryd.core.retrieval import SearchRequest

MAX_ID_CHARS = 255
MAX_MESSAGES = 10_000
MAX_TEXT_CHARS = 200_000
MAX_NAME_CHARS = 255
MAX_URL_CHARS = 8_192
#: A ``data:`` URI (an image's ``url``) or a file part's inline data; ``max_body_bytes``
#: bounds them first, and ``part_max_bytes`` what they may decode to.
MAX_DATA_CHARS = 64 * 1024 * 1024
MAX_MIME_CHARS = 255
MAX_TAGS = 100
MAX_TAG_CHARS = 255
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_CHARS = _filters_schema.MAX_METADATA_KEY_CHARS
MAX_METADATA_VALUE_CHARS = _filters_schema.MAX_METADATA_VALUE_CHARS
MAX_QUERY_CHARS = 10_000
MAX_LIMIT = 100
#: Keys of ``filters`` in the ``{key: value | {op: value}}`` form.
MAX_FILTERS = _filters_schema.MAX_FILTERS

#: What "blank" means for tags and queries: only these (ASCII) whitespace characters.
#: The OpenAPI document says the same with :data:`NOT_BLANK`, which every regex engine reads
#: alike (``\s`` differs between Python's and ECMA 262's).
WHITESPACE = " \t\n\r\f\v"
NOT_BLANK = "[^ \\t\\n\\r\\f\\v]"
#: An absolute URI: a scheme, a colon, then a character that is not whitespace
#: (``https://...``, ``data:...``).
URL_PATTERN = "^[A-Za-z][A-Za-z0-9+.\\-]*:[^ \\t\\n\\r\\f\\v]"
_URL = re.compile(URL_PATTERN)

Identifier = NewType("Identifier", str)
#: ``tool_call_id``: any string up to MAX_ID_CHARS, the empty one included (as the spec has it).
ToolCallId = NewType("ToolCallId", str)
Text = NewType("Text", str)
Name = NewType("Name", str)
Tags = NewType("Tags", tuple[str, ...])
#: ``containerTag``, one tag: the spelling the supermemory SDKs send ("" stands for absent).
Tag = NewType("Tag", str)
Metadata = NewType("Metadata", dict[str, Scalar])
Url = NewType("Url", str)
#: Inline data of a file part: base64 or a ``data:`` URI.
Data = NewType("Data", str)
Mime = NewType("Mime", str)
Query = NewType("Query", str)
Limit = NewType("Limit", int)
Threshold = NewType("Threshold", float)


def bounded_str(value: object, *, lo: int, hi: int, what: str = "a string") -> str:
    expect(value, str, what)
    assert isinstance(value, str)
    if len(value) < lo:
        raise ValueError("must not be empty" if lo == 1 else f"must be at least {lo} characters")
    if len(value) > hi:
        raise ValueError(f"must be at most {hi} characters (got {len(value)})")
    return value


def _identifier(value: object) -> Identifier:
    return Identifier(bounded_str(value, lo=1, hi=MAX_ID_CHARS))


def _tool_call_id(value: object) -> ToolCallId:
    return ToolCallId(bounded_str(value, lo=0, hi=MAX_ID_CHARS))


def _text(value: object) -> Text:
    return Text(bounded_str(value, lo=0, hi=MAX_TEXT_CHARS))


def _name(value: object) -> Name:
    return Name(bounded_str(value, lo=0, hi=MAX_NAME_CHARS))


def _url(value: object) -> Url:
    is_data = isinstance(value, str) and value[:5].lower() == "data:"
    url = bounded_str(value, lo=1, hi=MAX_DATA_CHARS if is_data else MAX_URL_CHARS)
    if not _URL.search(url):
        raise ValueError("must be an absolute URI (for example https://example.com/a.png)")
    return Url(url)


def _one_tag(value: object) -> str:
    tag = bounded_str(value, lo=1, hi=MAX_TAG_CHARS).strip(WHITESPACE)
    if not tag:
        raise ValueError("must not be blank")
    return tag


def _tag(value: object) -> Tag:
    return Tag(_one_tag(value))


def _tags(value: object) -> Tags:
    expect(value, list, "an array of strings")
    assert isinstance(value, list)
    if len(value) > MAX_TAGS:
        raise ValueError(f"must have at most {MAX_TAGS} tags (got {len(value)})")
    tags: list[str] = []
    for i, tag in enumerate(value):
        try:
            tags.append(_one_tag(tag))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"item {i} {exc}") from None
    return Tags(tuple(dict.fromkeys(tags)))


#: ``containerTag``'s default: not sent (a sent tag is never empty).
NO_TAG = Tag("")


def tags_of(tags: Tags, tag: Tag) -> tuple[str, ...]:
    """The tags a request names (``containerTags``); ``containerTag`` is a one-element one."""
    return (tag,) if tag else tags


def _metadata(value: object) -> Metadata:
    expect(value, dict, "an object")
    assert isinstance(value, dict)
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"must have at most {MAX_METADATA_KEYS} keys (got {len(value)})")
    out: dict[str, Scalar] = {}
    for key, item in value.items():
        if not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise ValueError(f"keys must be 1 to {MAX_METADATA_KEY_CHARS} characters")
        out[key] = _scalar(item, f"the value of {key!r}")
    return Metadata(out)


# --- POST /v4/conversations -----------------------------------------------------------------------


@frozen
class UrlIn:
    url: Url


@frozen
class TextPartIn:
    type: Literal["text"]
    text: Text


@frozen
class ImagePartIn:
    type: Literal["image_url"]
    imageUrl: UrlIn | None = None
    image_url: UrlIn | None = None


@frozen
class FileIn:
    """``file`` of the OpenAI chat shape ``{"type": "file", "file": {...}}``."""

    file_data: Data | None = None
    filename: Name | None = None
    #: An uploaded file's id (OpenAI's Files API): memoryd has none, so it is refused.
    file_id: str | None = None


@frozen
class FilePartIn:
    """A file sent inline: ``file.file_data`` (OpenAI) or ``data`` with ``mimeType`` (chat spec)."""

    type: Literal["file"]
    file: FileIn | None = None
    data: Data | None = None
    mimeType: Mime | None = None
    filename: Name | None = None


PartIn: TypeAlias = TextPartIn | ImagePartIn | FilePartIn
Content: TypeAlias = str | list[PartIn]


@frozen
class MessageIn:
    role: Literal["user", "assistant", "system", "tool"]
    content: Content
    name: Name | None = None
    tool_calls: list[Any] | None = None
    tool_call_id: ToolCallId | None = None
    timestamp: datetime | None = None


Messages = NewType("Messages", list[MessageIn])


@frozen
class ConversationIn:
    conversationId: Identifier
    messages: Messages
    containerTags: Tags = Tags(())
    #: One tag, as the supermemory SDKs send it; not together with ``containerTags``.
    containerTag: Tag = NO_TAG
    metadata: Metadata = field(factory=lambda: Metadata({}))
    # ``entityContext`` (sent by the client helper) and unknown keys are ignored.


def _at(exc: Exception, cls: type, name: str) -> Exception:
    note = AttributeValidationNote(
        f"Structuring class {cls.__name__} @ attribute {name}", name, Any
    )
    exc.__notes__ = [note]
    return exc


def missing(cls: type, name: str, message: str) -> ClassValidationError:
    """A validation error for field ``name`` of ``cls``, so that its path is reported."""
    return ClassValidationError(
        f"While structuring {cls.__name__}", [_at(KeyError(message), cls, name)], cls
    )


_BOTH_TAG_SPELLINGS = "send containerTag (one tag) or containerTags (an array), not both"


def register_tag_spellings(converter: cattrs.Converter, cls: type) -> None:
    """Structure ``cls`` so that a body with both ``containerTag`` and ``containerTags`` is a 400.

    Both fields are named in the error, beside any other bad field of the body.
    """
    fields: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter)

    def structure(value: object, type_: Any) -> Any:
        expect(value, dict, "an object")
        assert isinstance(value, dict)
        if not ("containerTag" in value and "containerTags" in value):
            return fields(value, type_)
        both = [
            _at(ValueError(_BOTH_TAG_SPELLINGS), cls, name)
            for name in ("containerTag", "containerTags")
        ]
        try:
            fields(value, type_)
        except ClassValidationError as exc:
            raise ClassValidationError(exc.message, [*exc.exceptions, *both], cls) from None
        raise ClassValidationError(f"While structuring {cls.__name__}", both, cls)

    converter.register_structure_hook(cls, structure)


def _data(value: object) -> Data:
    return Data(bounded_str(value, lo=1, hi=MAX_DATA_CHARS))


def _mime(value: object) -> Mime:
    mime = bounded_str(value, lo=1, hi=MAX_MIME_CHARS).strip(WHITESPACE)
    if "/" not in mime:
        raise ValueError("must be a MIME type such as application/pdf")
    return Mime(mime)


def _file_part(converter: cattrs.Converter, value: dict[str, Any]) -> FilePartIn:
    part = converter.structure(value, FilePartIn)
    if part.file is not None and part.file.file_data is None:
        if part.file.file_id is not None:
            raise ClassValidationError(
                "While structuring FilePartIn",
                [
                    _at(
                        ValueError("file_id is not supported: send the file inline as file_data"),
                        FilePartIn,
                        "file",
                    )
                ],
                FilePartIn,
            )
        raise missing(FilePartIn, "file", "a file part needs file.file_data")
    if part.file is None and part.data is None:
        raise missing(FilePartIn, "data", "a file part needs data (or file.file_data)")
    return part


def _part(converter: cattrs.Converter, value: object) -> PartIn:
    expect(value, dict, "a content part object")
    assert isinstance(value, dict)
    kind = value.get("type")
    if kind == "text":
        return converter.structure(value, TextPartIn)
    if kind == "image_url":
        part = converter.structure(value, ImagePartIn)
        if part.imageUrl is None and part.image_url is None:
            raise missing(ImagePartIn, "imageUrl", "an image part needs imageUrl.url")
        return part
    if kind == "file":
        return _file_part(converter, value)
    if "type" not in value:
        raise missing(TextPartIn, "type", "is required")
    raise ValueError(f"type must be 'text', 'image_url' or 'file', not {str(kind)[:40]!r}")


def _content(converter: cattrs.Converter, value: object) -> Content:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        return converter.structure(value, list[PartIn])
    raise TypeError("must be a string or an array of content parts")


def _messages(converter: cattrs.Converter, value: object) -> Messages:
    expect(value, list, "an array of messages")
    assert isinstance(value, list)
    if not value:
        raise ValueError("must contain at least 1 message")
    if len(value) > MAX_MESSAGES:
        raise ValueError(f"must contain at most {MAX_MESSAGES} messages (got {len(value)})")
    return Messages(converter.structure(value, list[MessageIn]))


def _part_to_core(p: PartIn) -> ContentPart:
    if isinstance(p, TextPartIn):
        return ContentPart.from_text(p.text)
    if isinstance(p, ImagePartIn):
        return ContentPart.image((p.imageUrl or p.image_url or UrlIn(Url(""))).url)
    if p.file is not None:
        return ContentPart(
            type="file",
            data=p.file.file_data,
            mime_type=p.mimeType,
            filename=p.file.filename or p.filename,
        )
    if p.data is not None and p.data[:8].lower().startswith(("http://", "https://")):
        # The chat spec's file ``data`` may be a URL: fetched only if fetch_urls is on.
        return ContentPart(type="file", url=p.data, mime_type=p.mimeType, filename=p.filename)
    return ContentPart(type="file", data=p.data, mime_type=p.mimeType, filename=p.filename)


def message_to_core(m: MessageIn) -> Message:
    if isinstance(m.content, str):
        parts: tuple[ContentPart, ...] = (ContentPart.from_text(m.content),)
    else:
        parts = tuple(_part_to_core(p) for p in m.content)
    return Message(
        role=m.role,
        content=parts,
        name=m.name,
        tool_calls=tuple(m.tool_calls) if m.tool_calls is not None else None,
        tool_call_id=m.tool_call_id,
        timestamp=m.timestamp,
    )


def conversation_to_core(body: ConversationIn) -> IngestRequest:
    return IngestRequest(
        conversation_id=body.conversationId,
        messages=tuple(message_to_core(m) for m in body.messages),
        container_tags=tags_of(body.containerTags, body.containerTag),
        metadata=body.metadata,
    )


# --- POST /v4/search -----------------------------------------------------------------------------


def _query(value: object) -> Query:
    text = bounded_str(value, lo=1, hi=MAX_QUERY_CHARS)
    if not text.strip(WHITESPACE):
        raise ValueError("must not be blank")
    return Query(text)


def _limit(value: object) -> Limit:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 10.0 is an integer in JSON Schema, as in JavaScript
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"must be an integer from 1 to {MAX_LIMIT}")
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"must be from 1 to {MAX_LIMIT} (got {value})")
    return Limit(value)


def _threshold(value: object) -> Threshold:
    expect(value, (int, float), "a number from 0 to 1")
    assert isinstance(value, int | float)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be from 0 to 1 (got {value})")
    return Threshold(float(value))


@frozen
class SearchIn:
    q: Query
    containerTags: Tags = Tags(())
    #: One tag, as the supermemory SDKs send it; not together with ``containerTags``.
    containerTag: Tag = NO_TAG
    limit: Limit = Limit(10)
    threshold: Threshold = Threshold(0.0)
    filters: Filters = field(factory=lambda: Filters(()))
    after: datetime | None = None
    before: datetime | None = None
    #: Run the configured rerankers (the ``rerankers`` setting) over the candidates.
    rerank: bool = False
    #: How the results are written, and what they carry (``_search_options``).
    searchMode: SearchMode = "memories"
    include: IncludeIn = field(factory=IncludeIn)
    #: Honoured as no-ops (docs/api.md): no query rewriting, no aggregated memories.
    rewriteQuery: bool = False
    aggregate: bool = False


def search_to_core(body: SearchIn) -> SearchRequest:
    return SearchRequest(
        q=body.q,
        container_tags=tags_of(body.containerTags, body.containerTag),
        limit=body.limit,
        threshold=body.threshold,
        conditions=body.filters,
        after=body.after,
        before=body.before,
        rerank=body.rerank,
    )


def _register(converter: cattrs.Converter) -> cattrs.Converter:
    for new_type, fn in [
        (Identifier, _identifier),
        (ToolCallId, _tool_call_id),
        (Text, _text),
        (Name, _name),
        (Url, _url),
        (Data, _data),
        (Mime, _mime),
        (Tags, _tags),
        (Tag, _tag),
        (Metadata, _metadata),
        (Query, _query),
        (Limit, _limit),
        (Threshold, _threshold),
        (Filters, _filters),
    ]:
        converter.register_structure_hook(new_type, hook(fn))
    converter.register_structure_hook(datetime, hook(parse_timestamp))
    converter.register_structure_hook(PartIn, lambda v, _: _part(converter, v))
    converter.register_structure_hook(Content, lambda v, _: _content(converter, v))
    converter.register_structure_hook(Messages, lambda v, _: _messages(converter, v))
    for cls in (ConversationIn, SearchIn):
        register_tag_spellings(converter, cls)
    return converter


def _wire_converter() -> cattrs.Converter:
    converter = make_converter()
    _register(converter)
    return converter


CONVERTER = _wire_converter()
