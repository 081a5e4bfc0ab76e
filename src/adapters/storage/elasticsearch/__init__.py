"""The Elasticsearch backend: stateless memoryd servers over one cluster.

``open_elasticsearch(config, dimension=...)`` connects (creating the index
templates, indices and aliases that are missing) and returns an
:class:`ElasticsearchBackend` whose ``conversations``, ``keys``, ``threads``
and ``index`` implement the storage ports. The official async client is
imported when a backend opens (``pip install 'memoryd[elasticsearch]'``).
"""

from __future__ import annotations

from memoryd.adapters.storage.elasticsearch._backend import (
    ElasticsearchBackend,
    open_elasticsearch,
)
from memoryd.adapters.storage.elasticsearch._config import (
    ElasticsearchConfig,
    IndexOptions,
    RefreshPolicy,
)
from memoryd.adapters.storage.elasticsearch._conversations import EsConversationStore
from memoryd.adapters.storage.elasticsearch._index import EsMemoryIndex
from memoryd.adapters.storage.elasticsearch._keys import EsKeyStore
from memoryd.adapters.storage.elasticsearch._schema import SCHEMA_VERSION
from memoryd.adapters.storage.elasticsearch._threads import EsThreadStore

__all__ = [
    "SCHEMA_VERSION",
    "ElasticsearchBackend",
    "ElasticsearchConfig",
    "EsConversationStore",
    "EsKeyStore",
    "EsMemoryIndex",
    "EsThreadStore",
    "IndexOptions",
    "RefreshPolicy",
    "open_elasticsearch",
]
