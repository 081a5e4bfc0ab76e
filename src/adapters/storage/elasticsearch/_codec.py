"""How core values become Elasticsearch documents and come back.

Values that must round-trip exactly (messages, thread messages, times with
their offsets, float32 vectors) live in ``_source`` payloads that are never
indexed; the indexed fields beside them are what queries use.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

import cattrs
import numpy as np
import numpy.typing as npt

from memoryd.adapters.storage._vectors import unit_rows
from memoryd.adapters.storage.elasticsearch._cluster import Doc, doc_id
from memoryd.adapters.storage.elasticsearch._filters import from_micros, metadata_terms, to_micros
from memoryd.core.memories import memory_text
from memoryd.core.model import Memory, Scalar, Scope, StoredMessage, ThreadMessage
from memoryd.core.ports import IndexedMemory

F32 = npt.NDArray[np.float32]

_converter = cattrs.Converter()
_converter.register_unstructure_hook(datetime, lambda d: d.isoformat())
_converter.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(v))


def to_text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def from_text(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def scope_list(scope: Scope) -> list[str]:
    """A scope as stored: its tags, sorted and distinct."""
    return sorted(set(scope))


def conversation_key(scope: Scope, conversation_id: str) -> str:
    """One conversation of a tenant: its scope and its id (JSON: no two share a key)."""
    return json.dumps([scope_list(scope), conversation_id], ensure_ascii=False)


def labels(tags: Sequence[str], metadata: Mapping[str, Scalar]) -> str:
    """A digest of a memory's tags and metadata (a retag finds the memories it changes)."""
    return doc_id(json.dumps([list(tags), dict(metadata)], sort_keys=True, ensure_ascii=False))


# --- messages ------------------------------------------------------------------------------------


def message_doc(message: StoredMessage) -> Doc:
    return _converter.unstructure(message)  # type: ignore[no-any-return]


def message_from_doc(doc: Doc) -> StoredMessage:
    return _converter.structure(doc, StoredMessage)


def thread_message_doc(message: ThreadMessage) -> Doc:
    return _converter.unstructure(message)  # type: ignore[no-any-return]


def thread_message_from_doc(doc: Doc) -> ThreadMessage:
    return _converter.structure(doc, ThreadMessage)


# --- vectors -------------------------------------------------------------------------------------


def vectors_text(rows: F32) -> str:
    return base64.b64encode(np.ascontiguousarray(rows, np.float32).tobytes()).decode("ascii")


def vectors_from_text(text: str, dims: int) -> F32:
    flat = np.frombuffer(base64.b64decode(text), dtype=np.float32)
    return flat.reshape(-1, dims).copy()


