"""The domain values: conversations, messages, memories, keys and threads.

Everything here is an immutable ``attrs`` value. Wire rules (lengths, enums,
shapes) live at the HTTP edge; the validators here guard invariants only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence, Set
from datetime import datetime
from typing import Any, Literal, TypeAlias

import attrs
from attrs import field, frozen

Role: TypeAlias = Literal["user", "assistant", "system", "tool"]
ROLES: tuple[Role, ...] = ("user", "assistant", "system", "tool")
PartType: TypeAlias = Literal["text", "image_url", "image", "file"]
#: A metadata value: what the API accepts for ``metadata`` entries.
Scalar: TypeAlias = str | int | float | bool
#: Any JSON value (tool calls are stored as the client sent them).
JsonValue: TypeAlias = Any
#: The tag scope a conversation is addressed in: the sorted, distinct tags of the
#: key that wrote it; empty for a key limited to no tags.
Scope: TypeAlias = tuple[str, ...]
#: What identifies a stored conversation within a tenant: its scope and its conversationId.
DocumentKey: TypeAlias = tuple[Scope, str]


def canonical_scope(tags: Sequence[str]) -> Scope:
    """The scope of a key with ``tags``: sorted and distinct, so that the order never matters."""
    return tuple(sorted(set(tags)))


def _aware(_inst: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{attribute.name} must be timezone-aware")


@frozen
class ContentPart:
    """One part of a message's content: text, an image, or a file."""

    type: PartType
    text: str | None = None
    #: The image or file location (``imageUrl.url``, ``image_url.url`` or ``image``).
    url: str | None = None
    #: Inline data (a file part's ``data``), as the client sent it.
    data: str | None = None
    mime_type: str | None = None
    #: A file part's name as the client sent it (``file.filename``), if any.
    filename: str | None = None

    @classmethod
    def from_text(cls, text: str) -> ContentPart:
        return cls(type="text", text=text)

    @classmethod
    def image(cls, url: str) -> ContentPart:
        return cls(type="image_url", url=url)


