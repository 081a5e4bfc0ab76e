"""How core values are written to and read from SQLite rows.

Datetimes are ISO 8601 text with their offset (exact round trip); a memory's
``said_at`` is also kept as integer microseconds since the epoch, which is
what filters compare. JSON is compact and keeps keys in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs

from memoryd.adapters.storage._vectors import unit_rows
from memoryd.core.model import (
    Citation,
    ContentPart,
    Memory,
    Message,
    Scalar,
    Scope,
    StoredMessage,
    ThreadMessage,
)

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> Any:
    return json.loads(text)


def to_text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def from_text(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch: exact, and ordered like the datetimes."""
    return (value - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def tags_json(tags: Sequence[str]) -> str:
    return dumps(list(tags))


def metadata_json(metadata: Mapping[str, Scalar]) -> str:
    return dumps(dict(metadata))


def vectors_blob(vectors: Any, dimension: int | None) -> bytes:
    """A memory's vectors (one per embedded piece) as float32 bytes, row after row.

    Rows are scaled to unit length, so cosine is a dot product.
    """
    return unit_rows(vectors, dimension).tobytes()


# --- statements and keys -------------------------------------------------------------------------

#: Host parameters per statement, well under SQLite's limit.
CHUNK = 500


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(n: int) -> str:
    return ",".join("?" * n)


def scope_text(scope: Scope) -> str:
    """A scope as stored: '' when empty, else its tags (sorted, distinct) as JSON."""
    return tags_json(sorted(set(scope))) if scope else ""


def scope_from_text(text: str) -> Scope:
    return tuple(loads(text)) if text else ()


def document_key(scope: str, conversation_id: str) -> str:
    """One conversation of a tenant, as the in-memory index names it: stored scope and id.

    The stored scope is '' or JSON (which never holds a NUL), so the first NUL
    always ends it: no two conversations share a key.
    """
    return f"{scope}\x00{conversation_id}"


# --- messages ------------------------------------------------------------------------------------


def _part_dict(part: ContentPart) -> dict[str, Any]:
    out: dict[str, Any] = {"type": part.type}
    for name in ("text", "url", "data", "mime_type", "filename"):
        value = getattr(part, name)
        if value is not None:
            out[name] = value
    return out


def message_row(conversation: int, stored: StoredMessage) -> tuple[Any, ...]:
    m = stored.message
    return (
        conversation,
        stored.position,
        m.role,
        dumps([_part_dict(p) for p in m.content]),
        m.name,
        dumps(list(m.tool_calls)) if m.tool_calls is not None else None,
        m.tool_call_id,
        to_text(m.timestamp),
        to_text(stored.received_at),
    )


MESSAGE_COLUMNS = "position, role, content, name, tool_calls, tool_call_id, timestamp, received_at"


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    position, role, content, name, tool_calls, tool_call_id, timestamp, received_at = row
    received = from_text(received_at)
    assert received is not None
    return StoredMessage(
        message=Message(
            role=role,
            content=tuple(ContentPart(**p) for p in loads(content)),
            name=name,
            tool_calls=tuple(loads(tool_calls)) if tool_calls is not None else None,
            tool_call_id=tool_call_id,
            timestamp=from_text(timestamp),
        ),
        position=position,
        received_at=received,
    )


# --- memories ------------------------------------------------------------------------------------

#: The columns of a memory, in ``memories`` (the store's) and ``index_memories`` (the index's).
MEMORY_COLUMNS = (
    "id, tenant_id, conversation_id, text, positions, said_at_us, tags, metadata, "
    "created_at, updated_at, scope, speaker"
)


def memory_from_row(row: Sequence[Any]) -> Memory:
    mid, tenant, conversation_id, text, positions, said_at, tags, metadata = row[:8]
    created, updated, scope, speaker = row[8:]
    return Memory(
        id=mid,
        tenant_id=tenant,
        conversation_id=conversation_id,
        text=text,
        positions=tuple(loads(positions)),
        said_at=from_micros(said_at),
        container_tags=tuple(loads(tags)),
        metadata=loads(metadata),
        created_at=from_text(created),
        updated_at=from_text(updated),
        # The conversation's scope: '' (empty) or its tags as JSON.
        scope=tuple(loads(scope)) if scope else (),
        speaker=speaker,
    )


# --- threads -------------------------------------------------------------------------------------


def annotations_json(citations: Sequence[Citation]) -> str:
    """A thread message's citations as stored: one object per citation, keyed by field.

    Times are ISO 8601 text with their offset, as everywhere in this store.
    """
    return dumps([attrs.asdict(c, value_serializer=_json_time) for c in citations])


def _json_time(_inst: object, _field: object, value: Any) -> Any:
    return to_text(value) if isinstance(value, datetime) else value


def citation_from_json(value: Mapping[str, Any]) -> Citation:
    """A stored citation, as :func:`annotations_json` writes it or as older rows hold it.

    Rows written before citations held datetimes keep their times as the API
    wrote them (``2024-05-08T13:56:00Z``) under the same keys; both read back.
    """
    times = {key: _stored_time(value.get(key)) for key in ("created_at", "updated_at")}
    return Citation(**(dict(value) | times))


def _stored_time(value: str | None) -> datetime | None:
    # An empty string was never a time (some old fixtures wrote one): no time.
    parsed = from_text(value or None)
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=UTC)


def thread_message_from_row(row: Sequence[Any]) -> ThreadMessage:
    role, content, annotations, created_at = row
    return ThreadMessage(
        role=role,
        content=content,
        annotations=tuple(citation_from_json(a) for a in loads(annotations)),
        created_at=from_text(created_at),
    )