def short_floats(row: F32) -> list[float]:
    """float32 values as the shortest decimals (6 to 9 significant digits) that read back
    as the same float32: what a ``dense_vector`` stores is unchanged, and the JSON is ~40%
    smaller than a double's repr (``0.0123456789`` for ``0.012345678918766975``).

    Vectorised: each value is rounded to d significant digits (``n / 10**k``, the double
    nearest that decimal, so its repr is the decimal) for the smallest d that converts
    back to the same float32; 9 digits always do, and any value left (none can be) keeps
    its exact double.
    """
    exact = np.asarray(row, dtype=np.float32).astype(np.float64)
    out = exact.copy()
    todo = np.isfinite(exact) & (exact != 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        magnitude = np.floor(np.log10(np.abs(np.where(todo, exact, 1.0))))
        for digits in range(6, 10):
            if not todo.any():
                break
            k = (digits - 1 - magnitude).astype(np.int64)
            # 10**k is exact as a double for 0 <= k <= 22; other magnitudes keep their double.
            ok = todo & (k >= 0) & (k <= 22)
            scale = np.power(10.0, np.where(ok, k, 0))
            rounded = np.round(exact * scale) / scale
            hit = ok & (rounded.astype(np.float32) == exact.astype(np.float32))
            out[hit] = rounded[hit]
            todo &= ~hit
    return [float(x) for x in out]


# --- memories as the store keeps them (in the conversation's document) ---------------------------


def record_doc(item: IndexedMemory, dimension: int | None) -> Doc:
    """A committed memory in the conversation document: everything but tags and metadata."""
    memory = item.memory
    rows = unit_rows(item.vectors, dimension)
    return {
        "id": memory.id,
        "text": memory.text,
        "speaker": memory.speaker,
        "positions": list(memory.positions),
        "said_at_us": to_micros(memory.said_at),
        "created_at": to_text(memory.created_at),
        "updated_at": to_text(memory.updated_at),
        "context": item.keyword_context,
        "dims": int(rows.shape[1]),
        "vectors": vectors_text(rows),
    }


def record_from_doc(
    doc: Doc,
    *,
    tenant_id: str,
    conversation_id: str,
    scope: Scope,
    tags: Sequence[str],
    metadata: Mapping[str, Scalar],
) -> IndexedMemory:
    return IndexedMemory(
        memory=Memory(
            id=doc["id"],
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            text=doc["text"],
            positions=tuple(doc["positions"]),
            said_at=from_micros(doc["said_at_us"]),
            container_tags=tuple(tags),
            # A memory updated on its own (PATCH /v4/memories) keeps its metadata in its record.
            metadata=dict(doc.get("metadata", metadata)),
            created_at=from_text(doc["created_at"]),
            updated_at=from_text(doc["updated_at"]),
            scope=tuple(scope),
            speaker=doc.get("speaker", ""),
        ),
        vectors=vectors_from_text(doc["vectors"], doc["dims"]),
        keyword_context=doc.get("context", ""),
    )


# --- memories as the index holds them ------------------------------------------------------------


def memory_doc_id(tenant_id: str, memory_id: str) -> str:
    return doc_id("memory", tenant_id, memory_id)


#: Copies of a memory's text in its ``keywords`` field, against one of its keyword
#: context: the embedded store's FTS5 weights, 1 and 0.35 (1/0.35 = 2.86).
TEXT_COPIES = 3


def keyword_values(text: str, context: str) -> list[str]:
    """The ``keywords`` field: ``TEXT_COPIES`` times the text, then the context.

    One field's BM25 counts each copy, so a word of the text weighs three of
    the context's, once, in one saturation and one length: BM25F, as FTS5's
    weighted bm25 ranks the two columns. It is what ``combined_fields`` with a
    boost of 3 on the text computes on Elasticsearch, written so that every
    server computes it: noida-db ignores ``combined_fields`` boosts (the text
    and the context weighed alike there, and R@5 on LoCoMo fell below the
    embedded store's; docs/elasticsearch.md).
    """
    return [text] * TEXT_COPIES + [context]


#: ``keyword_values`` in painless, for ``_reindex`` from schema 1 (which had no ``keywords``).
KEYWORDS_SCRIPT = "ctx._source.keywords = [{}, ctx._source.context]".format(
    ", ".join(["ctx._source.text"] * TEXT_COPIES)
)


def index_doc(
    item: IndexedMemory,
    *,
    tags: Sequence[str],
    metadata: Mapping[str, Scalar],
    scope: Scope,
    dimension: int | None,
) -> Doc:
    """The searchable document of a memory (one per memory, its pieces nested)."""
    memory = item.memory
    rows = unit_rows(item.vectors, dimension)
    text = memory_text(memory)
    return {
        "tenant": memory.tenant_id,
        "memory_id": memory.id,
        "conversation_id": memory.conversation_id,
        "conversation_key": conversation_key(scope, memory.conversation_id),
        "scope": scope_list(scope),
        "text": text,
        "context": item.keyword_context,
        "keywords": keyword_values(text, item.keyword_context),
        "speaker": memory.speaker,
        "positions": list(memory.positions),
        "said_at": to_micros(memory.said_at) // 1000,
        "said_at_us": to_micros(memory.said_at),
        "tags": list(tags),
        "metadata": dict(metadata),
        "metadata_terms": metadata_terms(metadata),
        "labels": labels(tags, metadata),
        "pieces": [{"vector": short_floats(row)} for row in rows],
        "payload": {
            "words": memory.text,
            "scope": scope_list(scope),
            "created_at": to_text(memory.created_at),
            "updated_at": to_text(memory.updated_at),
            "dims": int(rows.shape[1]),
            "vectors": vectors_text(rows),
        },
    }


def labels_doc(tags: Sequence[str], metadata: Mapping[str, Scalar]) -> Doc:
    """The partial update that gives a memory new tags and metadata."""
    return {
        "tags": list(tags),
        "metadata": dict(metadata),
        "metadata_terms": metadata_terms(metadata),
        "labels": labels(tags, metadata),
    }


def memory_from_index(source: Doc) -> Memory:
    payload = source["payload"]
    return Memory(
        id=source["memory_id"],
        tenant_id=source["tenant"],
        conversation_id=source["conversation_id"],
        text=payload["words"],
        positions=tuple(source["positions"]),
        said_at=from_micros(source["said_at_us"]),
        container_tags=tuple(source["tags"]),
        metadata=dict(source["metadata"]),
        created_at=from_text(payload["created_at"]),
        updated_at=from_text(payload["updated_at"]),
        scope=tuple(payload["scope"]),
        speaker=source.get("speaker", ""),
    )


def index_vectors(source: Doc) -> F32:
    payload = source["payload"]
    return vectors_from_text(payload["vectors"], payload["dims"])
