"""How the Elasticsearch backend connects and builds its indices (``elasticsearch_*`` settings)."""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs
from attrs import field, frozen

#: The dense_vector ``index_options.type``: always explicit, as the server's default
#: changes between versions (``bbq_hnsw`` needs 64 dimensions or more).
IndexOptions: TypeAlias = Literal["int8_hnsw", "bbq_hnsw", "hnsw"]
#: How a write is made searchable before it returns: ``wait_for`` the next refresh
#: (cheap for the cluster), or ``true``: refresh the shards now (lower latency).
RefreshPolicy: TypeAlias = Literal["wait_for", "true"]


@frozen(kw_only=True)
class ElasticsearchConfig:
    """Everything the backend needs besides the embedding dimension."""

    #: The cluster's URL (``http://127.0.0.1:9200``); credentials may be in it.
    url: str
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: Every index and alias is named ``PREFIX-KIND`` (``memoryd-memories``).
    index_prefix: str = "memoryd"
    #: knn ``num_candidates`` per shard (at least 100; raised to k when k is larger).
    num_candidates: int = field(default=100, validator=attrs.validators.ge(100))
    index_options: IndexOptions = "int8_hnsw"
    #: Seconds one request to the cluster may take.
    request_timeout: float = field(default=10.0, validator=attrs.validators.gt(0))
    #: Retries of a request that failed to connect, timed out, or got 429/502/503/504;
    #: also the retries of the items of a bulk request that got 429 or 5xx.
    max_retries: int = field(default=3, validator=attrs.validators.ge(0))
    #: HTTP connections kept open to each node.
    connections: int = field(default=10, validator=attrs.validators.gt(0))
    refresh: RefreshPolicy = "wait_for"
    #: Shards and replicas of indices memoryd creates.
    shards: int = field(default=1, validator=attrs.validators.gt(0))
    replicas: int = field(default=1, validator=attrs.validators.ge(0))
    #: Tries of an optimistic (if_seq_no) update that keeps meeting other writers.
    conflict_retries: int = field(default=50, validator=attrs.validators.gt(0))

    def alias(self, kind: str) -> str:
        """The alias every read and write goes through: ``PREFIX-KIND``."""
        return f"{self.index_prefix}-{kind}"

    def index_name(self, kind: str, version: int) -> str:
        """The concrete index of schema ``version`` behind the alias: ``PREFIX-KIND-vN``."""
        return f"{self.alias(kind)}-v{version}"
