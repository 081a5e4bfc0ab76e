"""The body of POST /api/chat and its wire rules.

It accepts what the spec shows (``content`` as a string or as parts of type
``text``, ``image`` or ``file``; ``experimental_attachments``; ``threadId``)
and what the AI SDK's chat hooks send: v4 ``useChat`` messages (``content``
and ``parts``), v5 ``UIMessage`` s (``parts`` only, with ``id``, ``trigger``
and ``messageId`` beside them). Part types other than text, images and files
(reasoning, tools, sources, ``data-*``) are ignored, and so are unknown keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NewType, TypeAlias

import cattrs
from attrs import field, frozen
from cattrs.gen import make_dict_structure_fn

from memoryd.adapters.http._converter import expect, hook, make_converter
from memoryd.adapters.http._schema import (
    MAX_ID_CHARS,
    MAX_MESSAGES,
    MAX_URL_CHARS,
    NO_TAG,
    Tag,
    Tags,
    Text,
    UrlIn,
    bounded_str,
    missing,
    register_tag_spellings,
    tags_of,
)
from memoryd.adapters.http._schema import _register as register_common
from memoryd.core.chat import ChatRequest
from memoryd.core.model import ContentPart, Message

ThreadId = NewType("ThreadId", str)
Location = NewType("Location", str)
ChatMessages = NewType("ChatMessages", list["ChatMessageIn"])
#: Inline data (an image's base64 or a file's contents) may be as large as the body allows.
InlineData = NewType("InlineData", str)

#: The part types memoryd reads; the others (reasoning, tool calls, ...) are ignored.
PART_TYPES = ("text", "image", "image_url", "file")
_URL_SCHEMES = ("http://", "https://", "data:")


@frozen
class ChatPartIn:
    """A content part: ``text``, ``image`` (URL or base64), ``image_url`` or ``file``."""

    type: str
    text: Text | None = None
    #: An image part's image: a URL, a data URL or base64 (spec).
    image: InlineData | None = None
    #: A file part's contents (spec), a URL for v5 file parts.
    data: InlineData | None = None
    url: Location | None = None
    mimeType: str | None = None
    mediaType: str | None = None
    imageUrl: UrlIn | None = None
    image_url: UrlIn | None = None


@frozen
class AttachmentIn:
    """An AI SDK v4 ``experimental_attachments`` item."""

    url: Location
    contentType: str | None = None
    name: str | None = None


Part: TypeAlias = ChatPartIn | None
ChatContent: TypeAlias = str | list[Part]


@frozen
class ChatMessageIn:
    role: Literal["user", "assistant", "system"]
    content: ChatContent | None = None
    #: AI SDK v5 messages carry their content here instead of ``content``.
    parts: list[Part] | None = None
    experimental_attachments: list[AttachmentIn] | None = None
    # ``id``, ``annotations``, ``createdAt``, ``metadata`` and unknown keys are ignored.


@frozen
class ChatIn:
    messages: ChatMessages
    threadId: ThreadId | None = None
    #: Search only memories with any of these tags (our extension).
    containerTags: Tags = field(factory=lambda: Tags(()))
    #: One tag, as the supermemory SDKs send it; not together with ``containerTags``.
    containerTag: Tag = NO_TAG
    #: Sent by AI SDK v5 clients ("submit-message", "regenerate-message"); see ``wants_sse``.
    trigger: str | None = None
    # ``id`` and ``messageId`` (AI SDK v5) and unknown keys are ignored.


def _thread_id(value: object) -> ThreadId:
    return ThreadId(bounded_str(value, lo=1, hi=MAX_ID_CHARS))


def _location(value: object) -> Location:
    return Location(bounded_str(value, lo=1, hi=MAX_URL_CHARS))


def _inline(value: object) -> InlineData:
    expect(value, str, "a string")
    assert isinstance(value, str)
    return InlineData(value)


def _part(converter: cattrs.Converter, value: object) -> Part:
    expect(value, dict, "a content part object")
    assert isinstance(value, dict)
    if "type" not in value:
        raise missing(ChatPartIn, "type", "is required")
    if value["type"] not in PART_TYPES:
        return None  # reasoning, tool, source, step and data parts carry no content for us
    part = converter.structure(value, ChatPartIn)
    if part.type == "text" and part.text is None:
        raise missing(ChatPartIn, "text", "a text part needs text")
    return part


def _content(converter: cattrs.Converter, value: object) -> ChatContent:
    if isinstance(value, str):
        return converter.structure(value, Text)
    if isinstance(value, list):
        return converter.structure(value, list[Part])
    raise TypeError("must be a string or an array of content parts")


def _messages(converter: cattrs.Converter, value: object) -> ChatMessages:
    expect(value, list, "an array of messages")
    assert isinstance(value, list)
    # An empty array is the core's 400 "Invalid prompt": no user message with text.
    if len(value) > MAX_MESSAGES:
        raise ValueError(f"must contain at most {MAX_MESSAGES} messages (got {len(value)})")
    return ChatMessages(converter.structure(value, list[ChatMessageIn]))


def part_to_core(part: ChatPartIn) -> ContentPart | None:
    """The core value of a part, or None for a part without content."""
    mime = part.mimeType or part.mediaType
    found: ContentPart | None = None
    if part.type == "text":
        found = ContentPart.from_text(part.text or "")
    elif part.type == "image_url":
        where = part.imageUrl or part.image_url
        found = ContentPart.image(where.url) if where is not None else None
    elif part.type == "image":
        image = part.image or part.url or part.data
        if image and image.startswith(_URL_SCHEMES):
            found = ContentPart(type="image", url=image, mime_type=mime)
        elif image:
            found = ContentPart(type="image", data=image, mime_type=mime)
    elif part.data is not None or part.url is not None:
        found = ContentPart(type="file", url=part.url, data=part.data, mime_type=mime)
    return found


def attachment_to_core(attachment: AttachmentIn) -> ContentPart:
    kind: Literal["image", "file"] = (
        "image" if (attachment.contentType or "").startswith("image/") else "file"
    )
    return ContentPart(type=kind, url=attachment.url, mime_type=attachment.contentType)


def message_to_core(m: ChatMessageIn) -> Message:
    content: ChatContent | None = m.content
    if m.parts is not None and (content is None or content == ""):
        content = m.parts
    if isinstance(content, str):
        parts: list[ContentPart] = [ContentPart.from_text(content)]
    else:
        parts = [c for p in content or [] if p is not None and (c := part_to_core(p))]
    parts += [attachment_to_core(a) for a in m.experimental_attachments or []]
    return Message(role=m.role, content=tuple(parts))


def chat_to_core(body: ChatIn) -> ChatRequest:
    return ChatRequest(
        messages=tuple(message_to_core(m) for m in body.messages),
        thread_id=body.threadId,
        container_tags=tags_of(body.containerTags, body.containerTag),
    )


def wants_sse(accept: str, body: ChatIn) -> bool:
    """Whether to answer with the UI message stream (SSE) rather than the data stream.

    ``Accept: text/event-stream`` asks for it; so does a body with ``trigger``,
    which only AI SDK v5 clients send (and v5 reads nothing else).
    """
    return "text/event-stream" in accept.lower() or body.trigger is not None


def _chat_converter() -> cattrs.Converter:
    converter = make_converter()
    register_common(converter)
    for new_type, fn in [
        (ThreadId, _thread_id),
        (Location, _location),
        (InlineData, _inline),
    ]:
        converter.register_structure_hook(new_type, hook(fn))
    converter.register_structure_hook(Part, lambda v, _: _part(converter, v))
    converter.register_structure_hook(ChatContent, lambda v, _: _content(converter, v))
    converter.register_structure_hook(
        ChatContent | None, lambda v, _: None if v is None else _content(converter, v)
    )
    converter.register_structure_hook(ChatMessageIn, _message_hook(converter))
    converter.register_structure_hook(ChatMessages, lambda v, _: _messages(converter, v))
    register_tag_spellings(converter, ChatIn)
    return converter


def _message_hook(converter: cattrs.Converter) -> Callable[[object, Any], ChatMessageIn]:
    fields = make_dict_structure_fn(ChatMessageIn, converter)

    def structure(value: object, _type: Any) -> ChatMessageIn:
        expect(value, dict, "a message object")
        assert isinstance(value, dict)
        message: ChatMessageIn = fields(value, ChatMessageIn)
        if message.content is None and message.parts is None:
            raise missing(ChatMessageIn, "content", "is required (a string or an array of parts)")
        return message

    return structure


CHAT_CONVERTER = _chat_converter()