@frozen
class Message:
    """A message of a conversation, as the client sent it."""

    role: Role
    content: tuple[ContentPart, ...]
    name: str | None = None
    tool_calls: tuple[JsonValue, ...] | None = None
    tool_call_id: str | None = None
    #: When the message was said, if the client told us (our extension).
    timestamp: datetime | None = field(default=None, validator=_aware)

    @classmethod
    def from_text(
        cls,
        role: Role,
        text: str,
        *,
        name: str | None = None,
        timestamp: datetime | None = None,
    ) -> Message:
        return cls(
            role=role, content=(ContentPart.from_text(text),), name=name, timestamp=timestamp
        )

    @property
    def text(self) -> str:
        """The message's text parts, joined by newlines."""
        return "\n".join(p.text for p in self.content if p.type == "text" and p.text)

    def fingerprint(self) -> str:
        """A digest of everything the client sent; equal messages have equal prints."""
        payload = {
            "role": self.role,
            "content": [attrs.asdict(p) for p in self.content],
            "name": self.name,
            "tool_calls": list(self.tool_calls) if self.tool_calls is not None else None,
            "tool_call_id": self.tool_call_id,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


@frozen
class StoredMessage:
    """A message as stored: the client's message plus when we received it."""

    message: Message
    position: int
    received_at: datetime = field(validator=_aware)

    @property
    def said_at(self) -> datetime:
        """When the message was said: its timestamp, else when we received it."""
        return self.message.timestamp or self.received_at


@frozen
class Conversation:
    """A tenant's conversation: the stored history with its tags and metadata."""

    #: Our id for the stored conversation (the ingest response's ``id``).
    id: str
    tenant_id: str
    conversation_id: str
    messages: tuple[StoredMessage, ...]
    container_tags: tuple[str, ...] = ()
    metadata: Mapping[str, Scalar] = field(factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: The scope it is addressed in: a key limited to tags reads, writes and deletes
    #: by id only the conversations of its own scope (ids are namespaced by scope, as
    #: they are by tenant). Empty: written by a key limited to no tags.
    scope: Scope = ()
    #: Queued ingest (setting ``queued_ingest``): the position of the first message whose
    #: memories are still to be built (status ``queued``); None: every message's memories
    #: are built (status ``done``). A store that keeps it offers ``IngestQueue``.
    pending_from: int | None = None

    @property
    def queued(self) -> bool:
        """Whether memories of some of its messages are still to be built."""
        return self.pending_from is not None


@frozen
class MemoryDraft:
    """What the memory builder makes of messages, before it has an id or vector."""

    #: The words of the memory: what was said (a message, or a part of a long one).
    text: str
    #: The pieces that are embedded; the memory scores the best of them.
    embed_texts: tuple[str, ...]
    #: 0-based indexes of the messages in the conversation that ``text`` came from.
    positions: tuple[int, ...]
    said_at: datetime
    #: Neighbouring turns, searched by the keyword side with a lower weight.
    keyword_context: str = ""
    #: Who said it: the message's ``name``, else its role.
    speaker: str = ""


@frozen
class Memory:
    """A searchable memory: text that came from one or more messages.

    ``text`` holds the words only; who said them and when are ``speaker`` and
    ``said_at``. ``memoryd.core.memories.memory_text`` renders the three as
    search returns them and the model reads them.
    """

    id: str
    tenant_id: str
    conversation_id: str
    #: The words: what was said (a message, or a part of a long one).
    text: str
    positions: tuple[int, ...]
    said_at: datetime
    container_tags: tuple[str, ...] = ()
    metadata: Mapping[str, Scalar] = field(factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: The scope of the conversation it came from (see ``Conversation.scope``).
    scope: Scope = ()
    #: Who said it: the message's ``name``, else its role ("" if unknown).
    speaker: str = ""

    @property
    def document(self) -> DocumentKey:
        """The conversation it came from: two scopes may hold the same conversationId."""
        return (self.scope, self.conversation_id)


@frozen
class ScoredMemory:
    """A memory found by search."""

    memory: Memory
    #: Cosine similarity between the query and the memory's embedding.
    similarity: float
    #: The rank score the results are ordered by (fusion of dense and keyword ranks).
    score: float


@frozen
class Tenant:
    id: str
    name: str
    created_at: datetime | None = None


@frozen
class ApiKey:
    """An API key's record. The key itself is never stored, only its digest."""

    id: str
    tenant_id: str
    #: Container tags this key is limited to; empty means all of the tenant's.
    tags: tuple[str, ...] = ()
    quota_tokens: int | None = None
    used_tokens: int = 0
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    label: str | None = None


@frozen
class Caller:
    """Who is asking: the authenticated key's tenant and scope."""

    tenant_id: str
    key_id: str
    tags: tuple[str, ...] = ()
    quota_tokens: int | None = None
    #: Tokens the key had spent when the request came in.
    used_tokens: int = 0

    @property
    def tag_limited(self) -> bool:
        return bool(self.tags)

    @property
    def scope(self) -> Scope:
        """The scope this key writes conversations in and addresses them by id."""
        return canonical_scope(self.tags)

    def may_use_tags(self, tags: Sequence[str]) -> bool:
        """Whether every one of ``tags`` is inside this key's scope."""
        return not self.tags or set(tags) <= set(self.tags)

    def can_see(self, tags: Sequence[str]) -> bool:
        """Whether data carrying ``tags`` is visible to this key."""
        return not self.tags or bool(set(tags) & set(self.tags))

    def may_use_thread(self, thread_tags: Sequence[str]) -> bool:
        """Whether this key may read and continue a thread started under ``thread_tags``.

        A thread started by a key limited to no tags may hold any memory, so
        only such keys may use it; otherwise the thread's tags must be within
        this key's.
        """
        return not self.tags or (bool(thread_tags) and set(thread_tags) <= set(self.tags))


@frozen
class Citation:
    """The core's record of a memory cited by a chat answer.

    One per document (conversation) the answer was given: its best memory's id
    and similarity, the text quoted, what the conversation's metadata says of it,
    and when it was made and last changed. The HTTP edge renders it as the
    spec's annotation JSON; storage keeps it with the thread.
    """

    similarity: float
    #: The id of the cited (best) memory.
    id: str
    content: str
    type: str
    url: str
    title: str
    description: str
    og_image: str
    created_at: datetime | None = field(validator=_aware)
    updated_at: datetime | None = field(validator=_aware)
    #: The cited conversation was deleted: the text is gone, the id stays.
    forgotten: bool = False

    def forget(self) -> Citation:
        """This citation without what it quoted: the id, similarity, type and times stay.

        The url, title, description and image go too, as they come from the
        conversation's metadata.
        """
        return attrs.evolve(
            self, content="", url="", title="", description="", og_image="", forgotten=True
        )


ChatRole: TypeAlias = Literal["user", "assistant", "system"]


@frozen
class ThreadMessage:
    role: ChatRole
    content: str
    annotations: tuple[Citation, ...] = ()
    created_at: datetime | None = None


def forget_dead_citations(messages: Sequence[ThreadMessage], live: Set[str]) -> list[ThreadMessage]:
    """``messages`` with each citation of a memory not in ``live`` forgotten (``Citation.forget``).

    What a thread store does as it appends an answer whose cited memories
    may have been deleted while it streamed.
    """
    return [
        attrs.evolve(
            m,
            annotations=tuple(
                a if a.forgotten or a.id in live else a.forget() for a in m.annotations
            ),
        )
        if m.annotations
        else m
        for m in messages
    ]


@frozen
class Thread:
    id: str
    tenant_id: str
    messages: tuple[ThreadMessage, ...] = ()
    title: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: The scope the thread was started in, which it keeps: the request's containerTags,
    #: else the tags of the key that started it; empty means the whole tenant (a key
    #: limited to no tags). Continuing it searches only within these tags.
    container_tags: tuple[str, ...] = ()
