"""The indices: one per kind, each behind an alias, made from an index template.

Every template maps ``dynamic: strict`` (a misspelt field is an error, not a
new mapping) and carries ``_meta.schema_version``. The concrete index is
``PREFIX-KIND-vN`` behind the alias ``PREFIX-KIND``; ``migrate`` builds vN+1,
reindexes into it and swaps the alias in one atomic ``_aliases`` call.

Memories are one document per memory, with its pieces' vectors in a
``nested`` field. A knn search on a nested vector field scores each
document by its best nested vector and counts ``k`` in documents, so the
dense side ranks memories by their best piece (as the embedded store does)
with no duplicates to drop, and the tenant/tag/metadata filter inside the
knn clause applies to the memory's own fields: a true pre-filter. (One
document per piece would rank pieces: a memory with three close pieces
would take three of the ``k`` places, and tags would have to be rewritten
on every piece.)
"""

from __future__ import annotations

from typing import Any

from memoryd.adapters.storage.elasticsearch._cluster import Cluster, reachable, status_of
from memoryd.adapters.storage.elasticsearch._config import ElasticsearchConfig
from memoryd.core.errors import ConfigurationError

#: The mappings' version: a change to any mapping below raises it (``memoryd es migrate``).
#: 2: the keyword side matches one ``keywords`` field (``_codec.keyword_values``).
SCHEMA_VERSION = 2

KINDS = ("memories", "conversations", "threads", "keys", "state")

#: Payload kept in ``_source`` only: never indexed, never mapped field by field.
_PAYLOAD = {"type": "object", "enabled": False}
_KEYWORD = {"type": "keyword"}
_LONG = {"type": "long"}
_BOOLEAN = {"type": "boolean"}
_DATE = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}

#: Like the embedded store's FTS5 (porter, unicode61, remove_diacritics): words are
#: lower-cased, folded to ASCII, English stopwords dropped, Porter-stemmed.
ANALYSIS = {
    "filter": {"memoryd_possessive": {"type": "stemmer", "language": "possessive_english"}},
    "analyzer": {
        "memoryd_text": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["memoryd_possessive", "lowercase", "asciifolding", "stop", "porter_stem"],
        }
    },
}


def memories_mapping(dimension: int, index_options: str) -> dict[str, Any]:
    #: Kept for reading and for rebuilding ``keywords``; not searched, so not indexed.
    stored = {"type": "text", "index": False}
    return {
        "tenant": _KEYWORD,
        "memory_id": _KEYWORD,
        "conversation_id": _KEYWORD,
        #: (scope, conversationId) as JSON: the conversation of one scope.
        "conversation_key": _KEYWORD,
        "scope": _KEYWORD,
        #: ``memory_text(memory)``: "[8 May 2023] Caroline: words", so that names and
        #: dates match as in the embedded store.
        "text": stored,
        #: Neighbouring turns, weighted lower on the keyword side.
        "context": stored,
        #: What BM25 ranks: the text three times and the context once (``_codec``).
        "keywords": {"type": "text", "analyzer": "memoryd_text"},
        "speaker": _KEYWORD,
        "positions": {"type": "integer"},
        "said_at": _DATE,
        #: Exact microseconds since the epoch: what the date filters compare.
        "said_at_us": _LONG,
        "tags": _KEYWORD,
        "metadata": {"type": "flattened"},
        #: Typed metadata terms (see ``_filters``): what the metadata filters match.
        "metadata_terms": _KEYWORD,
        #: A digest of tags and metadata: finds the memories a retag must change.
        "labels": _KEYWORD,
        "pieces": {
            "type": "nested",
            "properties": {
                "vector": {
                    "type": "dense_vector",
                    "dims": dimension,
                    "index": True,
                    "similarity": "cosine",
                    "index_options": {"type": index_options},
                }
            },
        },
        #: The exact values: words, times, positions, float32 vectors (base64).
        "payload": _PAYLOAD,
    }


MAPPINGS: dict[str, dict[str, Any]] = {
    "conversations": {
        "tenant": _KEYWORD,
        "conversation_id": _KEYWORD,
        #: Whether any scope holds the conversation (False: a deletion waiting in the outbox).
        "live": _BOOLEAN,
        #: The pending outbox entries' numbers.
        "outbox_seqs": _LONG,
        "updated_at": _DATE,
        "state": _PAYLOAD,
    },
    "threads": {
        "tenant": _KEYWORD,
        "thread_id": _KEYWORD,
        "tags": _KEYWORD,
        #: The memories its messages cite (not forgotten): what forgetting looks up.
        "cited": _KEYWORD,
        #: Microseconds: coalesce(updated_at, created_at), then the creation order.
        "sort_us": _LONG,
        "created_seq": _LONG,
        "state": _PAYLOAD,
    },
    "keys": {
        "key_id": _KEYWORD,
        "tenant": _KEYWORD,
        "digest": _KEYWORD,
        "revoked": _BOOLEAN,
        "created_seq": _LONG,
        "state": _PAYLOAD,
    },
    "state": {
        "tenant": _KEYWORD,
        "kind": _KEYWORD,
    },
}


def template(config: ElasticsearchConfig, kind: str, dimension: int | None) -> dict[str, Any]:
    """The index template of one kind."""
    properties = (
        memories_mapping(dimension or 1, config.index_options)
        if kind == "memories"
        else MAPPINGS[kind]
    )
    meta: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": kind}
    if kind == "memories":
        meta["dimension"] = dimension
    settings: dict[str, Any] = {
        "number_of_shards": config.shards,
        "number_of_replicas": config.replicas,
    }
    if kind == "memories":
        settings["analysis"] = ANALYSIS
    return {
        "index_patterns": [f"{config.alias(kind)}-v*"],
        "priority": 500,
        "template": {
            "settings": settings,
            "mappings": {"dynamic": "strict", "_meta": meta, "properties": properties},
        },
        "_meta": {"schema_version": SCHEMA_VERSION, "managed_by": "memoryd"},
    }


async def ensure_indices(
    cluster: Cluster, *, dimension: int | None, model_name: str | None
) -> None:
    """Put the templates and create each missing index behind its alias (race-safe).

    Without a dimension (only the key store is needed) the memories index is
    left for a server to create. An existing memories index built for another
    dimension or model is refused with a ``ConfigurationError``.
    """
    config = cluster.config
    client = cluster.client
    kinds = KINDS if dimension is not None else tuple(k for k in KINDS if k != "memories")
    with reachable():
        for kind in kinds:
            body = template(config, kind, dimension)
            if kind == "memories":
                body["template"]["mappings"]["_meta"]["model"] = model_name
            await client.indices.put_index_template(name=config.alias(kind), **body)
            if await client.indices.exists_alias(name=config.alias(kind)):
                continue
            try:
                await client.indices.create(
                    index=config.index_name(kind, SCHEMA_VERSION),
                    aliases={config.alias(kind): {"is_write_index": True}},
                )
            except Exception as e:  # another server created it first
                if status_of(e) != 400 or "already_exists" not in str(e):
                    raise
        if dimension is not None:
            await _check_memories(cluster, dimension, model_name)


async def _check_memories(cluster: Cluster, dimension: int, model_name: str | None) -> None:
    alias = cluster.config.alias("memories")
    found = await cluster.client.indices.get_mapping(index=alias)
    for name, body in found.items():
        meta = body.get("mappings", {}).get("_meta", {})
        dims, model = meta.get("dimension"), meta.get("model")
        if dims != dimension or (model_name and model and model != model_name):
            raise ConfigurationError(
                f"The Elasticsearch index {name} holds vectors of the embedding model "
                f"{model!r} ({dims} dimensions), not {model_name!r} ({dimension}): set "
                "embedder back, or set elasticsearch_index_prefix to a new prefix and run "
                "memoryd reindex",
                details={"index": name, "dimension": dims, "model": model},
            )
